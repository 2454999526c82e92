"""Bulk rescans (a new rule library): the latest version of every approved filing, on the ``bulk`` queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from medrisk.store.models import Filing, Scan, Version, utcnow

if TYPE_CHECKING:
    from medrisk.platform.context import Platform


def rescan_all(ctx: Platform, limit: int | None = None) -> int:
    """Queue one new scan per approved filing's latest version (skipping those with a scan queued or running)."""
    with ctx.db.session() as db:
        latest = (
            select(func.max(Version.id))
            .join(Filing, Filing.id == Version.filing_id)
            .where(Filing.status == "approved")
            .group_by(Version.filing_id)
        )
        busy = select(Scan.version_id).where(Scan.status.in_(("queued", "running")))
        stmt = select(Version).where(Version.id.in_(latest), Version.id.not_in(busy)).order_by(Version.id)
        if limit:
            stmt = stmt.limit(limit)
        ids = []
        for v in db.scalars(stmt):
            s = Scan(version_id=v.id, filing_id=v.filing_id, org_id=v.org_id, status="queued", created_at=utcnow())
            db.add(s)
            db.flush()
            ids.append(s.id)
    assert ctx.jobs is not None
    for sid in ids:
        ctx.jobs.enqueue("scan.bulk", scan_id=sid)
    return len(ids)
