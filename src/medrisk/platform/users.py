"""Users: creation, role changes (audited), disabling, password and two-factor resets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medrisk.platform import audit, passwords, sessions
from medrisk.platform.auth import enrol_totp_directly, phone_context, set_password
from medrisk.platform.context import Platform
from medrisk.platform.errors import Conflict, Forbidden, Invalid
from medrisk.platform.principal import Principal
from medrisk.platform.roles import ASSIGNABLE, ROLES_FOR_KIND, Perm, Role, kind_class
from medrisk.platform.scope import get_visible, scoped
from medrisk.store.models import Organisation, User, utcnow


def _check_role(p: Principal | None, role: Role, org: Organisation) -> None:
    if role not in ROLES_FOR_KIND[kind_class(org.kind)]:
        raise Invalid(f"role {role.value} does not exist in a {org.kind} organisation", field="role")
    if p is not None and role not in ASSIGNABLE.get(p.role, frozenset()):
        raise Forbidden(f"role {p.role.value} may not grant role {role.value}")


def create_user(
    ctx: Platform,
    db: Session,
    p: Principal | None,
    *,
    org_id: int,
    username: str,
    role: str,
    display_name: str = "",
    password: str | None = None,
    phone: str | None = None,
) -> tuple[User, str | None]:
    """Returns the user and, when no password was given, a generated one to hand over once.

    ``p`` None is the bootstrap path (CLI first admin, demo data).
    """
    if p is not None:
        p.require(Perm.USER_WRITE)
        org = get_visible(db, p, Organisation, org_id, "organisation")
    else:
        org = db.get(Organisation, org_id)
        if org is None:
            raise Invalid(f"organisation {org_id} not found", field="org_id")
    r = Role(role)
    _check_role(p, r, org)
    generated = None
    if password is None:
        password = generated = passwords.generate_password()
    user = User(org_id=org.id, username=username, role=r.value, display_name=display_name, password_hash="!")  # noqa: S106 - no login until set below
    try:
        with db.begin_nested():
            db.add(user)
            db.flush()
    except IntegrityError:
        raise Conflict(f"user name {username!r} is taken", field="username") from None
    set_password(db, user, password, field="password")
    if phone:
        user.phone_enc = ctx.keys.encrypt(phone, phone_context(user.id))
    audit.record(
        ctx.keys,
        db,
        "user.created",
        actor=p,
        actor_name=None if p else "system",
        org_id=org.id,
        target=f"user:{user.id}",
        details={"username": username, "role": r.value},
    )
    return user, generated


def list_users(db: Session, p: Principal, *, org_id: int | None = None, role: str | None = None) -> list[User]:
    p.require(Perm.USER_READ)
    stmt = select(User).order_by(User.id)
    if org_id is not None:
        stmt = stmt.where(User.org_id == org_id)
    if role:
        stmt = stmt.where(User.role == role)
    return list(db.scalars(scoped(stmt, p, User)))


def get_user(db: Session, p: Principal, user_id: int) -> User:
    if user_id == p.user_id:
        u = db.get(User, user_id)
        assert u is not None
        return u
    p.require(Perm.USER_READ)
    return get_visible(db, p, User, user_id, "user")


def _managed(db: Session, p: Principal, user_id: int) -> User:
    p.require(Perm.USER_WRITE)
    user = get_visible(db, p, User, user_id, "user")
    if user.id == p.user_id:
        raise Forbidden("you cannot change your own role or status; ask another administrator")
    if Role(user.role) not in ASSIGNABLE.get(p.role, frozenset()):
        raise Forbidden(f"role {p.role.value} may not manage a {user.role} account")
    return user


def update_user(ctx: Platform, db: Session, p: Principal, user_id: int, changes: dict[str, Any]) -> User:
    if set(changes) <= {"display_name", "phone"} and user_id == p.user_id:
        user = get_user(db, p, user_id)
    else:
        user = _managed(db, p, user_id)
    if "role" in changes and changes["role"] is not None and changes["role"] != user.role:
        new = Role(changes["role"])
        org = db.get(Organisation, user.org_id)
        assert org is not None
        _check_role(p, new, org)
        old = user.role
        user.role = new.value
        sessions.revoke_user_sessions(db, user.id)
        audit.record(
            ctx.keys,
            db,
            "user.role_changed",
            actor=p,
            org_id=user.org_id,
            target=f"user:{user.id}",
            details={"from": old, "to": new.value},
        )
    if "disabled" in changes and changes["disabled"] is not None and bool(changes["disabled"]) != user.disabled:
        user.disabled = bool(changes["disabled"])
        if user.disabled:
            sessions.revoke_user_sessions(db, user.id)
        action = "user.disabled" if user.disabled else "user.enabled"
        audit.record(ctx.keys, db, action, actor=p, org_id=user.org_id, target=f"user:{user.id}")
    if changes.get("display_name") is not None:
        user.display_name = changes["display_name"]
    if "phone" in changes:
        user.phone_enc = ctx.keys.encrypt(changes["phone"], phone_context(user.id)) if changes["phone"] else None
        audit.record(ctx.keys, db, "user.contact_changed", actor=p, org_id=user.org_id, target=f"user:{user.id}")
    db.flush()
    return user


def reset_password(ctx: Platform, db: Session, p: Principal, user_id: int) -> str:
    user = _managed(db, p, user_id)
    temp = passwords.generate_password()
    set_password(db, user, temp)
    user.locked_until = None
    user.failed_count = 0
    sessions.revoke_user_sessions(db, user.id)
    audit.record(ctx.keys, db, "user.password_reset", actor=p, org_id=user.org_id, target=f"user:{user.id}")
    return temp


def reset_totp(ctx: Platform, db: Session, p: Principal, user_id: int) -> None:
    user = _managed(db, p, user_id)
    user.totp_enabled = False
    user.totp_secret_enc = None
    sessions.revoke_user_sessions(db, user.id)
    audit.record(ctx.keys, db, "user.totp_reset", actor=p, org_id=user.org_id, target=f"user:{user.id}")


def unlock(ctx: Platform, db: Session, p: Principal, user_id: int) -> None:
    user = _managed(db, p, user_id)
    user.locked_until = None
    user.failed_count = 0
    audit.record(ctx.keys, db, "user.unlocked", actor=p, org_id=user.org_id, target=f"user:{user.id}")


def phone_of(ctx: Platform, user: User) -> str | None:
    return ctx.keys.decrypt(user.phone_enc, phone_context(user.id))


def is_locked(user: User) -> bool:
    return user.locked_until is not None and user.locked_until > utcnow()


__all__ = [
    "create_user",
    "enrol_totp_directly",
    "get_user",
    "list_users",
    "reset_password",
    "reset_totp",
    "update_user",
]
