"""Business trails (docs/trails.md): senders and ingestion tokens, signed single and batch ingestion,
receipts, violations with their evidence, indicators, the rule set and ledger verification."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from medrisk.platform.errors import Forbidden
from medrisk.platform.principal import Principal
from medrisk.platform.roles import Perm
from medrisk.store.models import utcnow
from medrisk.trails.service import TrailService, service_for
from medrisk.trails.views import event_dict, violation_dict
from medrisk.web.common import ERRORS
from medrisk.web.deps import Caller, Ctx, Id
from medrisk.web.schemas import MAX_ID, In, Out

router = APIRouter(prefix="/api/v1/trails", tags=["trails"], responses=ERRORS)
KID = r"^[0-9a-f]{64}$"
B64 = r"^[A-Za-z0-9+/]{20,200}={0,2}$"


class SourceIn(In):
    name: str = Field(min_length=1, max_length=200)
    public_key_pem: str = Field(min_length=50, max_length=4000, description="SM2 public key, PEM SubjectPublicKeyInfo")
    filing_id: int | None = Field(None, ge=1, le=MAX_ID, description="the filed app the trails come from")


class SourceOut(Out):
    id: int
    org_id: int
    filing_id: int | None
    name: str
    key_id: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class TrailTokenIn(In):
    name: str = Field(min_length=1, max_length=100)
    read: bool = Field(False, description="also trails:read (receipts, violations, indicators)")
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TrailTokenOut(BaseModel):
    id: int
    token: str = Field(description="shown once")
    scopes: list[str]
    expires_at: datetime | None


class BatchIn(In):
    key_id: str = Field(pattern=KID, description="the sender key's id (SM3 of its SubjectPublicKeyInfo, hex)")
    signature: str = Field(pattern=B64, description="base64 DER SM2 signature over the batch statement")
    events: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


class EventIn(In):
    key_id: str = Field(pattern=KID)
    signature: str = Field(pattern=B64, description="base64 DER SM2 signature over the statement of [event]")
    event: dict[str, Any]


class ItemOut(BaseModel):
    index: int
    event_id: str
    status: str
    seq: int | None


class BatchOut(BaseModel):
    batch_id: int
    accepted: int
    duplicates: int
    conflicts: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str
    violations: int
    loop_event_id: str | None
    items: list[ItemOut]
    receipt: dict[str, Any]


class ViolationOut(BaseModel):
    id: int
    org_id: int
    rule_id: str
    severity: str
    case_kind: str
    case_key: str
    trigger: str
    event_seq: int | None
    at: datetime
    detected_at: datetime
    filing_id: int | None
    loop_event_id: str | None


class ViolationPage(BaseModel):
    total: int
    items: list[ViolationOut]


class TrailEventOut(BaseModel):
    seq: int
    event_id: str
    type: str
    at: datetime
    received_at: datetime
    payload: dict[str, Any]
    digest: str
    batch_id: int
    prev_hash: str
    hash: str


class ViolationDetail(BaseModel):
    violation: ViolationOut
    rule: dict[str, Any] | None
    evidence: list[TrailEventOut]
    receipts: list[dict[str, Any]]


class IndicatorOut(BaseModel):
    org_id: int
    name: str
    since: datetime
    until: datetime
    events: int
    prescriptions: int
    reviewed: int
    review_rate: float | None
    approval_rate: float | None
    median_review_minutes: float | None
    dispensed: int
    consultations: int
    records_completeness: float | None
    violations: int
    violations_by_rule: dict[str, int]


class VerifyOut(BaseModel):
    ok: bool
    orgs: int
    events: int
    batches: int
    first_problem: dict[str, Any] | None
    problems: list[dict[str, Any]]


class SweepOut(BaseModel):
    violations: int


def _svc(ctx: Any) -> TrailService:
    return service_for(ctx)


@router.post("/sources", response_model=SourceOut, status_code=201, summary="Register a sender and its SM2 key")
def add_source(body: SourceIn, ctx: Ctx, p: Caller) -> SourceOut:
    with ctx.db.session() as db:
        s = _svc(ctx).register_source(
            db, p, name=body.name, public_key_pem=body.public_key_pem, filing_id=body.filing_id
        )
        return SourceOut.model_validate(s)


@router.get("/sources", response_model=list[SourceOut], summary="Senders the caller can see")
def list_sources(ctx: Ctx, p: Caller) -> list[SourceOut]:
    with ctx.db.session() as db:
        return [SourceOut.model_validate(s) for s in _svc(ctx).list_sources(db, p)]


@router.post("/sources/{source_id}/revoke", response_model=SourceOut, summary="Revoke a sender key")
def revoke_source(source_id: Id, ctx: Ctx, p: Caller) -> SourceOut:
    with ctx.db.session() as db:
        return SourceOut.model_validate(_svc(ctx).revoke_source(db, p, source_id))


@router.post("/tokens", response_model=TrailTokenOut, status_code=201, summary="An ingestion token (trails:write)")
def add_token(body: TrailTokenIn, ctx: Ctx, p: Caller) -> TrailTokenOut:
    with ctx.db.session() as db:
        token, t = _svc(ctx).create_token(db, p, name=body.name, read=body.read, expires_in_days=body.expires_in_days)
        return TrailTokenOut(id=t.id, token=token, scopes=t.scopes, expires_at=t.expires_at)


@router.post("/batches", response_model=BatchOut, summary="Send a signed batch of trail events (≤ 1000)")
def post_batch(body: BatchIn, ctx: Ctx, p: Caller) -> BatchOut:
    r = _svc(ctx).ingest(p, body.key_id, body.signature, body.events)
    return BatchOut.model_validate(r.to_dict())


@router.post("/events", response_model=BatchOut, summary="Send one signed trail event")
def post_event(body: EventIn, ctx: Ctx, p: Caller) -> BatchOut:
    r = _svc(ctx).ingest(p, body.key_id, body.signature, [body.event], field_prefix="event")
    return BatchOut.model_validate(r.to_dict())


@router.get("/batches/{batch_id}/receipt", summary="The SM2-signed receipt of a batch")
def get_receipt(batch_id: Id, ctx: Ctx, p: Caller) -> dict[str, Any]:
    with ctx.db.session() as db:
        return _svc(ctx).receipt(db, p, batch_id)


@router.get("/receipts/latest", summary="The latest receipt (signed checkpoint) of an institution's ledger")
def latest_receipt(ctx: Ctx, p: Caller, org_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> dict[str, Any]:
    with ctx.db.session() as db:
        return _svc(ctx).latest_receipt(db, p, org_id)


@router.get("/violations", response_model=ViolationPage, summary="Violations (institution: its own; regulator: region)")
def list_violations(
    ctx: Ctx,
    p: Caller,
    org_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    rule: Annotated[str | None, Query(pattern=r"^[A-Z]{2,4}-\d{2}$")] = None,
    severity: Annotated[str | None, Query(pattern=r"^(critical|high|medium|low)$")] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> ViolationPage:
    with ctx.db.session() as db:
        total, rows = _svc(ctx).list_violations(
            db, p, org_id=org_id, rule=rule, severity=severity, since=since, until=until, limit=limit, offset=offset
        )
        return ViolationPage(total=total, items=[ViolationOut.model_validate(violation_dict(v)) for v in rows])


@router.get("/violations/{violation_id}", response_model=ViolationDetail, summary="A violation with its full trail")
def get_violation(violation_id: Id, ctx: Ctx, p: Caller) -> ViolationDetail:
    with ctx.db.session() as db:
        return ViolationDetail.model_validate(_svc(ctx).violation(db, p, violation_id))


@router.get("/cases/{kind}/{key}", response_model=list[TrailEventOut], summary="The trail of one prescription or visit")
def get_case(
    kind: str,
    key: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")],
    ctx: Ctx,
    p: Caller,
    org_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[TrailEventOut]:
    from medrisk.platform.errors import Invalid, NotFound
    from medrisk.platform.scope import org_visible
    from medrisk.trails.access import require_reader

    if kind not in ("prescription", "consultation"):
        raise Invalid("kind must be prescription or consultation", field="kind")
    require_reader(p)
    org = org_id or p.org_id
    with ctx.db.session() as db:
        if not org_visible(db, p, org):
            raise NotFound(f"organisation {org} not found")
        events = _svc(ctx).case_trail(db, org, kind, key)
        return [TrailEventOut.model_validate(event_dict(e)) for e in events]


@router.get("/indicators", response_model=list[IndicatorOut], summary="Indicators per institution and period")
def indicators(
    ctx: Ctx,
    p: Caller,
    org_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> list[IndicatorOut]:
    until = until or utcnow()
    since = since or until - timedelta(days=30)
    with ctx.db.session() as db:
        return [IndicatorOut.model_validate(x) for x in _svc(ctx).indicators(db, p, org_id, since, until)]


@router.get("/rules", summary="The trail rule set")
def rules(ctx: Ctx, p: Caller) -> list[dict[str, Any]]:
    from medrisk.trails.access import require_reader

    require_reader(p)
    return [r.to_dict() for r in _svc(ctx).rules.rules]


@router.get("/verify", response_model=VerifyOut, summary="Verify the ledger: chain, receipts, sender signatures")
def verify(ctx: Ctx, p: Caller, org_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> VerifyOut:
    with ctx.db.session() as db:
        return VerifyOut.model_validate(_svc(ctx).verify(db, p, org_id).to_dict())


@router.post("/sweep", response_model=SweepOut, summary="Run the windowed checks now (platform administrators)")
def sweep(ctx: Ctx, p: Caller) -> SweepOut:
    _admin(p)
    return SweepOut(violations=_svc(ctx).sweep())


def _admin(p: Principal) -> None:
    if not p.is_admin or not p.can(Perm.CONFIG_WRITE):
        raise Forbidden("only platform administrators run the sweep by hand")
