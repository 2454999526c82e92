"""CSV and XLSX exports of app lists and findings for the console: scoped, audited, no personal data.

Rows are what the caller may see (``platform.scope``) inside the organisation they chose;
cells that a spreadsheet would run as a formula are neutralised the same way as the API's
exports (``platform.exports._csv_safe``), in XLSX too (openpyxl stores "=..." as a formula).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medrisk.platform import audit
from medrisk.platform.context import Platform
from medrisk.platform.exports import _csv_safe
from medrisk.platform.principal import Principal
from medrisk.platform.roles import Perm
from medrisk.platform.scope import scoped
from medrisk.reports import posture
from medrisk.store.models import Filing, Organisation, PostureApp, PostureRuleHit

XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
APP_COLUMNS = [
    "filing_id",
    "institution",
    "name",
    "package",
    "platform",
    "app_type",
    "status",
    "current_version",
    "approved_version_range",
    "latest_grade",
    "latest_score",
    "open_findings",
    "latest_scan_id",
    "disposition",
]
FINDING_COLUMNS = [
    "filing_id",
    "institution",
    "name",
    "package",
    "scan_id",
    "grade",
    "rule_id",
    "severity",
    "category",
    "title_zh",
    "title_en",
]


def app_rows(db: Session, p: Principal, root: Organisation) -> list[dict[str, Any]]:
    rows, _ = posture.apps_in(db, root, limit=1_000_000)
    visible = set(db.scalars(scoped(select(Filing.id).where(Filing.org_id.in_(posture.subtree_ids(root))), p, Filing)))
    out = []
    for r in rows:
        f = r["filing"]
        if f.id not in visible:
            continue
        out.append(
            {
                "filing_id": f.id,
                "institution": r["org"],
                "name": f.name,
                "package": f.package,
                "platform": f.platform,
                "app_type": f.app_type,
                "status": f.status,
                "current_version": f.current_version,
                "approved_version_range": f.approved_version_range,
                "latest_grade": r["grade"],
                "latest_score": r["score"],
                "open_findings": r["findings"],
                "latest_scan_id": r["scan_id"],
                "disposition": r["state"],
            }
        )
    return out


def finding_rows(db: Session, p: Principal, root: Organisation) -> list[dict[str, Any]]:
    titles = posture.rule_titles()
    stmt = (
        select(PostureRuleHit, Filing, Organisation.name, PostureApp)
        .join(Filing, Filing.id == PostureRuleHit.filing_id)
        .join(Organisation, Organisation.id == Filing.org_id)
        .join(PostureApp, PostureApp.filing_id == Filing.id)
        .where(Filing.org_id.in_(posture.subtree_ids(root)))
        .order_by(Filing.id, PostureRuleHit.rule_id)
    )
    out = []
    for hit, f, org_name, pa in db.execute(scoped(stmt, p, Filing)).all():
        t = titles.get(hit.rule_id, {}).get("title") or {}
        out.append(
            {
                "filing_id": f.id,
                "institution": org_name,
                "name": f.name,
                "package": f.package,
                "scan_id": pa.scan_id,
                "grade": pa.grade,
                "rule_id": hit.rule_id,
                "severity": hit.severity,
                "category": hit.category,
                "title_zh": t.get("zh", ""),
                "title_en": t.get("en", ""),
            }
        )
    return out


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns)
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_safe(r.get(k)) for k in columns})
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # the BOM lets Excel open Chinese CSV as UTF-8


def to_xlsx(rows: list[dict[str, Any]], columns: list[str], title: str) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    ws.append(columns)
    for r in rows:
        ws.append([_csv_safe(r.get(k)) for k in columns])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def export(ctx: Platform, db: Session, p: Principal, root: Organisation, what: str, fmt: str) -> bytes:
    p.require(Perm.EXPORT)
    if what == "apps":
        rows, columns = app_rows(db, p, root), APP_COLUMNS
    else:
        rows, columns = finding_rows(db, p, root), FINDING_COLUMNS
    audit.record(
        ctx.keys,
        db,
        f"export.{what}",
        actor=p,
        org_id=root.id,
        details={"format": fmt, "rows": len(rows), "org_id": root.id},
    )
    return to_csv(rows, columns) if fmt == "csv" else to_xlsx(rows, columns, what)
