"""Password hashing (Argon2id) and the password policy.

Policy: at least 12 characters, at least three of four classes (lower case, upper
case, digits, other), not containing the user name, and none of the last five passwords.
"""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from medrisk.platform.errors import Invalid

MIN_LENGTH = 12
MAX_LENGTH = 256
HISTORY = 5

_hasher = PasswordHasher()  # Argon2id, RFC 9106 low-memory profile defaults
# verified against when the user does not exist, so a login takes as long either way
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_policy(password: str, username: str = "", *, field: str = "password") -> None:
    if len(password) < MIN_LENGTH:
        raise Invalid(f"password must be at least {MIN_LENGTH} characters", field=field, code="weak_password")
    if len(password) > MAX_LENGTH:
        raise Invalid(f"password must be at most {MAX_LENGTH} characters", field=field, code="weak_password")
    classes = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    if sum(classes) < 3:
        raise Invalid(
            "password must mix at least three of: lower case, upper case, digits, other characters",
            field=field,
            code="weak_password",
        )
    if username and username.lower() in password.lower():
        raise Invalid("password must not contain the user name", field=field, code="weak_password")


def check_not_reused(password: str, recent_hashes: list[str], *, field: str = "password") -> None:
    for h in recent_hashes[:HISTORY]:
        if verify_password(h, password):
            raise Invalid(
                f"password was used recently (last {HISTORY} are refused)", field=field, code="reused_password"
            )


def generate_password(length: int = 20) -> str:
    """A random password that satisfies the policy (demo users, first admin)."""
    alphabet = string.ascii_letters + string.digits + "-_.!@#%"
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        try:
            check_policy(pw)
            return pw
        except Invalid:
            continue
