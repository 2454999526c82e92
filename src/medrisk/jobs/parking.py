"""Parked jobs in the database (``parked_jobs``): record, list, retry, dismiss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from medrisk.jobs.base import JobSpec, Payload
from medrisk.store.models import ParkedJob, utcnow

if TYPE_CHECKING:
    from medrisk.jobs.base import JobQueue
    from medrisk.store.db import Database


class DbParking:
    def __init__(self, db: Database) -> None:
        self.db = db

    def park(self, job_id: str, spec: JobSpec, payload: dict[str, Payload], attempts: int, error: str) -> None:
        try:
            with self.db.session() as s:
                s.add(
                    ParkedJob(
                        job_id=job_id,
                        name=spec.name,
                        queue=spec.queue,
                        payload=dict(payload),
                        attempts=attempts,
                        error=error,
                        status="parked",
                        parked_at=utcnow(),
                    )
                )
        except IntegrityError:
            pass  # parked already (a redelivered message of a parked job): one record


def to_dict(p: ParkedJob) -> dict[str, Any]:
    return {
        "id": p.id,
        "job_id": p.job_id,
        "name": p.name,
        "queue": p.queue,
        "payload": p.payload,
        "attempts": p.attempts,
        "error": p.error.splitlines()[0] if p.error else "",
        "traceback": p.error,
        "status": p.status,
        "parked_at": p.parked_at.isoformat(),
        "resolved_at": p.resolved_at.isoformat() if p.resolved_at else None,
        "resolved_by": p.resolved_by,
    }


def list_parked(db: Database, status: str | None = "parked", limit: int = 200) -> list[dict[str, Any]]:
    with db.session() as s:
        stmt = select(ParkedJob).order_by(ParkedJob.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(ParkedJob.status == status)
        return [to_dict(p) for p in s.scalars(stmt)]


def resolve(db: Database, jobs: JobQueue | None, parked_id: int, action: str, by: str) -> dict[str, Any] | None:
    """``retry`` (enqueue the same job again, a fresh set of attempts) or ``dismiss``."""
    with db.session() as s:
        p = s.get(ParkedJob, parked_id, with_for_update=True)
        if p is None:
            return None
        if p.status != "parked":
            return to_dict(p)
        p.status = "retried" if action == "retry" else "dismissed"
        p.resolved_at, p.resolved_by = utcnow(), by[:128]
        name, payload = p.name, dict(p.payload)
        out = to_dict(p)
    if action == "retry":
        assert jobs is not None
        spec = getattr(jobs, "specs", {}).get(name)
        if spec is not None and spec.on_unpark is not None:
            spec.on_unpark(payload)
        out["new_job_id"] = jobs.enqueue(name, **payload)
    return out
