"""The closed loop: dispositions (builder's notice, regulators' actions), events from monitoring,
notification endpoints and notifications, the circuit-breaker gate and its signed status list."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from medrisk.loop import notify
from medrisk.loop.engine import LoopService
from medrisk.platform.context import Platform
from medrisk.platform.errors import Forbidden, Invalid, NotFound
from medrisk.platform.principal import Principal
from medrisk.platform.roles import Perm
from medrisk.platform.scope import get_visible, org_visible, scoped
from medrisk.store.models import (
    DeliveryAttempt,
    Disposition,
    Filing,
    Notification,
    NotifyEndpoint,
    Transition,
)
from medrisk.web.common import ERRORS
from medrisk.web.deps import Caller, Ctx, Id
from medrisk.web.schemas import EMAIL, MAX_ID, URL, In, Out

router = APIRouter(tags=["loop"], responses=ERRORS)
VERSION = r"^v?\d{1,9}(\.\d{1,9}){0,3}([-+._ A-Za-z0-9]{0,40})$"


_In, _Out = In, Out


class TransitionOut(_Out):
    id: int
    event_id: str
    rule: str
    from_state: str
    to_state: str
    cause: str
    evidence: dict[str, Any]
    actor: str
    reason: str
    deadline_at: datetime | None
    at: datetime


class FindingOut(BaseModel):
    rule: str | None = None
    severity: str | None = None
    title: dict[str, str]
    remediation: dict[str, str]


class NoticeOut(BaseModel):
    grade: str | None
    scan_id: int | None
    deadline_at: datetime | None
    findings: list[FindingOut]
    submit_fix: str


class DispositionOut(BaseModel):
    filing_id: int
    state: str
    cause: str | None
    deadline_at: datetime | None
    accepted_until: datetime | None
    last_grade: str | None
    last_scan_id: int | None
    gate: Literal["allow", "deny"]
    notice: NoticeOut | None
    transitions: list[TransitionOut]


class ActionIn(_In):
    action: Literal["issue_notice", "extend_deadline", "suspend", "reinstate", "accept_risk", "revoke"]
    reason: str = Field("", max_length=2000)
    days: int | None = Field(None, ge=1, le=365)
    until: AwareDatetime | None = None
    event_id: str | None = Field(None, min_length=1, max_length=120, pattern=r"^[\x21-\x7e]+$")


class EventIn(_In):
    kind: Literal["version_seen", "counterfeit_found", "tampered_found"]
    event_id: str = Field(min_length=1, max_length=120, pattern=r"^[\x21-\x7e]+$")
    filing_id: int = Field(ge=1, le=MAX_ID)
    version: str | None = Field(None, max_length=64, pattern=VERSION)
    channel: str | None = Field(None, max_length=200)
    detail: str | None = Field(None, max_length=2000)
    url: str | None = Field(None, max_length=2000, pattern=URL)


class OutcomeOut(BaseModel):
    event_id: str
    duplicate: bool
    state: str | None
    transition_id: int | None
    outcome: str


class EndpointIn(_In):
    kind: Literal["email", "webhook"]
    address: str = Field(min_length=3, max_length=2000)
    language: Literal["zh", "en", "both"] = "zh"
    digest: Literal["none", "daily", "weekly"] = Field("none", description="e-mail: one summary per period")
    org_id: int | None = Field(None, ge=1, le=MAX_ID)


class EndpointOut(_Out):
    id: int
    org_id: int
    kind: str
    address: str
    language: str
    digest: str
    enabled: bool
    consecutive_failures: int
    disabled_at: datetime | None
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str | None = Field(None, description="webhook HMAC-SM3 secret, shown once")


class AttemptOut(_Out):
    at: datetime
    ok: bool
    error: str | None


class NotificationOut(_Out):
    id: int
    filing_id: int
    event_id: str
    template: str
    channel: str
    recipient: str
    audience: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivery: list[AttemptOut] = []


class GateIn(_In):
    code: str = Field(min_length=1, max_length=8192)
    version: str | None = Field(None, max_length=64)


class GateOut(BaseModel):
    allow: bool
    decision: Literal["allow", "deny"]
    reason: str
    filing_id: int | None
    state: str | None


class StatusListOut(BaseModel):
    payload: str = Field(description="base64url of the canonical JSON status list (what is signed)")
    signature: str = Field(description="base64url DER SM2-with-SM3 signature over the ASCII payload")
    alg: str
    kid: str
    status_list: dict[str, Any]


def _loop(ctx: Platform) -> LoopService:
    assert ctx.loop is not None
    return ctx.loop


def _mask(address: str, audience: str) -> str:
    """Contacts' addresses and phones are personal data: shown masked."""
    if address.startswith("http"):
        return address
    if "@" not in address:
        return address[:3] + "****" + address[-2:] if audience == "builder" else address
    name, _, domain = address.partition("@")
    return f"{name[:1]}***@{domain}"


