"""Authorisation codes (授权码): compact tokens signed with the platform's SM2 key.

Format (like a JWS compact serialisation, three base64url parts without padding)::

    base64url(header) "." base64url(payload) "." base64url(DER SM2 signature)

The signature is SM2 with SM3 and the default user id ``1234567812345678`` over the
ASCII bytes ``header "." payload``, so anyone holding the published public key can
check a code offline, with this module or with ``openssl dgst -sm3 -verify``
(docs/platform.md). The header is ``{"alg": "SM2-SM3", "typ": "MRAC", "kid": <SM3
fingerprint of the public key>}``; the payload binds the filing, institution, package,
signing-certificate SHA-256 fingerprints, approved version range and validity.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medrisk.crypto import SM2PublicKey
from medrisk.platform import audit, settings
from medrisk.platform.context import Platform
from medrisk.platform.errors import Conflict, NotFound
from medrisk.platform.principal import Principal
from medrisk.platform.roles import Perm
from medrisk.platform.scope import get_visible
from medrisk.store.models import AuthCode, Filing, Organisation, utcnow

TYP = "MRAC"
ALG = "SM2-SM3"
MAX_CODE_LENGTH = 8192


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def issue(ctx: Platform, db: Session, filing: Filing, p: Principal | None, valid_days: int | None = None) -> AuthCode:
    """Revoke the filing's current codes and issue a new one for its approved revision."""
    if filing.approved_revision is None or not filing.approved_version_range:
        raise Conflict("the filing has no approved revision")
    for old in active_codes(db, filing.id):
        old.revoked_at = utcnow()
        old.revoke_reason = "superseded"
    org = db.get(Organisation, filing.org_id)
    assert org is not None
    now = utcnow().replace(microsecond=0)
    days = valid_days or settings.get(db, "authcode_validity_days")
    expires = now + timedelta(days=days)
    jti = str(uuid.uuid4())
    payload = {
        "v": 1,
        "jti": jti,
        "iss": "medrisk",
        "fid": filing.id,
        "rev": filing.approved_revision,
        "ins": {"id": org.id, "name": org.name},
        "pkg": filing.package,
        "plt": filing.platform,
        "crt": sorted(filing.signing_certificates),
        "ver": filing.approved_version_range,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    header = {"alg": ALG, "typ": TYP, "kid": ctx.keys.kid}
    signing_input = f"{b64url(_json(header))}.{b64url(_json(payload))}"
    code = f"{signing_input}.{b64url(ctx.keys.sign(signing_input.encode('ascii')))}"
    row = AuthCode(
        id=jti,
        filing_id=filing.id,
        org_id=filing.org_id,
        revision=filing.approved_revision,
        code=code,
        payload=payload,
        issued_by=p.user_id if p else None,
        issued_at=now,
        expires_at=expires,
    )
    db.add(row)
    db.flush()
    audit.record(
        ctx.keys,
        db,
        "authcode.issued",
        actor=p,
        org_id=filing.org_id,
        target=f"filing:{filing.id}",
        details={"jti": jti, "exp": payload["exp"]},
    )
    return row


def active_codes(db: Session, filing_id: int) -> list[AuthCode]:
    return list(db.scalars(select(AuthCode).where(AuthCode.filing_id == filing_id, AuthCode.revoked_at.is_(None))))


def current(db: Session, p: Principal, filing_id: int) -> AuthCode:
    p.require(Perm.FILING_READ)
    filing = get_visible(db, p, Filing, filing_id, "filing")
    codes = [c for c in active_codes(db, filing.id) if c.expires_at > utcnow()]
    if not codes:
        raise NotFound(f"filing {filing_id} has no valid authorisation code")
    return max(codes, key=lambda c: c.issued_at)


def revoke(ctx: Platform, db: Session, p: Principal, code_id: str, reason: str) -> AuthCode:
    p.require(Perm.AUTHCODE_MANAGE)
    row = get_visible(db, p, AuthCode, code_id, "authorisation code")
    if row.revoked_at is not None:
        raise Conflict("the authorisation code is already revoked")
    row.revoked_at = utcnow()
    row.revoke_reason = reason
    audit.record(
        ctx.keys,
        db,
        "authcode.revoked",
        actor=p,
        org_id=row.org_id,
        target=f"filing:{row.filing_id}",
        details={"jti": row.id, "reason": reason},
    )
    return row


def reissue(ctx: Platform, db: Session, p: Principal, filing_id: int, valid_days: int | None = None) -> AuthCode:
    p.require(Perm.AUTHCODE_MANAGE)
    filing = get_visible(db, p, Filing, filing_id, "filing")
    return issue(ctx, db, filing, p, valid_days)


@dataclass
class Verification:
    valid: bool
    reason: str
    payload: dict[str, Any] | None = None
    header: dict[str, Any] | None = None
    checks: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reason": self.reason,
            "payload": self.payload,
            "header": self.header,
            "checks": self.checks,
        }


def verify_offline(code: str, public_key: SM2PublicKey, now: datetime | None = None) -> Verification:
    """Signature and validity period only: what any holder of the public key can check."""
    code = code.strip()
    parts = code.split(".")
    if len(code) > MAX_CODE_LENGTH or len(parts) != 3:
        return Verification(False, "not an authorisation code (expected three base64url parts)")
    try:
        header = json.loads(unb64url(parts[0]))
        payload = json.loads(unb64url(parts[1]))
        signature = unb64url(parts[2])
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return Verification(False, "not an authorisation code (bad base64url or JSON)")
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return Verification(False, "not an authorisation code (header or payload is not an object)")
    checks: dict[str, bool] = {}
    checks["algorithm"] = header.get("alg") == ALG and header.get("typ") == TYP
    checks["key"] = header.get("kid") == public_key.fingerprint()
    checks["signature"] = public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    t = int((now or datetime.now(UTC)).timestamp())
    exp, nbf = payload.get("exp"), payload.get("nbf")
    checks["not_expired"] = isinstance(exp, int) and t < exp
    checks["not_before"] = isinstance(nbf, int) and t >= nbf
    if not checks["signature"]:
        return Verification(False, "signature does not verify with the platform key", None, header, checks)
    if not checks["algorithm"] or not checks["key"]:
        return Verification(False, "unexpected algorithm or signing key", payload, header, checks)
    if not checks["not_expired"] or not checks["not_before"]:
        return Verification(False, "outside its validity period", payload, header, checks)
    return Verification(True, "valid", payload, header, checks)


def verify(ctx: Platform, db: Session, code: str) -> Verification:
    """Offline checks plus the platform's revocation list."""
    res = verify_offline(code, ctx.keys.public_key)
    if res.payload is None or not res.checks.get("signature"):
        return res
    row = db.get(AuthCode, str(res.payload.get("jti", "")))
    res.checks["not_revoked"] = row is not None and row.revoked_at is None
    if res.valid and not res.checks["not_revoked"]:
        res.valid = False
        res.reason = "revoked" + (f": {row.revoke_reason}" if row is not None and row.revoke_reason else "")
    return res
