"""`medrisk worker`: a Celery worker that runs the platform's jobs.

The worker's main process consumes the queues and supervises a prefork pool; each pool
process builds the same Platform as the service (``service.build`` from the same
configuration: ``MEDRISK_DB_URL``, ``MEDRISK_DATA_DIR``, key store, broker) and runs jobs
in itself, scans under the scanner's limits (address space via ``RLIMIT_AS`` for the
process, wall time via ``SIGALRM`` per scan; Celery's time limits are the backstop).

The main process also sends a heartbeat to Redis (the web side falls back to in-process
jobs when none is fresh) and serves ``/healthz``, ``/readyz`` and ``/metrics`` on
``--health-port``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medrisk.platform.service import ServiceConfig

log = logging.getLogger("medrisk.worker")


class WorkerScanRunner:
    """Scans in the calling (pool) process under the scanner's wall-time and memory limits."""

    def __init__(self, timeout_seconds: float | None = None, memory_bytes: int | None = None) -> None:
        from medrisk.analysis.limits import Limits
        from medrisk.platform import scanning

        limits = Limits()
        self.timeout = timeout_seconds or limits.timeout_seconds
        scanning._init_worker(memory_bytes or limits.memory_bytes)  # RLIMIT_AS and the SIGALRM handler

    def run(self, path: Path, name: str, app_type: str | None, policy: Path | None = None) -> dict[str, Any]:
        from medrisk.platform import scanning
        from medrisk.scan import failure

        try:
            return scanning._worker_scan(str(path), name, app_type, self.timeout, str(policy) if policy else None)
        except Exception as exc:  # an analyser bug on this package: a result, as in ProcessScanRunner and the CLI
            if type(exc).__name__ == "SoftTimeLimitExceeded":
                raise  # the job's own time limit: retried, then parked
            return failure(name, "internal_error", f"analyser failure ({type(exc).__name__}: {exc})")

    def close(self) -> None:
        pass


class _State:
    ready = False
    stopping = False
    name = ""


# The main process forks the pool processes (at start, after a child died, after --max-tasks-per-child)
# while its own threads run. SQLite (and SQLAlchemy's module locks) are not fork-safe: a fork while the
# readiness check holds SQLite's global mutex leaves the child with that mutex locked for ever, and its
# first database connection blocks (seen: a worker "ready" whose pool process never started a job).
# The readiness check therefore uses the database only under this lock, and every fork waits for it.
_FORK_LOCK = threading.Lock()


def _fork_safe() -> None:
    os.register_at_fork(
        before=_FORK_LOCK.acquire, after_in_parent=_FORK_LOCK.release, after_in_child=_FORK_LOCK.release
    )


def _heartbeat(queue: Any, stop: threading.Event) -> None:
    """Every HEARTBEAT_SECONDS: this worker is alive; every visibility_timeout/4: sweep the job ledger."""
    from medrisk.jobs.celery_backend import HEARTBEAT_SECONDS, WORKERS_KEY

    sweep_every = max(1.0, queue.cfg.visibility_timeout / 4)
    next_sweep = time.monotonic() + sweep_every
    while not stop.is_set():
        if _State.ready and not _State.stopping:
            try:
                queue.redis.zadd(WORKERS_KEY, {_State.name: time.time()})
            except Exception as exc:  # Redis restarting: the worker waits for it, the web side falls back
                log.warning("heartbeat to the broker failed: %s", exc)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + sweep_every
                try:
                    queue.reconcile(_State.name)
                except Exception as exc:
                    log.warning("job ledger sweep failed: %s", exc)
        stop.wait(min(HEARTBEAT_SECONDS, max(0.2, next_sweep - time.monotonic())))


def _health_server(port: int, host: str, checks: Any) -> ThreadingHTTPServer:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            if self.path.startswith("/metrics"):
                from prometheus_client import CollectorRegistry, generate_latest, multiprocess

                reg = CollectorRegistry()
                multiprocess.MultiProcessCollector(reg)
                body, ctype, status = generate_latest(reg), "text/plain; version=0.0.4", 200
            elif self.path.startswith("/healthz"):
                body, ctype, status = b'{"status":"ok"}', "application/json", 200
            elif self.path.startswith("/readyz"):
                problems = checks()
                status = 200 if not problems else 503
                body = json.dumps({"status": "ready" if not problems else "not_ready", "problems": problems}).encode()
                ctype = "application/json"
            else:
                body, ctype, status = b"not found", "text/plain", 404
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer((host, port), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, name="medrisk-worker-health", daemon=True).start()
    return srv