# --- dispositions --------------------------------------------------------------------------------


@router.get("/api/v1/filings/{filing_id}/disposition", response_model=DispositionOut, summary="Disposition and notice")
def get_disposition(filing_id: Id, ctx: Ctx, p: Caller) -> DispositionOut:
    p.require(Perm.FILING_READ)
    svc = _loop(ctx)
    with ctx.db.session() as db:
        f = get_visible(db, p, Filing, filing_id, "filing")
        if f.approved_revision is None:
            raise NotFound(f"filing {filing_id} is not approved: no disposition yet")
        d = db.get(Disposition, f.id)
        ts = db.scalars(select(Transition).where(Transition.filing_id == f.id).order_by(Transition.id)).all()
        state = d.state if d else "filed"
        notice = None
        if state in ("rectifying", "suspended") and d is not None:
            notice = NoticeOut(
                grade=d.last_grade,
                scan_id=d.last_scan_id,
                deadline_at=d.deadline_at,
                findings=[FindingOut(**x) for x in notify._findings(db, d.last_scan_id, limit=50)],
                submit_fix=f"POST /api/v1/filings/{f.id}/versions (the release is scanned and re-evaluated)",
            )
        return DispositionOut(
            filing_id=f.id,
            state=state,
            cause=d.cause if d else None,
            deadline_at=d.deadline_at if d else None,
            accepted_until=d.accepted_until if d else None,
            last_grade=d.last_grade if d else None,
            last_scan_id=d.last_scan_id if d else None,
            gate="allow" if state in svc.policy.gate_allows else "deny",
            notice=notice,
            transitions=[TransitionOut.model_validate(t) for t in ts],
        )


@router.post(
    "/api/v1/filings/{filing_id}/disposition/actions",
    response_model=OutcomeOut,
    summary="A regulator's action: issue a notice, extend a deadline, suspend, reinstate, accept a risk, revoke",
)
def act(filing_id: Id, body: ActionIn, ctx: Ctx, p: Caller) -> OutcomeOut:
    out = _loop(ctx).act(
        p, filing_id, body.action, reason=body.reason, days=body.days, until=body.until, event_id=body.event_id
    )
    return OutcomeOut(**out.to_dict())


@router.post("/api/v1/loop/events", response_model=OutcomeOut, summary="An event from channel monitoring")
def post_event(body: EventIn, ctx: Ctx, p: Caller) -> OutcomeOut:
    p.require(Perm.AUTHCODE_MANAGE)
    with ctx.db.session() as db:
        get_visible(db, p, Filing, body.filing_id, "filing")
    data = body.model_dump(exclude={"kind", "event_id", "filing_id"}, exclude_none=True)
    if body.kind == "version_seen" and not body.version:
        raise Invalid("a version_seen event needs the version", field="version")
    out = _loop(ctx).emit(body.kind, body.filing_id, f"api:{body.event_id}", data, actor=p)
    return OutcomeOut(**out.to_dict())


# --- notifications --------------------------------------------------------------------------------


def _endpoint_admin(p: Principal) -> None:
    if not (p.can(Perm.CONFIG_WRITE) or p.can(Perm.USER_WRITE)):
        raise Forbidden(f"role {p.role.value} may not manage notification endpoints", code="forbidden")


@router.get("/api/v1/notify-endpoints", response_model=list[EndpointOut], summary="Notification endpoints")
def list_endpoints(ctx: Ctx, p: Caller) -> list[EndpointOut]:
    p.require(Perm.ORG_READ)
    with ctx.db.session() as db:
        rows = db.scalars(scoped(select(NotifyEndpoint).order_by(NotifyEndpoint.id), p, NotifyEndpoint)).all()
        return [EndpointOut.model_validate(r) for r in rows]


@router.post(
    "/api/v1/notify-endpoints", response_model=EndpointCreated, status_code=201, summary="Add an e-mail or webhook"
)
def add_endpoint(body: EndpointIn, ctx: Ctx, p: Caller) -> EndpointCreated:
    _endpoint_admin(p)
    import re

    if body.kind == "email" and not re.fullmatch(EMAIL, body.address):
        raise Invalid("not an e-mail address", field="address")
    if body.kind == "webhook" and not re.fullmatch(URL, body.address):
        raise Invalid("a webhook is an http(s) URL", field="address")
    org_id = body.org_id or p.org_id
    with ctx.db.session() as db:
        if not org_visible(db, p, org_id):
            raise NotFound(f"organisation {org_id} not found", field="org_id")
        ep = NotifyEndpoint(
            org_id=org_id,
            kind=body.kind,
            address=body.address,
            language=body.language,
            digest=body.digest if body.kind == "email" else "none",
            created_at=_loop(ctx).clock.now(),
        )
        db.add(ep)
        db.flush()
        secret = None
        if body.kind == "webhook":
            secret = secrets.token_urlsafe(32)
            ep.secret_enc = ctx.keys.encrypt(secret, f"notify_endpoints.secret:{ep.id}")
        from medrisk.platform import audit

        audit.record(
            ctx.keys,
            db,
            "notify.endpoint_added",
            actor=p,
            org_id=org_id,
            target=f"endpoint:{ep.id}",
            details={"kind": ep.kind},
        )
        db.flush()
        return EndpointCreated.model_validate({**EndpointOut.model_validate(ep).model_dump(), "secret": secret})


