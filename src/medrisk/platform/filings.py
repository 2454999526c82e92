"""Filing (备案): an institution files an app, a regulator of its region reviews it.

Every submission, the first and each change, is kept as an immutable FilingRevision
and puts the filing back to ``pending``. A change to an approved filing keeps the
current authorisation code valid until the regulator decides; approving issues a new
code (the old one is revoked as superseded). Contacts' personal data is encrypted
field by field with SM4-GCM, bound to the filing, position and field.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medrisk.platform import audit, authcode, versioning
from medrisk.platform.context import Platform
from medrisk.platform.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from medrisk.platform.principal import Principal
from medrisk.platform.roles import INSTITUTION_KINDS, Perm
from medrisk.platform.scope import get_visible, scoped
from medrisk.privacy.inventory import resolve_app_type
from medrisk.store.blobs import StoredBlob
from medrisk.store.models import Filing, FilingRevision, Organisation, Version, utcnow

FIELDS = (
    "name",
    "platform",
    "app_type",
    "current_version",
    "privacy_policy_url",
    "channels",
    "sdks",
    "signing_certificates",
)
CONTACT_FIELDS = ("name", "phone", "email")


def _contact_context(filing_id: int, index: int, name: str) -> str:
    return f"filings.contacts:{filing_id}:{index}:{name}"


def encrypt_contacts(ctx: Platform, filing_id: int, contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(contacts):
        item = {"role": c.get("role") or ""}
        for f in CONTACT_FIELDS:
            item[f] = ctx.keys.encrypt(c.get(f) or "", _contact_context(filing_id, i, f))
        out.append(item)
    return out


def decrypt_contacts(ctx: Platform, filing_id: int, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(stored):
        item = {"role": c.get("role", "")}
        for f in CONTACT_FIELDS:
            item[f] = ctx.keys.decrypt(c.get(f), _contact_context(filing_id, i, f)) or ""
        out.append(item)
    return out


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: data[k] for k in FIELDS if k in data}
    if "app_type" in out:
        try:
            t = resolve_app_type(out["app_type"])
        except ValueError:
            raise Invalid(
                "unknown app type: use a type of the necessary-information list (e.g. 问诊挂号类)", field="app_type"
            ) from None
        if t is None:
            raise Invalid("app type is required", field="app_type")
        out["app_type"] = t.id
    if "current_version" in out:
        versioning.default_range(out["current_version"])  # must start with a number
    if "signing_certificates" in out:
        out["signing_certificates"] = sorted({c.lower().replace(":", "") for c in out["signing_certificates"]})
    return out


def _snapshot(f: Filing) -> dict[str, Any]:
    snap = {k: getattr(f, k) for k in FIELDS}
    snap["package"] = f.package
    snap["contacts"] = f.contacts_enc
    return snap


def _submit_revision(db: Session, f: Filing, p: Principal) -> FilingRevision:
    rev = FilingRevision(
        filing_id=f.id, org_id=f.org_id, revision=f.revision, data=_snapshot(f), submitted_by=p.user_id
    )
    db.add(rev)
    db.flush()
    return rev


def create_filing(ctx: Platform, db: Session, p: Principal, data: dict[str, Any]) -> Filing:
    p.require(Perm.FILING_WRITE)
    org_id = data.get("org_id") or p.org_id
    org = get_visible(db, p, Organisation, org_id, "organisation")
    if org.kind not in INSTITUTION_KINDS:
        raise Invalid("apps are filed by institutions (hospitals, internet hospitals, app companies)", field="org_id")
    fields = _normalise(data)
    f = Filing(org_id=org.id, package=data["package"], created_by=p.user_id, status="pending", revision=1, **fields)
    try:
        with db.begin_nested():
            db.add(f)
            db.flush()
    except IntegrityError:
        raise Conflict(
            f"package {data['package']} on {fields.get('platform')} is already filed", field="package"
        ) from None
    f.contacts_enc = encrypt_contacts(ctx, f.id, data.get("contacts") or [])
    db.flush()
    _submit_revision(db, f, p)
    audit.record(
        ctx.keys,
        db,
        "filing.submitted",
        actor=p,
        org_id=f.org_id,
        target=f"filing:{f.id}",
        details={"revision": 1, "package": f.package},
    )
    return f


def update_filing(ctx: Platform, db: Session, p: Principal, filing_id: int, data: dict[str, Any]) -> Filing:
    """A change is a new revision and goes back to review (also after approval)."""
    p.require(Perm.FILING_WRITE)
    f = get_visible(db, p, Filing, filing_id, "filing")
    if data.get("package") not in (None, f.package):
        raise Invalid("the package name identifies the filing and cannot change: file the new package", field="package")
    fields = _normalise(data)
    changed = sorted(k for k, v in fields.items() if getattr(f, k) != v)
    if "contacts" in data and data["contacts"] is not None:
        if decrypt_contacts(ctx, f.id, f.contacts_enc) != [
            {"role": c.get("role") or "", **{k: c.get(k) or "" for k in CONTACT_FIELDS}} for c in data["contacts"]
        ]:
            changed.append("contacts")
        f.contacts_enc = encrypt_contacts(ctx, f.id, data["contacts"])
    if not changed:
        return f
    for k, v in fields.items():
        setattr(f, k, v)
    was = f.status
    f.revision += 1
    f.status = "pending"
    f.updated_at = utcnow()
    db.flush()
    _submit_revision(db, f, p)
    audit.record(
        ctx.keys,
        db,
        "filing.changed",
        actor=p,
        org_id=f.org_id,
        target=f"filing:{f.id}",
        details={"revision": f.revision, "fields": changed, "previous_status": was},
    )
    return f


def review(
    ctx: Platform,
    db: Session,
    p: Principal,
    filing_id: int,
    *,
    decision: str,
    reason: str,
    version_range: str | None = None,
    valid_days: int | None = None,
) -> Filing:
    p.require(Perm.FILING_REVIEW)
    f = get_visible(db, p, Filing, filing_id, "filing")
    if f.org_id == p.org_id:
        raise Forbidden("an organisation cannot review its own filing")
    if f.status != "pending":
        raise Conflict(f"the filing is {f.status}, not pending review")
    rev = db.scalar(
        select(FilingRevision).where(FilingRevision.filing_id == f.id, FilingRevision.revision == f.revision)
    )
    assert rev is not None
    reason = (reason or "").strip()
    if decision == "rejected" and not reason:
        raise Invalid("a rejection needs a reason", field="reason")
    if decision == "approved":
        if not f.signing_certificates:
            raise Conflict(
                "no signing certificate: declare the SHA-256 fingerprints or upload a signed release first",
                field="signing_certificates",
            )
        f.approved_version_range = (
            versioning.check_range(version_range) if version_range else versioning.default_range(f.current_version)
        )
        f.approved_revision = f.revision
    rev.decision, rev.reason, rev.decided_by, rev.decided_at = decision, reason, p.user_id, utcnow()
    f.status = decision
    f.updated_at = utcnow()
    db.flush()
    audit.record(
        ctx.keys,
        db,
        f"filing.{decision}",
        actor=p,
        org_id=f.org_id,
        target=f"filing:{f.id}",
        details={
            "revision": f.revision,
            "reason": reason,
            "version_range": f.approved_version_range if decision == "approved" else None,
        },
    )
    if decision == "approved":
        authcode.issue(ctx, db, f, p, valid_days)
    return f


def list_filings(
    db: Session,
    p: Principal,
    *,
    status: str | None = None,
    org_id: int | None = None,
    package: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Filing]:
    p.require(Perm.FILING_READ)
    stmt = select(Filing).order_by(Filing.id)
    if status:
        stmt = stmt.where(Filing.status == status)
    if org_id is not None:
        stmt = stmt.where(Filing.org_id == org_id)
    if package:
        stmt = stmt.where(Filing.package == package)
    return list(db.scalars(scoped(stmt, p, Filing).limit(limit).offset(offset)))


def get_filing(db: Session, p: Principal, filing_id: int) -> Filing:
    p.require(Perm.FILING_READ)
    return get_visible(db, p, Filing, filing_id, "filing")


def revisions(db: Session, p: Principal, filing_id: int) -> list[FilingRevision]:
    f = get_filing(db, p, filing_id)
    return list(
        db.scalars(select(FilingRevision).where(FilingRevision.filing_id == f.id).order_by(FilingRevision.revision))
    )


def pin_certificates(ctx: Platform, db: Session, f: Filing, certs: list[str], p: Principal) -> None:
    """A filing without declared certificates takes those of its first signed upload."""
    f.signing_certificates = sorted(certs)
    db.flush()
    audit.record(
        ctx.keys,
        db,
        "filing.certificates_pinned",
        actor=p,
        org_id=f.org_id,
        target=f"filing:{f.id}",
        details={"certificates": f.signing_certificates},
    )


# --- the privacy-policy file ------------------------------------------------------------------------

POLICY_MAX_BYTES = 2 * 1024 * 1024
POLICY_TYPES = ("text/html", "text/plain")
POLICY_CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "gb18030": "gb18030"}


def _policy_media_type(content_type: str | None) -> tuple[str, str | None]:
    """``(media type, declared charset)`` of an upload's Content-Type, or 422 naming the problem."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    if media not in POLICY_TYPES:
        raise Invalid(
            f"unsupported privacy-policy type {media or '(none)'!r}: send HTML (text/html) or plain text (text/plain)",
            field="file",
            code="unsupported_type",
        )
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in POLICY_CHARSETS:
                raise Invalid(
                    f"unsupported privacy-policy encoding {charset!r}: send UTF-8 or GB18030",
                    field="file",
                    code="unsupported_encoding",
                )
            charset = POLICY_CHARSETS[charset]
    return media, charset


