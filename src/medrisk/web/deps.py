"""Request dependencies: the platform, the caller's address and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from medrisk.platform import sessions
from medrisk.platform.context import Platform
from medrisk.platform.errors import Forbidden, Unauthenticated
from medrisk.platform.principal import Principal
from medrisk.web.schemas import MAX_ID

bearer = HTTPBearer(
    auto_error=False, description="a session token (mrs_…) from /api/v1/auth/login or an API token (mrt_…)"
)

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def platform(request: Request) -> Platform:
    return request.app.state.platform


def address(request: Request) -> str:
    ctx: Platform = request.app.state.platform
    if ctx.forwarded_header:
        fwd = request.headers.get(ctx.forwarded_header)
        if fwd:
            return fwd.split(",")[0].strip()[:64]
    return (request.client.host if request.client else "unknown")[:64]


def _authenticate(request: Request, creds: HTTPAuthorizationCredentials | None) -> Principal:
    if creds is None or not creds.credentials:
        raise Unauthenticated("log in first: send 'Authorization: Bearer <token>'", code="unauthenticated")
    ctx = platform(request)
    with ctx.db.session() as db:
        return sessions.authenticate(db, creds.credentials[:512], address(request))


def any_session(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """Also a session that still has to enrol two-factor authentication."""
    return _authenticate(request, creds)


def principal(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    p = _authenticate(request, creds)
    if p.extra.get("session_kind") == "totp_enrol":
        raise Forbidden(
            "enrol two-factor authentication first (POST /api/v1/auth/totp/enrol)", code="totp_enrolment_required"
        )
    return p


Ctx = Annotated[Platform, Depends(platform)]
Caller = Annotated[Principal, Depends(principal)]
Enrolling = Annotated[Principal, Depends(any_session)]
Address = Annotated[str, Depends(address)]
