"""/api/v1/audit, /alerts, /config and /exports: oversight for auditors, regulators and administrators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from medrisk.platform import audit, exports, settings
from medrisk.platform.errors import Forbidden, Invalid
from medrisk.platform.roles import Perm, Role
from medrisk.platform.scope import scoped
from medrisk.store.models import Alert, AuditEntry
from medrisk.web.common import ERRORS
from medrisk.web.deps import Caller, Ctx
from medrisk.web.schemas import MAX_ID, AlertOut, AuditEntryOut, AuditVerifyOut, SettingsOut, SettingsPatch

router = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.get("/audit", response_model=list[AuditEntryOut], tags=["audit"], summary="Audit entries the caller can see")
def list_audit(
    ctx: Ctx,
    p: Caller,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$")] = None,
    after_seq: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditEntryOut]:
    p.require(Perm.AUDIT_READ)
    stmt = select(AuditEntry).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq).limit(limit)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
    if since is not None:
        if since.tzinfo is None:
            raise Invalid("since needs a time zone (e.g. 2026-01-01T00:00:00Z)", field="since")
        stmt = stmt.where(AuditEntry.ts >= since)
    with ctx.db.session() as db:
        return [AuditEntryOut.model_validate(e) for e in db.scalars(scoped(stmt, p, AuditEntry))]


@router.get(
    "/audit/verify", response_model=AuditVerifyOut, tags=["audit"], summary="Check the SM3 chain and SM2 checkpoints"
)
def verify_audit(ctx: Ctx, p: Caller) -> AuditVerifyOut:
    p.require(Perm.AUDIT_READ)
    if not p.is_admin and p.role is not Role.AUDITOR:
        raise Forbidden("only auditors and platform administrators verify the whole log")
    with ctx.db.session() as db:
        rep = audit.verify(ctx.keys, db)
        audit.record(ctx.keys, db, "audit.verified", actor=p, details={"ok": rep.ok, "entries": rep.entries})
        return AuditVerifyOut.model_validate(rep.to_dict())


@router.get("/alerts", response_model=list[AlertOut], tags=["audit"], summary="High-frequency and bulk login alerts")
def list_alerts(ctx: Ctx, p: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AlertOut]:
    p.require(Perm.AUDIT_READ)
    stmt = select(Alert).order_by(Alert.id.desc()).limit(limit)
    with ctx.db.session() as db:
        return [AlertOut.model_validate(a) for a in db.scalars(scoped(stmt, p, Alert))]


@router.get("/config", response_model=SettingsOut, tags=["config"], summary="Platform settings")
def get_config(ctx: Ctx, p: Caller) -> SettingsOut:
    p.require(Perm.AUDIT_READ)
    with ctx.db.session() as db:
        return SettingsOut.model_validate(settings.get_all(db))


@router.patch("/config", response_model=SettingsOut, tags=["config"], summary="Change settings (audited)")
def update_config(body: SettingsPatch, ctx: Ctx, p: Caller) -> SettingsOut:  # type: ignore[valid-type]
    p.require(Perm.CONFIG_WRITE)
    changes = settings.validate({k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None})
    with ctx.db.session() as db:
        diff = settings.apply(db, changes)
        if diff:
            audit.record(
                ctx.keys, db, "config.changed", actor=p, details={k: {"from": a, "to": b} for k, (a, b) in diff.items()}
            )
        return SettingsOut.model_validate(settings.get_all(db))


@router.get(
    "/exports/filings",
    tags=["exports"],
    summary="Export visible filings with their latest grade (CSV or JSON; audited)",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "object"}}}
        }
    },
)
def export_filings(
    ctx: Ctx,
    p: Caller,
    format: Annotated[str, Query(pattern=r"^(csv|json)$")] = "csv",
    status: Annotated[str | None, Query(pattern=r"^(pending|approved|rejected)$")] = None,
    org_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    with ctx.db.session() as db:
        text = exports.export_filings(ctx, db, p, format, status=status, org_id=org_id)
    media = "application/json" if format == "json" else "text/csv; charset=utf-8"
    return Response(text, media_type=media, headers={"Content-Disposition": f'attachment; filename="filings.{format}"'})
