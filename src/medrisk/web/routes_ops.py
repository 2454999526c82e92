"""Operations: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (can serve), parked jobs,
and the request-id middleware (``X-Request-ID`` in the JSON logs and on every response).

Gauges that describe shared state are computed when Prometheus scrapes: queue depth (Redis
``LLEN`` per queue, or the in-process queue), workers alive (heartbeats), scans finished in
the last minute, scans queued or running, and parked jobs (the database). Counters and
histograms of jobs run in this process (in-process backend, fallback) come from
prometheus-client's default registry; workers serve their own on their health port.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from pydantic import BaseModel
from sqlalchemy import func, select, text

from medrisk.jobs import logs, metrics, parking
from medrisk.platform.context import Platform
from medrisk.platform.errors import NotFound
from medrisk.platform.roles import Perm
from medrisk.store.blobs import BlobStoreError
from medrisk.store.models import ParkedJob, Scan, utcnow
from medrisk.web.common import ERRORS
from medrisk.web.deps import Caller, Ctx, Id

log = logging.getLogger(__name__)
router = APIRouter(responses=ERRORS)
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
_ALLOW = re.compile(rb'"allow":\s*true')
FALLBACK_MODE = {"local": "in-process fallback", "none": "waiting in the database"}


# --- metrics ------------------------------------------------------------------------------------------


class PlatformCollector:
    """Scrape-time gauges of the shared state (the database, the broker)."""

    def __init__(self, ctx: Platform) -> None:
        self.ctx = ctx

    def describe(self) -> list[Any]:
        return []  # no values at registration time: collected on each scrape only

    def collect(self) -> Any:
        jobs = self.ctx.jobs
        depth = GaugeMetricFamily("medrisk_queue_depth", "Jobs waiting per queue", labels=["queue"])
        alive = GaugeMetricFamily("medrisk_workers_alive", "Workers with a fresh heartbeat (Celery backend)")
        up = GaugeMetricFamily("medrisk_jobs_broker_up", "1 if the job broker answers (in-process backend: 1)")
        try:
            if hasattr(jobs, "queue_depth"):
                for q, n in jobs.queue_depth().items():
                    depth.add_metric([q], n)
                alive.add_metric([], len(jobs.workers_alive()))
            elif hasattr(jobs, "depth"):
                for q, n in jobs.depth().items():
                    depth.add_metric([q], n)
            up.add_metric([], 1)
        except Exception:
            up.add_metric([], 0)
        yield depth
        yield alive
        yield up
        per_minute = GaugeMetricFamily(
            "medrisk_scans_finished_last_minute", "Scans finished in the last 60 s, by status", labels=["status"]
        )
        waiting = GaugeMetricFamily("medrisk_scans_unfinished", "Scans queued or running", labels=["status"])
        parked = GaugeMetricFamily("medrisk_jobs_parked", "Parked jobs waiting for a person", labels=["job"])
        try:
            since = utcnow() - timedelta(seconds=60)
            with self.ctx.db.session() as db:
                for status, n in db.execute(
                    select(Scan.status, func.count()).where(Scan.finished_at >= since).group_by(Scan.status)
                ):
                    per_minute.add_metric([status], n)
                for status, n in db.execute(
                    select(Scan.status, func.count())
                    .where(Scan.status.in_(("queued", "running")))
                    .group_by(Scan.status)
                ):
                    waiting.add_metric([status], n)
                for name, n in db.execute(
                    select(ParkedJob.name, func.count()).where(ParkedJob.status == "parked").group_by(ParkedJob.name)
                ):
                    parked.add_metric([name], n)
        except Exception:
            log.warning("metrics: database unavailable", exc_info=True)
        yield per_minute
        yield waiting
        yield parked


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    reg: CollectorRegistry = request.app.state.ops_registry
    body = generate_latest(REGISTRY) + generate_latest(reg)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


# --- health -------------------------------------------------------------------------------------------


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    """Liveness: the process answers (restart it if not)."""
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
def readyz(ctx: Ctx) -> JSONResponse:
    """Readiness: the database (and an object blob store) answer (send traffic). The job backend is
    reported, not required: without broker or workers, jobs run in process (fallback) or wait in the database."""
    problems: list[str] = []
    started = time.perf_counter()
    try:
        with ctx.db.engine.connect() as c:
            c.execute(text("SELECT 1"))
    except Exception as exc:
        problems.append(f"database unreachable: {type(exc).__name__}")
    check_blobs = getattr(ctx.blobs, "check", None)  # an object store: reachable, credentials, bucket
    if check_blobs is not None:
        try:
            check_blobs()
        except BlobStoreError as exc:
            log.warning("readyz: %s", exc)  # the reason names the store, never a credential
            problems.append("blob store unavailable")
    jobs: dict[str, Any] = {"backend": type(ctx.jobs).__name__}
    if ctx.jobs is not None and hasattr(ctx.jobs, "unavailable"):
        problem = ctx.jobs.unavailable()
        jobs.update(
            broker=ctx.jobs.cfg.safe_broker(),
            problem=problem,
            mode="workers"
            if problem is None
            else ("in-process fallback" if ctx.jobs.cfg.fallback == "local" else "waiting"),
        )
        if problem is None:
            jobs["workers"] = ctx.jobs.workers_alive()
    body = {
        "status": "ready" if not problems else "not_ready",
        "problems": problems,
        "jobs": jobs,
        "checked_in_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return JSONResponse(body, status_code=200 if not problems else 503)


# --- parked jobs --------------------------------------------------------------------------------------


class ParkedJobOut(BaseModel):
    id: int
    job_id: str
    name: str
    queue: str
    payload: dict[str, int | str | None]
    attempts: int
    error: str
    traceback: str
    status: str
    parked_at: str
    resolved_at: str | None
    resolved_by: str | None
    new_job_id: str | None = None


@router.get(
    "/api/v1/jobs/parked",
    response_model=list[ParkedJobOut],
    tags=["operations"],
    summary="Jobs that failed on every attempt (platform administrators)",
)
def list_parked(
    ctx: Ctx,
    p: Caller,
    status: Annotated[str | None, Query(pattern="^(parked|retried|dismissed)$")] = "parked",
) -> list[dict[str, Any]]:
    p.require(Perm.CONFIG_WRITE)
    return parking.list_parked(ctx.db, status)


def _resolve(ctx: Platform, p: Any, parked_id: int, action: str) -> dict[str, Any]:
    from medrisk.platform import audit

    p.require(Perm.CONFIG_WRITE)
    out = parking.resolve(ctx.db, ctx.jobs, parked_id, action, p.username or f"user:{p.user_id}")
    if out is None:
        raise NotFound(f"no parked job {parked_id}")
    with ctx.db.session() as db:
        audit.record(
            ctx.keys, db, f"job.{action}", actor=p, target=f"parked_job:{parked_id}", details={"job": out["name"]}
        )
    return out


@router.post(
    "/api/v1/jobs/parked/{parked_id}/retry",
    response_model=ParkedJobOut,
    tags=["operations"],
    summary="Enqueue a parked job again, with a fresh set of attempts",
)
def retry_parked(ctx: Ctx, p: Caller, parked_id: Id) -> dict[str, Any]:
    return _resolve(ctx, p, parked_id, "retry")


@router.post(
    "/api/v1/jobs/parked/{parked_id}/dismiss",
    response_model=ParkedJobOut,
    tags=["operations"],
    summary="Mark a parked job as dealt with (it is not run again)",
)
def dismiss_parked(ctx: Ctx, p: Caller, parked_id: Id) -> dict[str, Any]:
    return _resolve(ctx, p, parked_id, "dismiss")


# --- middleware ---------------------------------------------------------------------------------------


class RequestContext:
    """ASGI middleware: a request id for the logs (and the jobs it enqueues), and gate decisions counted."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = next((v for k, v in scope.get("headers", []) if k == b"x-request-id"), b"")
        rid = rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex.encode()
        token = logs.bind(request_id=rid.decode())
        gate = scope["path"] == "/api/v1/gate"
        status: list[int] = []

        async def _send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid)]}
            elif gate and message["type"] == "http.response.body" and status and status[0] == 200:
                metrics.GATE_DECISIONS.labels("allow" if _ALLOW.search(message.get("body", b"")) else "deny").inc()
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            logs.unbind(token)


def install(app: Any, ctx: Platform) -> None:
    """Routes, the scrape-time collector and the middleware (outermost: it sees the gate's fast path too)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PlatformCollector(ctx))
    app.state.ops_registry = reg
    app.include_router(router)
    app.add_middleware(RequestContext)
