"""Logging in: passwords, lockout, per-address rate limits, login alerts and TOTP.

Failed attempts are committed in their own transaction before the error is raised,
so an attacker's failures always count. Messages never say whether the user name or
the password was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medrisk.platform import audit, passwords, sessions, settings
from medrisk.platform.context import Platform
from medrisk.platform.errors import Conflict, Forbidden, Invalid, RateLimited, Unauthenticated
from medrisk.platform.principal import Principal
from medrisk.platform.roles import TOTP_REQUIRED, Role
from medrisk.store.models import Alert, AuthSession, LoginAttempt, PasswordHistory, User, utcnow

LOGIN_FAILED = "login failed: wrong user name, password or one-time code, or the account is locked"
ISSUER = "MedRisk"


@dataclass
class LoginResult:
    token: str
    expires_at: datetime
    totp_enrolment_required: bool
    user_id: int


def totp_context(user_id: int) -> str:
    return f"users.totp_secret:{user_id}"


def phone_context(user_id: int) -> str:
    return f"users.phone:{user_id}"


def login(ctx: Platform, username: str, password: str, totp_code: str | None, address: str) -> LoginResult:
    username = username.strip()
    failure: str | None = None
    with ctx.db.session() as db:
        window = timedelta(minutes=settings.get(db, "rate_window_minutes"))
        since = utcnow() - window
        failures_here = db.scalar(
            select(func.count()).where(
                LoginAttempt.address == address, LoginAttempt.success.is_(False), LoginAttempt.at >= since
            )
        )
        if failures_here >= settings.get(db, "address_failures_per_window"):
            audit.record(ctx.keys, db, "login.rate_limited", actor_name=username[:64], address=address, details={})
            failure = "rate"
        else:
            user = db.scalar(select(User).where(User.username == username))
            now = utcnow()
            ok = passwords.verify_password(user.password_hash if user else None, password)
            reason = ""
            if user is None or not ok:
                reason = "bad_credentials"
            elif user.disabled:
                reason = "disabled"
            elif user.locked_until is not None and user.locked_until > now:
                reason = "locked"
            elif user.totp_enabled and not _check_totp(ctx, user, totp_code):
                reason = "totp_required" if not totp_code else "bad_totp"
            if reason:
                _record_failure(ctx, db, user, username, address, reason)
                failure = reason
            else:
                assert user is not None
                user.failed_count = 0
                user.locked_until = None
                if passwords.needs_rehash(user.password_hash):
                    user.password_hash = passwords.hash_password(password)
                needs_enrol = Role(user.role) in TOTP_REQUIRED and not user.totp_enabled
                token, s = sessions.new_session(db, user, address, "totp_enrol" if needs_enrol else "full")
                db.add(LoginAttempt(username=username[:64], address=address[:64], success=True, at=now))
                audit.record(
                    ctx.keys,
                    db,
                    "login.success",
                    actor_name=user.username,
                    org_id=user.org_id,
                    address=address,
                    target=f"user:{user.id}",
                    details={"session": s.id, "totp_enrolment_required": needs_enrol},
                )
                return LoginResult(token, s.expires_at, needs_enrol, user.id)
    if failure == "rate":
        raise RateLimited(
            "too many failed logins from this address; try again later", retry_after=int(window.total_seconds())
        )
    if failure == "totp_required":
        raise Unauthenticated("a one-time code (TOTP) is required for this account", code="totp_required")
    raise Unauthenticated(LOGIN_FAILED, code="login_failed")


def _check_totp(ctx: Platform, user: User, code: str | None) -> bool:
    if not code or not user.totp_secret_enc:
        return False
    secret = ctx.keys.decrypt(user.totp_secret_enc, totp_context(user.id))
    if not secret:
        return False
    totp = pyotp.TOTP(secret)
    now = utcnow()
    for offset in (-1, 0, 1):  # one step of clock drift either way
        at = now + timedelta(seconds=30 * offset)
        step = int(at.timestamp()) // 30
        if step > user.totp_last_step and totp.verify(code.strip(), for_time=at, valid_window=0):
            user.totp_last_step = step  # a code is accepted once
            return True
    return False


def _record_failure(ctx: Platform, db: Session, user: User | None, username: str, address: str, reason: str) -> None:
    now = utcnow()
    db.add(LoginAttempt(username=username[:64], address=address[:64], success=False, at=now))
    details: dict[str, object] = {"reason": reason}
    if user is not None and reason in ("bad_credentials", "bad_totp"):
        user.failed_count += 1
        if user.failed_count >= settings.get(db, "lockout_threshold"):
            user.locked_until = now + timedelta(minutes=settings.get(db, "lockout_minutes"))
            user.failed_count = 0
            details["locked_until"] = user.locked_until.isoformat()
            audit.record(ctx.keys, db, "login.lockout", actor_name=username[:64], org_id=user.org_id, address=address)
    audit.record(
        ctx.keys,
        db,
        "login.failure",
        actor_name=username[:64],
        org_id=user.org_id if user else None,
        address=address,
        target=f"user:{user.id}" if user else "",
        details=details,
    )
    db.flush()
    _alerts(ctx, db, user, username[:64], address[:64])


def _alerts(ctx: Platform, db: Session, user: User | None, username: str, address: str) -> None:
    """High-frequency logins on one account and bulk logins (many accounts) from one address."""
    since = utcnow() - timedelta(minutes=settings.get(db, "rate_window_minutes"))
    account_failures = db.scalar(
        select(func.count()).where(
            LoginAttempt.username == username, LoginAttempt.success.is_(False), LoginAttempt.at >= since
        )
    )
    accounts = db.scalar(
        select(func.count(func.distinct(LoginAttempt.username))).where(
            LoginAttempt.address == address, LoginAttempt.at >= since
        )
    )
    checks = [
        ("high_frequency_login", f"user:{username}", account_failures >= settings.get(db, "alert_account_failures")),
        ("bulk_login", f"address:{address}", accounts >= settings.get(db, "alert_bulk_accounts")),
    ]
    for kind, subject, hit in checks:
        if not hit:
            continue
        recent = db.scalar(
            select(Alert.id).where(Alert.kind == kind, Alert.subject == subject, Alert.created_at >= since)
        )
        if recent is not None:
            continue
        org_id = user.org_id if user and kind == "high_frequency_login" else None
        details = {"failures": account_failures} if kind == "high_frequency_login" else {"accounts": accounts}
        db.add(Alert(kind=kind, subject=subject, org_id=org_id, details=details, created_at=utcnow()))
        audit.record(
            ctx.keys,
            db,
            f"alert.{kind}",
            actor_name="system",
            org_id=org_id,
            address=address,
            target=subject,
            details=details,
        )


# --- TOTP enrolment -------------------------------------------------------------------------------


def totp_begin(ctx: Platform, db: Session, p: Principal) -> tuple[str, str]:
    """A new secret (pending until confirmed); returns (secret, otpauth URI). Shown once."""
    user = db.get(User, p.user_id)
    assert user is not None
    if user.totp_enabled:
        raise Conflict("two-factor authentication is already enrolled; an administrator can reset it")
    secret = pyotp.random_base32()
    user.totp_secret_enc = ctx.keys.encrypt(secret, totp_context(user.id))
    user.totp_last_step = 0
    db.flush()
    return secret, pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def totp_confirm(ctx: Platform, db: Session, p: Principal, code: str) -> None:
    user = db.get(User, p.user_id)
    assert user is not None
    if user.totp_enabled:
        raise Conflict("two-factor authentication is already enrolled")
    if not user.totp_secret_enc:
        raise Conflict("start the enrolment first (POST /api/v1/auth/totp/enrol)")
    if not _check_totp(ctx, user, code):
        raise Invalid("the one-time code is not valid", field="code", code="bad_totp")
    user.totp_enabled = True
    if p.session_id is not None:
        s = db.get(AuthSession, p.session_id)
        if s is not None and s.kind == "totp_enrol":
            s.kind = "full"
            s.expires_at = utcnow() + timedelta(minutes=settings.get(db, "session_ttl_minutes"))
    audit.record(ctx.keys, db, "user.totp_enrolled", actor=p, target=f"user:{user.id}")


def enrol_totp_directly(ctx: Platform, db: Session, user: User) -> str:
    """Enable TOTP with a fresh secret (demo users, first admin); returns the secret to print once."""
    secret = pyotp.random_base32()
    user.totp_secret_enc = ctx.keys.encrypt(secret, totp_context(user.id))
    user.totp_enabled = True
    user.totp_last_step = 0
    db.flush()
    return secret


# --- passwords ------------------------------------------------------------------------------------


def set_password(db: Session, user: User, new_password: str, *, field: str = "new_password") -> None:
    passwords.check_policy(new_password, user.username, field=field)
    history = [
        h.password_hash
        for h in db.scalars(
            select(PasswordHistory)
            .where(PasswordHistory.user_id == user.id)
            .order_by(PasswordHistory.id.desc())
            .limit(passwords.HISTORY)
        )
    ]
    passwords.check_not_reused(new_password, history, field=field)
    user.password_hash = passwords.hash_password(new_password)
    user.password_changed_at = utcnow()
    db.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash, created_at=utcnow()))
    db.flush()


def change_password(ctx: Platform, db: Session, p: Principal, old_password: str, new_password: str) -> None:
    if p.token_scopes is not None:
        raise Forbidden("API tokens cannot change passwords")
    user = db.get(User, p.user_id)
    assert user is not None
    if not passwords.verify_password(user.password_hash, old_password):
        raise Invalid("the current password is wrong", field="old_password", code="bad_password")
    set_password(db, user, new_password)
    sessions.revoke_user_sessions(db, user.id, except_id=p.session_id)
    audit.record(ctx.keys, db, "user.password_changed", actor=p, target=f"user:{user.id}")