def _policy_encoding(data: bytes, declared: str | None) -> str:
    """The text's encoding (UTF-8 or GB18030), or 422: binary data and other encodings are refused."""
    if b"\x00" in data:
        raise Invalid("the privacy policy is not text (it contains NUL bytes)", field="file", code="not_text")
    for enc in [declared] if declared else ["utf-8", "gb18030"]:
        try:
            data.decode("utf-8-sig" if enc == "utf-8" else enc)
        except UnicodeDecodeError:
            continue
        return enc
    raise Invalid(
        f"the privacy policy is not valid {declared.upper() if declared else 'UTF-8 or GB18030'} text",
        field="file",
        code="unsupported_encoding",
    )


def prepare_policy_upload(
    ctx: Platform, p: Principal, filing_id: int, content_type: str | None, length: int | None
) -> int:
    """Check the caller may change this filing and the declared type and size; returns the size limit."""
    p.require(Perm.FILING_WRITE)
    with ctx.db.session() as db:
        get_visible(db, p, Filing, filing_id, "filing")
    _policy_media_type(content_type)
    if length is not None and length > POLICY_MAX_BYTES:
        raise TooLarge(
            f"the privacy policy is {length} bytes; the limit is {POLICY_MAX_BYTES} bytes (2 MB)", field="file"
        )
    return POLICY_MAX_BYTES


