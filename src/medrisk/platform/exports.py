"""Exports for regulators and institutions: always scoped, always audited, no personal data."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medrisk.platform import audit
from medrisk.platform.context import Platform
from medrisk.platform.principal import Principal
from medrisk.platform.roles import Perm
from medrisk.platform.scope import scoped
from medrisk.store.models import Filing, Organisation, Scan

COLUMNS = [
    "filing_id",
    "institution_id",
    "institution",
    "name",
    "package",
    "platform",
    "app_type",
    "status",
    "revision",
    "approved_version_range",
    "current_version",
    "latest_score",
    "latest_grade",
    "latest_rules_version",
]


def _csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection): a cell never starts with = + - @."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def filing_rows(
    db: Session, p: Principal, *, status: str | None = None, org_id: int | None = None
) -> list[dict[str, Any]]:
    stmt = select(Filing, Organisation.name).join(Organisation, Organisation.id == Filing.org_id).order_by(Filing.id)
    if status:
        stmt = stmt.where(Filing.status == status)
    if org_id is not None:
        stmt = stmt.where(Filing.org_id == org_id)
    rows = db.execute(scoped(stmt, p, Filing)).all()
    latest_ids = select(func.max(Scan.id)).where(Scan.status == "done").group_by(Scan.filing_id)
    latest = {s.filing_id: s for s in db.scalars(scoped(select(Scan).where(Scan.id.in_(latest_ids)), p, Scan))}
    out = []
    for f, org_name in rows:
        s = latest.get(f.id)
        out.append(
            {
                "filing_id": f.id,
                "institution_id": f.org_id,
                "institution": org_name,
                "name": f.name,
                "package": f.package,
                "platform": f.platform,
                "app_type": f.app_type,
                "status": f.status,
                "revision": f.revision,
                "approved_version_range": f.approved_version_range,
                "current_version": f.current_version,
                "latest_score": s.score if s else None,
                "latest_grade": s.grade if s else None,
                "latest_rules_version": s.rules_version if s else None,
            }
        )
    return out


def export_filings(
    ctx: Platform, db: Session, p: Principal, fmt: str, *, status: str | None = None, org_id: int | None = None
) -> str:
    p.require(Perm.EXPORT)
    rows = filing_rows(db, p, status=status, org_id=org_id)
    audit.record(
        ctx.keys,
        db,
        "export.filings",
        actor=p,
        details={"format": fmt, "rows": len(rows), "status": status, "org_id": org_id},
    )
    if fmt == "json":
        return json.dumps({"filings": rows}, ensure_ascii=False, indent=1)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_safe(v) for k, v in r.items()})
    return buf.getvalue()
