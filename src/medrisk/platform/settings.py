"""Runtime settings stored in the database (changed through the API, every change audited).

Log retention refuses anything under 180 days (网络安全法 第21条: network logs kept for
no less than six months).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from medrisk.platform.errors import Invalid
from medrisk.store.models import Setting, utcnow

MIN_RETENTION_DAYS = 180


@dataclass(frozen=True)
class Spec:
    default: int
    minimum: int
    maximum: int
    help: str


SPECS: dict[str, Spec] = {
    "audit_retention_days": Spec(365, MIN_RETENTION_DAYS, 36500, "days audit entries are kept (at least 180)"),
    "audit_checkpoint_every": Spec(50, 1, 100_000, "sign a checkpoint after this many audit entries"),
    "session_ttl_minutes": Spec(480, 5, 7 * 24 * 60, "absolute lifetime of a login session"),
    "session_idle_minutes": Spec(30, 1, 24 * 60, "a session unused this long expires"),
    "lockout_threshold": Spec(5, 3, 100, "consecutive failed logins that lock an account"),
    "lockout_minutes": Spec(15, 1, 24 * 60, "how long a locked account stays locked"),
    "address_failures_per_window": Spec(20, 5, 10_000, "failed logins from one address per window before 429"),
    "rate_window_minutes": Spec(15, 1, 24 * 60, "window for per-address limits and login alerts"),
    "alert_bulk_accounts": Spec(5, 2, 1000, "distinct accounts tried from one address in a window that raise an alert"),
    "alert_account_failures": Spec(10, 3, 1000, "failures on one account in a window that raise an alert"),
    "max_upload_mb": Spec(300, 1, 4096, "largest package accepted for upload (MiB)"),
    "authcode_validity_days": Spec(365, 1, 3650, "validity of an authorisation code"),
}


def get_all(db: Session) -> dict[str, int]:
    values = {k: s.default for k, s in SPECS.items()}
    for row in db.query(Setting).all():
        if row.key in SPECS:
            values[row.key] = int(row.value)
    return values


def get(db: Session, key: str) -> int:
    row = db.get(Setting, key)
    return int(row.value) if row is not None else SPECS[key].default


def validate(changes: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in changes.items():
        spec = SPECS.get(key)
        if spec is None:
            raise Invalid(f"unknown setting {key!r}", field=key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"{key} must be an integer", field=key)
        if not spec.minimum <= value <= spec.maximum:
            raise Invalid(f"{key} must be between {spec.minimum} and {spec.maximum}", field=key)
        out[key] = value
    return out


def apply(db: Session, changes: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Store validated changes; returns {key: (old, new)} for the audit entry."""
    diff: dict[str, tuple[int, int]] = {}
    for key, value in changes.items():
        old = get(db, key)
        row = db.get(Setting, key)
        if row is None:
            db.add(Setting(key=key, value=value, updated_at=utcnow()))
        else:
            row.value = value
            row.updated_at = utcnow()
        if old != value:
            diff[key] = (old, value)
    db.flush()
    return diff