@router.post("/api/v1/notify-endpoints/{endpoint_id}/enable", response_model=EndpointOut, summary="Re-enable")
def enable_endpoint(endpoint_id: Id, ctx: Ctx, p: Caller) -> EndpointOut:
    _endpoint_admin(p)
    with ctx.db.session() as db:
        ep = get_visible(db, p, NotifyEndpoint, endpoint_id, "endpoint")
        ep.enabled, ep.disabled_at, ep.consecutive_failures = True, None, 0
        from medrisk.platform import audit

        audit.record(ctx.keys, db, "notify.endpoint_enabled", actor=p, org_id=ep.org_id, target=f"endpoint:{ep.id}")
        db.flush()
        out = EndpointOut.model_validate(ep)
    notify.deliver_due(_loop(ctx))  # what waited is delivered now (the failed ones keep their backoff)
    return out


@router.get("/api/v1/notifications", response_model=list[NotificationOut], summary="Notifications and attempts")
def list_notifications(
    ctx: Ctx,
    p: Caller,
    filing_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[str | None, Query(pattern=r"^(pending|digest|sent)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationOut]:
    p.require(Perm.FILING_READ)
    with ctx.db.session() as db:
        stmt = select(Notification).order_by(Notification.id.desc()).limit(limit)
        if filing_id is not None:
            stmt = stmt.where(Notification.filing_id == filing_id)
        if status:
            stmt = stmt.where(Notification.status == status)
        rows = db.scalars(scoped(stmt, p, Notification)).all()
        out = []
        for n in rows:
            attempts = db.scalars(
                select(DeliveryAttempt).where(DeliveryAttempt.notification_id == n.id).order_by(DeliveryAttempt.id)
            ).all()
            item = NotificationOut.model_validate(n)
            item.recipient = _mask(n.recipient, n.audience)
            item.delivery = [AttemptOut.model_validate(a) for a in attempts]
            out.append(item)
        return out


# --- the gate (public: hospital backends) ---------------------------------------------------------


async def _decide(request: Request, code: str, version: str | None) -> GateOut:
    """Served from memory on the event loop; a first sight (SM2 check, one query) goes to a thread."""
    gate = _loop(request.app.state.platform).gate
    d = gate.try_decide(code, version)
    if d is None:
        d = await run_in_threadpool(gate.decide, code, version)
    return GateOut(**d.to_dict())


@router.get("/api/v1/gate", response_model=GateOut, tags=["gate"], summary="May this app connect? (circuit breaker)")
async def gate_get(
    request: Request,
    code: Annotated[str, Query(min_length=1, max_length=8192)],
    version: Annotated[str | None, Query(max_length=64)] = None,
) -> GateOut:
    return await _decide(request, code, version)


@router.post("/api/v1/gate", response_model=GateOut, tags=["gate"], summary="May this app connect? (POST form)")
async def gate_post(body: GateIn, request: Request) -> GateOut:
    return await _decide(request, body.code, body.version)


@router.get(
    "/.well-known/medrisk/gate-status.json",
    response_model=StatusListOut,
    tags=["gate"],
    summary="SM2-signed status list of suspended/revoked apps and codes, for offline gates",
)
def gate_status_list(ctx: Ctx) -> StatusListOut:
    return StatusListOut(**_loop(ctx).gate.status_list())


class GateFastPath:
    """ASGI middleware: ``GET /api/v1/gate`` answered straight from the gate's memory, before routing.

    Anything it cannot answer from memory (first sight of a code, odd parameters) goes on to the
    documented FastAPI route above, which gives the same answer the slower way."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/api/v1/gate":
            body = self._answer(scope)
            if body is not None:
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _answer(scope: dict[str, Any]) -> bytes | None:
        import json
        from urllib.parse import parse_qsl

        try:
            pairs = parse_qsl(scope["query_string"].decode("ascii"), errors="strict")
        except (UnicodeDecodeError, ValueError):
            return None
        params: dict[str, str] = {}
        for k, v in pairs:
            if k in params:
                return None
            params[k] = v
        code, version = params.get("code"), params.get("version")
        if not code or len(code) > 8192 or (version is not None and len(version) > 64):
            return None
        ctx: Platform = scope["app"].state.platform
        d = ctx.loop.gate.try_decide(code, version) if ctx.loop is not None else None
        if d is None:
            return None
        return json.dumps(d.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()
