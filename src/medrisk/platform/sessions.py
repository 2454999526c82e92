"""Bearer credentials: login sessions and scoped API tokens (only SM3 hashes are stored).

Session tokens start ``mrs_``, API tokens ``mrt_``: a leaked token is recognisable in
a secret scanner, and the prefix says which table to look in.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from medrisk.crypto import sm3_hex
from medrisk.platform import settings
from medrisk.platform.errors import Invalid, NotFound, Unauthenticated
from medrisk.platform.principal import Principal
from medrisk.platform.roles import PERMISSIONS, Perm, Role
from medrisk.store.models import ApiToken, AuthSession, Organisation, User, utcnow

SESSION_PREFIX = "mrs_"
TOKEN_PREFIX = "mrt_"  # noqa: S105 - a prefix, not a secret
_TOUCH_EVERY = timedelta(seconds=60)


def token_hash(token: str) -> str:
    return sm3_hex(token.encode("utf-8"))


def new_session(db: Session, user: User, address: str, kind: str = "full") -> tuple[str, AuthSession]:
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    ttl = settings.get(db, "session_ttl_minutes") if kind == "full" else 15
    s = AuthSession(
        user_id=user.id,
        token_hash=token_hash(token),
        kind=kind,
        address=address[:64],
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(minutes=ttl),
    )
    db.add(s)
    db.flush()
    return token, s


def _principal(db: Session, user: User, address: str, **kw: object) -> Principal:
    org = db.get(Organisation, user.org_id)
    assert org is not None
    return Principal(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        org_id=org.id,
        org_path=org.path,
        org_kind=org.kind,
        address=address,
        **kw,  # type: ignore[arg-type]
    )


def authenticate(db: Session, token: str, address: str) -> Principal:
    """The principal for a bearer token, or Unauthenticated; touches the session's idle timer."""
    now = utcnow()
    if token.startswith(SESSION_PREFIX):
        s = db.scalar(select(AuthSession).where(AuthSession.token_hash == token_hash(token)))
        if s is None or s.revoked_at is not None or s.expires_at <= now:
            raise Unauthenticated("session expired or revoked: log in again", code="session_expired")
        idle = timedelta(minutes=settings.get(db, "session_idle_minutes"))
        if s.last_seen_at + idle <= now:
            raise Unauthenticated("session expired after inactivity: log in again", code="session_expired")
        user = db.get(User, s.user_id)
        if user is None or user.disabled:
            raise Unauthenticated("account disabled", code="session_expired")
        if now - s.last_seen_at > _TOUCH_EVERY:
            s.last_seen_at = now
        return _principal(db, user, address, session_id=s.id, extra={"session_kind": s.kind})
    if token.startswith(TOKEN_PREFIX):
        t = db.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
        if t is None or t.revoked_at is not None or (t.expires_at is not None and t.expires_at <= now):
            raise Unauthenticated("API token expired or revoked", code="token_invalid")
        user = db.get(User, t.user_id)
        if user is None or user.disabled:
            raise Unauthenticated("API token's account disabled", code="token_invalid")
        if t.last_used_at is None or now - t.last_used_at > _TOUCH_EVERY:
            t.last_used_at = now
        return _principal(db, user, address, token_scopes=frozenset(t.scopes), token_id=t.id)
    raise Unauthenticated("not a MedRisk bearer token", code="token_invalid")


def revoke_session(db: Session, session_id: int) -> None:
    s = db.get(AuthSession, session_id)
    if s is not None and s.revoked_at is None:
        s.revoked_at = utcnow()
        db.flush()


def revoke_user_sessions(db: Session, user_id: int, *, except_id: int | None = None) -> int:
    stmt = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if except_id is not None:
        stmt = stmt.where(AuthSession.id != except_id)
    return db.execute(stmt.values(revoked_at=utcnow())).rowcount


def list_sessions(db: Session, user_id: int) -> list[AuthSession]:
    now = utcnow()
    idle_since = now - timedelta(minutes=settings.get(db, "session_idle_minutes"))
    return list(
        db.scalars(
            select(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)
            .where(AuthSession.last_seen_at > idle_since)
            .order_by(AuthSession.id)
        )
    )


def own_session(db: Session, p: Principal, session_id: int) -> AuthSession:
    s = db.get(AuthSession, session_id)
    if s is None or s.user_id != p.user_id:
        raise NotFound(f"session {session_id} not found")
    return s


# --- API tokens --------------------------------------------------------------------------------


def create_token(
    db: Session, p: Principal, name: str, scopes: list[str], expires_in_days: int | None
) -> tuple[str, ApiToken]:
    allowed = {perm.value for perm in PERMISSIONS[p.role]}
    if p.token_scopes is not None:
        allowed &= p.token_scopes
    bad = sorted(set(scopes) - allowed)
    if bad:
        raise Invalid(f"scopes not allowed for role {p.role.value}: {', '.join(bad)}", field="scopes")
    if not scopes:
        raise Invalid("at least one scope is required", field="scopes")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    t = ApiToken(
        user_id=p.user_id,
        org_id=p.org_id,
        name=name,
        prefix=token[:12],
        token_hash=token_hash(token),
        scopes=sorted(set(scopes)),
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    db.add(t)
    db.flush()
    return token, t


def list_tokens(db: Session, p: Principal) -> list[ApiToken]:
    return list(db.scalars(select(ApiToken).where(ApiToken.user_id == p.user_id).order_by(ApiToken.id)))


def revoke_token(db: Session, p: Principal, token_id: int) -> ApiToken:
    t = db.get(ApiToken, token_id)
    if t is None or t.user_id != p.user_id:
        raise NotFound(f"API token {token_id} not found")
    if t.revoked_at is None:
        t.revoked_at = utcnow()
        db.flush()
    return t


def all_scopes() -> list[str]:
    return [p.value for p in Perm]


def is_active(expires_at: datetime | None, revoked_at: datetime | None) -> bool:
    return revoked_at is None and (expires_at is None or expires_at > utcnow())
