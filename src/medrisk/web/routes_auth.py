"""/api/v1/auth and /api/v1/tokens: login, logout, two-factor enrolment, password, sessions, API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response

from medrisk.platform import audit, auth, sessions
from medrisk.platform.errors import Forbidden
from medrisk.platform.roles import PERMISSIONS, Perm
from medrisk.platform.users import get_user, phone_of
from medrisk.store.models import Organisation
from medrisk.web.common import ERRORS
from medrisk.web.deps import Address, Caller, Ctx, Enrolling, Id
from medrisk.web.schemas import (
    LoginIn,
    LoginOut,
    MeOut,
    NewTokenOut,
    OrgOut,
    PasswordIn,
    SessionOut,
    TokenIn,
    TokenOut,
    TotpConfirmIn,
    TotpEnrolOut,
)

router = APIRouter(prefix="/api/v1", tags=["auth"], responses=ERRORS)


@router.post("/auth/login", response_model=LoginOut, summary="Log in (password, and TOTP code where enrolled)")
def login(body: LoginIn, ctx: Ctx, addr: Address) -> LoginOut:
    r = auth.login(ctx, body.username, body.password, body.totp_code, addr)
    return LoginOut(token=r.token, expires_at=r.expires_at, totp_enrolment_required=r.totp_enrolment_required)


@router.post("/auth/logout", status_code=204, response_class=Response, summary="Revoke the current session")
def logout(ctx: Ctx, p: Enrolling) -> Response:
    with ctx.db.session() as db:
        if p.session_id is not None:
            sessions.revoke_session(db, p.session_id)
            audit.record(ctx.keys, db, "logout", actor=p, target=f"user:{p.user_id}")
    return Response(status_code=204)


@router.get("/auth/me", response_model=MeOut, summary="The caller, its organisation and permissions")
def me(ctx: Ctx, p: Enrolling) -> MeOut:
    with ctx.db.session() as db:
        u = get_user(db, p, p.user_id)
        org = db.get(Organisation, u.org_id)
        perms = sorted(x.value for x in PERMISSIONS[p.role] if p.token_scopes is None or x.value in p.token_scopes)
        return MeOut.model_validate(
            {
                **{
                    k: getattr(u, k)
                    for k in (
                        "id",
                        "org_id",
                        "username",
                        "display_name",
                        "role",
                        "totp_enabled",
                        "disabled",
                        "created_at",
                    )
                },
                "phone": phone_of(ctx, u),
                "organisation": OrgOut.model_validate(org),
                "permissions": perms,
                "session_kind": p.extra.get("session_kind"),
            }
        )


@router.post("/auth/totp/enrol", response_model=TotpEnrolOut, summary="Start two-factor enrolment (secret shown once)")
def totp_enrol(ctx: Ctx, p: Enrolling) -> TotpEnrolOut:
    _user_only(p)
    with ctx.db.session() as db:
        secret, uri = auth.totp_begin(ctx, db, p)
    return TotpEnrolOut(secret=secret, otpauth_uri=uri)


@router.post("/auth/totp/confirm", status_code=204, response_class=Response, summary="Confirm enrolment with a code")
def totp_confirm(body: TotpConfirmIn, ctx: Ctx, p: Enrolling) -> Response:
    _user_only(p)
    with ctx.db.session() as db:
        auth.totp_confirm(ctx, db, p, body.code)
    return Response(status_code=204)


@router.post("/auth/password", status_code=204, response_class=Response, summary="Change the caller's password")
def change_password(body: PasswordIn, ctx: Ctx, p: Caller) -> Response:
    with ctx.db.session() as db:
        auth.change_password(ctx, db, p, body.old_password, body.new_password)
    return Response(status_code=204)


@router.get("/auth/sessions", response_model=list[SessionOut], summary="The caller's active sessions")
def list_sessions(ctx: Ctx, p: Caller) -> list[SessionOut]:
    with ctx.db.session() as db:
        return [
            SessionOut.model_validate(s).model_copy(update={"current": s.id == p.session_id})
            for s in sessions.list_sessions(db, p.user_id)
        ]


@router.delete(
    "/auth/sessions/{session_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke one of the caller's sessions",
)
def revoke_session(session_id: Id, ctx: Ctx, p: Caller) -> Response:
    with ctx.db.session() as db:
        s = sessions.own_session(db, p, session_id)
        sessions.revoke_session(db, s.id)
        audit.record(ctx.keys, db, "session.revoked", actor=p, target=f"session:{s.id}")
    return Response(status_code=204)


@router.post(
    "/tokens", status_code=201, response_model=NewTokenOut, tags=["tokens"], summary="Create a scoped API token"
)
def create_token(body: TokenIn, ctx: Ctx, p: Caller) -> NewTokenOut:
    _user_only(p)
    p.require(Perm.TOKEN_MANAGE)
    with ctx.db.session() as db:
        token, t = sessions.create_token(db, p, body.name, [s.value for s in body.scopes], body.expires_in_days)
        audit.record(
            ctx.keys, db, "token.created", actor=p, target=f"token:{t.id}", details={"scopes": t.scopes, "name": t.name}
        )
        return NewTokenOut.model_validate({**TokenOut.model_validate(t).model_dump(), "token": token})


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"], summary="The caller's API tokens")
def list_tokens(ctx: Ctx, p: Caller) -> list[TokenOut]:
    with ctx.db.session() as db:
        return [TokenOut.model_validate(t) for t in sessions.list_tokens(db, p)]


@router.delete(
    "/tokens/{token_id}", status_code=204, response_class=Response, tags=["tokens"], summary="Revoke an API token"
)
def revoke_token(token_id: Id, ctx: Ctx, p: Caller) -> Response:
    with ctx.db.session() as db:
        t = sessions.revoke_token(db, p, token_id)
        audit.record(ctx.keys, db, "token.revoked", actor=p, target=f"token:{t.id}")
    return Response(status_code=204)


def _user_only(p: object) -> None:
    if getattr(p, "token_scopes", None) is not None:
        raise Forbidden("only a logged-in user can do this, not an API token")
