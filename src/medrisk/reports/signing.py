"""Signed reports (white paper §4.1(4)): every report file gets a detached SM2-with-SM3 signature.

The signature is DER over the file's bytes with the default uid ``1234567812345678``, so it
verifies with ``medrisk verify REPORT`` and with the OpenSSL command line:

    openssl dgst -sm3 -verify platform-key.pem -sigopt distid:1234567812345678 \\
        -signature report.pdf.sig report.pdf

The SM3 digest of the file is printed by both and shown in the console; the report itself
carries the SM3 of what it describes (the scan result) and its report number. A rendered
report is stored once (blob + row), so every download is the same bytes and signature.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medrisk.crypto import DEFAULT_UID, SM2PublicKey, sm3_hex
from medrisk.platform import audit
from medrisk.platform.context import Platform
from medrisk.platform.principal import Principal
from medrisk.store.models import Report, utcnow

MAX_REPORT_BYTES = 200 * 1024 * 1024
OPENSSL_VERIFY = "openssl dgst -sm3 -verify platform-key.pem -sigopt distid:{uid} -signature {name}.sig {name}"


def openssl_command(name: str) -> str:
    return OPENSSL_VERIFY.format(uid=DEFAULT_UID.decode(), name=name)


def find(db: Session, kind: str, subject: str, lang: str, fmt: str) -> Report | None:
    return db.scalars(
        select(Report)
        .where(Report.kind == kind, Report.subject == subject, Report.lang == lang, Report.fmt == fmt)
        .order_by(Report.id.desc())
        .limit(1)
    ).first()


def store(
    ctx: Platform,
    db: Session,
    *,
    kind: str,
    subject: str,
    org_id: int,
    lang: str,
    fmt: str,
    data: bytes,
    meta: dict[str, Any],
    actor: Principal | None,
    period: tuple[datetime, datetime] | None = None,
) -> Report:
    """Sign ``data``, keep it in the blob store and record it (audited: ``report.generated``)."""
    signature = ctx.keys.sign(data)
    blob = ctx.blobs.put_chunks([data], MAX_REPORT_BYTES)
    r = Report(
        kind=kind,
        subject=subject,
        org_id=org_id,
        lang=lang,
        fmt=fmt,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
        blob_sha256=blob.sha256,
        size=len(data),
        sm3=sm3_hex(data),
        signature=base64.b64encode(signature).decode(),
        key_id=ctx.keys.kid,
        meta=meta,
        created_by=actor.username if actor else "system",
        created_at=utcnow(),
    )
    db.add(r)
    db.flush()
    audit.record(
        ctx.keys,
        db,
        "report.generated",
        actor=actor,
        actor_name=None if actor else "system",
        org_id=org_id,
        target=f"report:{r.id}",
        details={"kind": kind, "subject": subject, "format": fmt, "lang": lang, "sm3": r.sm3, "size": r.size},
    )
    return r


def read(ctx: Platform, r: Report) -> bytes:
    return ctx.blobs.read(r.blob_sha256)


def signature_der(r: Report) -> bytes:
    return base64.b64decode(r.signature)


@dataclass
class Verification:
    ok: bool
    sm3: str
    kid: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "sm3": self.sm3, "kid": self.kid, "reason": self.reason}


def verify_bytes(public_key: SM2PublicKey, data: bytes, signature: bytes) -> Verification:
    digest = sm3_hex(data)
    ok = public_key.verify(signature, data)
    reason = "signature valid (SM2 with SM3, uid 1234567812345678)" if ok else "signature does NOT match this file"
    return Verification(ok, digest, public_key.fingerprint(), reason)


def verify_file(public_key: SM2PublicKey, path: Path, signature_path: Path | None = None) -> Verification:
    sig_path = signature_path or path.with_name(path.name + ".sig")
    data = path.read_bytes()
    try:
        sig = sig_path.read_bytes()
    except OSError:
        return Verification(False, sm3_hex(data), public_key.fingerprint(), f"no signature file {sig_path}")
    if sig[:1] != b"\x30":  # base64 text (e.g. copied from JSON): decode it
        try:
            sig = base64.b64decode(sig.strip(), validate=True)
        except ValueError:
            return Verification(False, sm3_hex(data), public_key.fingerprint(), "the signature file is not DER")
    return verify_bytes(public_key, data, sig)
