"""Building and starting the platform: migrations, keys, job queue, demo data, housekeeping."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medrisk.crypto import self_test
from medrisk.jobs import InlineQueue, Periodic, ThreadQueue
from medrisk.jobs.parking import DbParking
from medrisk.platform import audit, demo, scanning
from medrisk.platform.context import Platform
from medrisk.platform.keys import open_keys
from medrisk.store import migrate
from medrisk.store.blobs import open_blob_store
from medrisk.store.db import Database, sqlite_url

DB_ENV = "MEDRISK_DB_URL"
DATA_ENV = "MEDRISK_DATA_DIR"
JOBS_ENV = "MEDRISK_JOBS"  # thread (default) | celery
MAX_ATTEMPTS_ENV = "MEDRISK_JOBS_MAX_ATTEMPTS"  # attempts of a scan job before it is parked (3)
BACKOFF_ENV = "MEDRISK_JOBS_RETRY_BACKOFF"  # seconds before the 2nd attempt, doubled after (2)


@dataclass
class ServiceConfig:
    data_dir: Path = Path("medrisk-data")
    db_url: str | None = None
    key_dir: Path | None = None
    jobs: str = "thread"  # thread | inline | celery (medrisk.jobs.celery_backend)
    job_workers: int = 2
    scan_runner: str = "process"  # process | thread | worker (in a Celery pool process)
    celery: Any = None  # CeleryConfig; None: from the environment (MEDRISK_BROKER_URL, ...)
    allow_generated_keystore_password: bool = False
    keystore_iterations: int | None = None
    migrate: bool = True
    blobs: str | None = None  # blob store URL; None: $MEDRISK_BLOBS (s3://bucket/prefix), else data_dir/blobs

    @property
    def url(self) -> str:
        return self.db_url or os.environ.get(DB_ENV) or sqlite_url(self.data_dir / "medrisk.db")


def resolve_data_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get(DATA_ENV) or "medrisk-data")


def build(cfg: ServiceConfig) -> Platform:
    self_test()  # refuse to start on a cryptography build without SM2/SM3/SM4
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    blobs = open_blob_store(cfg.data_dir, cfg.blobs)  # an S3 store is checked now (reachable, credentials)
    url = cfg.url
    if cfg.migrate:
        migrate.upgrade(url)
    keys = open_keys(
        cfg.key_dir or cfg.data_dir / "keys",
        allow_generate=cfg.allow_generated_keystore_password,
        iterations=cfg.keystore_iterations,
    )
    keys.public_key  # noqa: B018 - generate or open the signing key now, not on the first request
    ctx = Platform(db=Database(url), blobs=blobs, keys=keys, data_dir=cfg.data_dir)
    ctx.jobs = make_queue(cfg, ctx)
    if cfg.scan_runner == "process":
        ctx.scan_runner = scanning.ProcessScanRunner(cfg.job_workers)
    elif cfg.scan_runner == "worker":
        from medrisk.jobs.worker import WorkerScanRunner

        ctx.scan_runner = WorkerScanRunner()
    else:
        ctx.scan_runner = scanning.ThreadScanRunner()
    register_jobs(ctx)
    from medrisk.loop.engine import register as register_loop

    register_loop(ctx)  # disposition engine, gate, notifications (jobs loop.deliver, loop.tick)
    from medrisk.channels.service import register as register_channels

    register_channels(ctx)  # channel monitoring (jobs channels.crawl, channels.tick)
    with ctx.db.session() as db:
        audit.ensure_head(db)
    return ctx


def make_queue(cfg: ServiceConfig, ctx: Platform) -> Any:
    """The job backend named by ``cfg.jobs`` (``celery``: Redis broker from ``cfg.celery`` or the environment)."""
    parking = DbParking(ctx.db)  # parked jobs are kept in the database, whatever the backend
    if cfg.jobs == "inline":
        return InlineQueue(parking)
    if cfg.jobs == "celery":
        from medrisk.jobs.celery_backend import CeleryConfig, CeleryQueue

        return CeleryQueue(cfg.celery or CeleryConfig.from_env(), parking)
    if cfg.jobs != "thread":
        raise ValueError(f"unknown job backend {cfg.jobs!r} (thread, inline or celery)")
    return ThreadQueue(cfg.job_workers, parking)


def register_jobs(ctx: Platform) -> None:
    """The platform's own jobs. ``scan`` is a builder's upload or a requested rescan (queue
    ``interactive``); ``scan.bulk`` is the same job for mass rescans (queue ``bulk``), so a
    rule-library rescan of every app never holds up an upload."""
    assert ctx.jobs is not None
    scan_options: dict[str, Any] = {
        "time_limit": 300.0,  # the scanner stops itself at 120 s; this is the backstop
        "max_attempts": int(os.environ.get(MAX_ATTEMPTS_ENV) or 3),
        "retry_backoff": float(os.environ.get(BACKOFF_ENV) or 2.0),
        "on_park": lambda payload, error: scanning.park_scan(ctx, int(payload["scan_id"] or 0), error),
        "on_unpark": lambda payload: scanning.unpark_scan(ctx, int(payload["scan_id"] or 0)),
    }
    ctx.jobs.register("scan", lambda scan_id: scanning.run_scan(ctx, int(scan_id)), queue="interactive", **scan_options)
    ctx.jobs.register("scan.bulk", lambda scan_id: scanning.run_scan(ctx, int(scan_id)), queue="bulk", **scan_options)
    ctx.jobs.register("audit.housekeeping", lambda: housekeeping(ctx), time_limit=1800.0)


def housekeeping(ctx: Platform) -> None:
    """Sign a checkpoint at the head of the audit log and purge entries past retention."""
    with ctx.db.session() as db:
        audit.checkpoint(ctx.keys, db)
    with ctx.db.session() as db:
        audit.purge(ctx.keys, db)


def start_background(ctx: Platform, interval_seconds: float = 600.0) -> Periodic:
    if scanning.resent_on_start(ctx.jobs):  # Celery keeps its messages in Redis (AOF): nothing to re-send
        scanning.requeue_unfinished(ctx)
    periodic = Periodic(interval_seconds, [("audit.housekeeping", lambda: housekeeping(ctx))])
    periodic.start()
    if ctx.loop is not None:
        import threading

        threading.Thread(target=ctx.loop.gate.warm, name="medrisk-gate-warm", daemon=True).start()
        ctx.loop.start()  # APScheduler: deadlines and notification retries, gate refresh
    if ctx.channels is not None:  # channel crawls when due (each channel's interval_minutes)
        ctx.channels.ticker = Periodic(60.0, [("channels.tick", ctx.channels.crawl_due)])
        ctx.channels.ticker.start()
    return periodic


def seed_demo_if_empty(ctx: Platform) -> list[demo.DemoUser]:
    return demo.seed(ctx) if demo.is_empty(ctx) else []
