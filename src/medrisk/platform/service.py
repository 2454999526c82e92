"""Building and starting the platform: migrations, keys, job queue, demo data, housekeeping."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from medrisk.crypto import self_test
from medrisk.jobs import InlineQueue, Periodic, ThreadQueue
from medrisk.platform import audit, demo, scanning
from medrisk.platform.context import Platform
from medrisk.platform.keys import open_keys
from medrisk.store import migrate
from medrisk.store.blobs import FilesystemBlobStore
from medrisk.store.db import Database, sqlite_url

DB_ENV = "MEDRISK_DB_URL"
DATA_ENV = "MEDRISK_DATA_DIR"


@dataclass
class ServiceConfig:
    data_dir: Path = Path("medrisk-data")
    db_url: str | None = None
    key_dir: Path | None = None
    jobs: str = "thread"  # thread | inline
    job_workers: int = 2
    scan_runner: str = "process"  # process | thread
    allow_generated_keystore_password: bool = False
    keystore_iterations: int | None = None
    migrate: bool = True

    @property
    def url(self) -> str:
        return self.db_url or os.environ.get(DB_ENV) or sqlite_url(self.data_dir / "medrisk.db")


def resolve_data_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get(DATA_ENV) or "medrisk-data")


def build(cfg: ServiceConfig) -> Platform:
    self_test()  # refuse to start on a cryptography build without SM2/SM3/SM4
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    url = cfg.url
    if cfg.migrate:
        migrate.upgrade(url)
    keys = open_keys(
        cfg.key_dir or cfg.data_dir / "keys",
        allow_generate=cfg.allow_generated_keystore_password,
        iterations=cfg.keystore_iterations,
    )
    keys.public_key  # noqa: B018 - generate or open the signing key now, not on the first request
    ctx = Platform(
        db=Database(url), blobs=FilesystemBlobStore(cfg.data_dir / "blobs"), keys=keys, data_dir=cfg.data_dir
    )
    ctx.jobs = InlineQueue() if cfg.jobs == "inline" else ThreadQueue(cfg.job_workers)
    ctx.scan_runner = (
        scanning.ProcessScanRunner(cfg.job_workers) if cfg.scan_runner == "process" else scanning.ThreadScanRunner()
    )
    ctx.jobs.register("scan", lambda scan_id: scanning.run_scan(ctx, int(scan_id)))
    ctx.jobs.register("audit.housekeeping", lambda: housekeeping(ctx))
    from medrisk.loop.engine import register as register_loop

    register_loop(ctx)  # disposition engine, gate, notifications (jobs loop.deliver, loop.tick)
    with ctx.db.session() as db:
        audit.ensure_head(db)
    return ctx


def housekeeping(ctx: Platform) -> None:
    """Sign a checkpoint at the head of the audit log and purge entries past retention."""
    with ctx.db.session() as db:
        audit.checkpoint(ctx.keys, db)
    with ctx.db.session() as db:
        audit.purge(ctx.keys, db)


def start_background(ctx: Platform, interval_seconds: float = 600.0) -> Periodic:
    scanning.requeue_unfinished(ctx)
    periodic = Periodic(interval_seconds, [("audit.housekeeping", lambda: housekeeping(ctx))])
    periodic.start()
    if ctx.loop is not None:
        import threading

        threading.Thread(target=ctx.loop.gate.warm, name="medrisk-gate-warm", daemon=True).start()
        ctx.loop.start()  # APScheduler: deadlines and notification retries, gate refresh
    return periodic


def seed_demo_if_empty(ctx: Platform) -> list[demo.DemoUser]:
    return demo.seed(ctx) if demo.is_empty(ctx) else []
