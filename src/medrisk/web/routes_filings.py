"""/api/v1/filings: filing (备案), review and authorisation codes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from medrisk.platform import authcode, filings
from medrisk.platform.context import Platform
from medrisk.platform.errors import TooLarge
from medrisk.store.blobs import BlobTooLarge
from medrisk.store.models import AuthCode, Filing, FilingRevision
from medrisk.web.common import ERRORS
from medrisk.web.deps import Caller, Ctx, Id
from medrisk.web.schemas import (
    MAX_ID,
    PACKAGE,
    AuthCodeOut,
    FilingIn,
    FilingOut,
    FilingPatch,
    PrivacyPolicyFileOut,
    ReissueIn,
    ReviewIn,
    RevisionOut,
    RevokeIn,
)

router = APIRouter(prefix="/api/v1", tags=["filings"], responses=ERRORS)

CodeId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]


def filing_out(ctx: Platform, f: Filing) -> FilingOut:
    data = {k: getattr(f, k) for k in FilingOut.model_fields if k not in ("contacts", "privacy_policy_file")}
    policy = None
    if f.privacy_policy_sha256:
        policy = PrivacyPolicyFileOut(
            sha256=f.privacy_policy_sha256,
            size=f.privacy_policy_size or 0,
            media_type=f.privacy_policy_media_type or "text/plain",
            uploaded_at=f.privacy_policy_uploaded_at or f.updated_at,
        )
    return FilingOut.model_validate(
        {**data, "privacy_policy_file": policy, "contacts": filings.decrypt_contacts(ctx, f.id, f.contacts_enc)}
    )


def revision_out(r: FilingRevision) -> RevisionOut:
    data = {k: getattr(r, k) for k in RevisionOut.model_fields if k != "fields"}
    return RevisionOut.model_validate({**data, "fields": sorted(r.data)})


def code_out(c: AuthCode) -> AuthCodeOut:
    return AuthCodeOut.model_validate(c)


def _dump(body: FilingIn | FilingPatch) -> dict:
    data = body.model_dump(exclude_unset=isinstance(body, FilingPatch), mode="json")
    return {k: v for k, v in data.items() if v is not None or k == "org_id"}


@router.get("/filings", response_model=list[FilingOut], summary="Filings the caller can see")
def list_filings(
    ctx: Ctx,
    p: Caller,
    status: Annotated[str | None, Query(pattern=r"^(pending|approved|rejected)$")] = None,
    org_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    package: Annotated[str | None, Query(max_length=255, pattern=PACKAGE)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[FilingOut]:
    with ctx.db.session() as db:
        rows = filings.list_filings(db, p, status=status, org_id=org_id, package=package, limit=limit, offset=offset)
        return [filing_out(ctx, f) for f in rows]


@router.post("/filings", status_code=201, response_model=FilingOut, summary="File an app (institution)")
def create_filing(body: FilingIn, ctx: Ctx, p: Caller) -> FilingOut:
    with ctx.db.session() as db:
        return filing_out(ctx, filings.create_filing(ctx, db, p, _dump(body)))


@router.get("/filings/{filing_id}", response_model=FilingOut)
def get_filing(filing_id: Id, ctx: Ctx, p: Caller) -> FilingOut:
    with ctx.db.session() as db:
        return filing_out(ctx, filings.get_filing(db, p, filing_id))


@router.patch("/filings/{filing_id}", response_model=FilingOut, summary="Change a filing (goes back to review)")
def update_filing(filing_id: Id, body: FilingPatch, ctx: Ctx, p: Caller) -> FilingOut:
    with ctx.db.session() as db:
        data = _dump(body)
        data.pop("org_id", None)
        return filing_out(ctx, filings.update_filing(ctx, db, p, filing_id, data))


_TEXT = {"schema": {"type": "string"}}
POLICY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the privacy-policy file itself (HTML or plain text, UTF-8 or GB18030, at most 2 MB)",
        "content": {"text/html": _TEXT, "text/plain": _TEXT},
    }
}


@router.put(
    "/filings/{filing_id}/privacy-policy",
    response_model=FilingOut,
    openapi_extra=POLICY_BODY,
    summary="Attach or replace the privacy-policy file (scans of the filing's releases check it)",
)
async def put_privacy_policy(filing_id: Id, request: Request, ctx: Ctx, p: Caller) -> FilingOut:
    content_type = request.headers.get("content-type")
    length = request.headers.get("content-length")
    declared = int(length) if length and length.isdigit() else None
    limit = await run_in_threadpool(filings.prepare_policy_upload, ctx, p, filing_id, content_type, declared)
    try:
        blob = await ctx.blobs.put_stream(request.stream(), limit)
    except BlobTooLarge:
        raise TooLarge(f"the privacy policy is larger than the limit of {limit} bytes (2 MB)", field="file") from None
    f = await run_in_threadpool(filings.attach_privacy_policy, ctx, p, filing_id, blob, content_type)
    return filing_out(ctx, f)


@router.get(
    "/filings/{filing_id}/privacy-policy",
    response_class=Response,
    responses={
        200: {
            "description": "the privacy-policy file as uploaded",
            "content": {"text/html": _TEXT, "text/plain": _TEXT},
        }
    },
    summary="The filing's privacy-policy file",
)
def get_privacy_policy(filing_id: Id, ctx: Ctx, p: Caller) -> Response:
    with ctx.db.session() as db:
        data, media_type = filings.privacy_policy(ctx, db, p, filing_id)
    # served as a download, never rendered in the platform's origin
    headers = {"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"}
    return Response(content=data, media_type=media_type, headers=headers)


@router.get(
    "/filings/{filing_id}/revisions", response_model=list[RevisionOut], summary="Every submission and its decision"
)
def list_revisions(filing_id: Id, ctx: Ctx, p: Caller) -> list[RevisionOut]:
    with ctx.db.session() as db:
        return [revision_out(r) for r in filings.revisions(db, p, filing_id)]


@router.post(
    "/filings/{filing_id}/review", response_model=FilingOut, summary="Approve or reject (regulator of the region)"
)
def review(filing_id: Id, body: ReviewIn, ctx: Ctx, p: Caller) -> FilingOut:
    with ctx.db.session() as db:
        f = filings.review(
            ctx,
            db,
            p,
            filing_id,
            decision=body.decision.value,
            reason=body.reason,
            version_range=body.version_range,
            valid_days=body.valid_days,
        )
        return filing_out(ctx, f)


@router.get(
    "/filings/{filing_id}/authcode", response_model=AuthCodeOut, summary="The filing's valid authorisation code"
)
def get_authcode(filing_id: Id, ctx: Ctx, p: Caller) -> AuthCodeOut:
    with ctx.db.session() as db:
        return code_out(authcode.current(db, p, filing_id))


@router.post(
    "/filings/{filing_id}/authcode",
    response_model=AuthCodeOut,
    status_code=201,
    summary="Reissue the authorisation code",
)
def reissue_authcode(filing_id: Id, body: ReissueIn, ctx: Ctx, p: Caller) -> AuthCodeOut:
    with ctx.db.session() as db:
        return code_out(authcode.reissue(ctx, db, p, filing_id, body.valid_days))


@router.post("/authcodes/{code_id}/revoke", response_model=AuthCodeOut, summary="Revoke an authorisation code")
def revoke_authcode(code_id: CodeId, body: RevokeIn, ctx: Ctx, p: Caller) -> AuthCodeOut:
    with ctx.db.session() as db:
        return code_out(authcode.revoke(ctx, db, p, code_id, body.reason))
