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
from medrisk.platform.errors import Conflict, Forbidden, Invalid
from medrisk.platform.principal import Principal
from medrisk.platform.roles import INSTITUTION_KINDS, Perm
from medrisk.platform.scope import get_visible, scoped
from medrisk.privacy.inventory import resolve_app_type
from medrisk.store.models import Filing, FilingRevision, Organisation, utcnow

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
