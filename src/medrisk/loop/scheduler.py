"""Periodic jobs of the loop on APScheduler: the deadline/delivery tick and the gate refresh."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

if TYPE_CHECKING:
    from medrisk.loop.engine import LoopService


def start_scheduler(svc: LoopService, tick_seconds: float, gate_refresh_seconds: float) -> BackgroundScheduler:
    sched = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    sched.add_job(svc.tick, "interval", seconds=tick_seconds, id="loop.tick")
    # changes made by other processes (CLI, other workers) reach this process's gate within a second
    sched.add_job(svc.gate.refresh, "interval", seconds=gate_refresh_seconds, id="gate.refresh")
    sched.start()
    return sched