def _blob_in_use(db: Session, sha256: str) -> bool:
    return (
        db.scalar(select(Version.id).where(Version.sha256 == sha256).limit(1)) is not None
        or db.scalar(select(Filing.id).where(Filing.privacy_policy_sha256 == sha256).limit(1)) is not None
    )


def attach_privacy_policy(
    ctx: Platform, p: Principal, filing_id: int, blob: StoredBlob, content_type: str | None
) -> Filing:
    """Attach (or replace) the filing's privacy-policy file; scans of its versions then check it."""
    p.require(Perm.FILING_WRITE)
    with ctx.db.session() as db:
        f = get_visible(db, p, Filing, filing_id, "filing")
        try:
            media, declared = _policy_media_type(content_type)
            if blob.size == 0:
                raise Invalid("the request body is empty: send the privacy-policy file as the body", field="file")
            encoding = _policy_encoding(ctx.blobs.read(blob.sha256), declared)
        except Invalid:
            if not _blob_in_use(db, blob.sha256):
                ctx.blobs.delete(blob.sha256)
            raise
        previous = f.privacy_policy_sha256
        f.privacy_policy_sha256 = blob.sha256
        f.privacy_policy_size = blob.size
        f.privacy_policy_media_type = f"{media}; charset={encoding}"
        f.privacy_policy_uploaded_at = f.updated_at = utcnow()
        db.flush()  # the previous file stays in the blob store: earlier scans and the audit log name it
        audit.record(
            ctx.keys,
            db,
            "filing.privacy_policy_uploaded",
            actor=p,
            org_id=f.org_id,
            target=f"filing:{f.id}",
            details={"sha256": blob.sha256, "size": blob.size, "media_type": media, "previous_sha256": previous},
        )
        return f


def privacy_policy(ctx: Platform, db: Session, p: Principal, filing_id: int) -> tuple[bytes, str]:
    """The filing's privacy-policy file and its media type (404 when none was uploaded)."""
    f = get_filing(db, p, filing_id)
    if not f.privacy_policy_sha256:
        raise NotFound(f"filing {filing_id} has no privacy-policy file")
    return ctx.blobs.read(f.privacy_policy_sha256), f.privacy_policy_media_type or "text/plain"