def run(
    cfg: ServiceConfig,
    *,
    broker_url: str | None,
    concurrency: int,
    queues: list[str],
    health_port: int | None,
    health_host: str = "127.0.0.1",
    loglevel: str = "info",
    log_format: str | None = None,
) -> int:
    # prometheus-client must be in multiprocess mode before it is imported (medrisk.platform_cli sets it)
    mp_dir = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or cfg.data_dir / "metrics" / f"worker-{os.getpid()}")
    shutil.rmtree(mp_dir, ignore_errors=True)
    mp_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(mp_dir)
    if "prometheus_client" in sys.modules and not os.environ.get("MEDRISK_WORKER_MP_OK"):
        import prometheus_client.values as pv

        if pv.ValueClass.__name__ == "MutexValue":  # imported too early: re-pick the multiprocess value class
            pv.ValueClass = pv.get_value_class()

    from celery import signals

    from medrisk.jobs import celery_backend, logs
    from medrisk.jobs.base import QUEUES
    from medrisk.platform import service
    from medrisk.store import migrate

    logs.setup("worker", log_format, loglevel)
    for q in queues:
        if q not in QUEUES:
            raise SystemExit(f"medrisk: unknown queue {q!r} (one of {', '.join(QUEUES)})")
    url = cfg.url
    try:
        current, head = migrate.current(url), migrate.head()
    except Exception as exc:
        raise SystemExit(f"medrisk: cannot reach the database: {exc}") from exc
    if current != head:
        raise SystemExit(f"medrisk: database at revision {current}, code expects {head}: run `medrisk db upgrade`")
    ccfg = celery_backend.CeleryConfig.from_env(broker_url)
    cfg.jobs, cfg.scan_runner, cfg.migrate, cfg.celery = "celery", "worker", False, ccfg
    _State.name = celery_backend.worker_name()

    def factory() -> celery_backend.CeleryQueue:
        ctx = service.build(cfg)  # in the pool process: its own database connections and scanners
        assert isinstance(ctx.jobs, celery_backend.CeleryQueue)
        return ctx.jobs

    celery_backend._WORKER_FACTORY = factory
    main_queue = celery_backend.CeleryQueue(ccfg)  # heartbeat and readiness from the main process

    @signals.worker_process_init.connect
    def _init_child(**_kw: Any) -> None:
        logs.setup("worker", log_format, loglevel)
        celery_backend._WORKER_QUEUE = None
        celery_backend.worker_queue()  # build now: the first job should not wait for start-up

    @signals.worker_ready.connect
    def _ready(**_kw: Any) -> None:
        _State.ready = True
        try:  # the web side sends jobs here from this moment, not from the next beat
            main_queue.redis.zadd(celery_backend.WORKERS_KEY, {_State.name: time.time()})
        except Exception as exc:
            log.warning("heartbeat to the broker failed: %s", exc)
        log.info("worker %s ready: queues %s, %s processes", _State.name, ",".join(queues), concurrency)

    @signals.worker_shutting_down.connect
    def _stopping(**_kw: Any) -> None:  # warm shutdown: running jobs finish, the others stay queued
        _State.stopping = True
        try:
            main_queue.redis.zrem(celery_backend.WORKERS_KEY, _State.name)
        except Exception:
            log.debug("could not remove the heartbeat", exc_info=True)

    def checks() -> list[str]:
        problems = []
        if not _State.ready:
            problems.append("worker not consuming yet")
        if _State.stopping:
            problems.append("shutting down")
        try:
            main_queue.redis.ping()
        except Exception as exc:
            problems.append(f"broker unreachable: {exc}")
        try:
            from sqlalchemy import text

            from medrisk.store.db import Database

            with _FORK_LOCK:  # no fork of a pool process while SQLite's locks are held here
                db = Database(url)
                try:
                    with db.engine.connect() as c:
                        c.execute(text("SELECT 1"))
                finally:
                    db.dispose()
        except Exception as exc:
            problems.append(f"database unreachable: {type(exc).__name__}")
        return problems

    _fork_safe()
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(main_queue, stop), name="medrisk-heartbeat", daemon=True).start()
    srv = _health_server(health_port, health_host, checks) if health_port is not None else None
    argv = [
        "worker",
        f"--concurrency={max(1, concurrency)}",
        f"--queues={','.join(queues)}",
        f"--hostname={_State.name}",
        f"--loglevel={loglevel.upper()}",
        "--pool=prefork",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--max-tasks-per-child=500",  # bounds any slow leak of a long-lived scanner
    ]
    try:
        main_queue.app.worker_main(argv)
    finally:
        stop.set()
        if srv is not None:
            srv.shutdown()
        try:
            main_queue.redis.zrem(celery_backend.WORKERS_KEY, _State.name)
        except Exception:
            log.debug("could not remove the heartbeat", exc_info=True)
        shutil.rmtree(mp_dir, ignore_errors=True)
    return 0
