"""Versions: uploaded releases of a filed app, stored by SHA-256, each queued for a scan.

An upload is refused (and its blob dropped) when it is not an APK, when its package
name differs from the filing's, or when none of its signing certificates is one the
filing declared. A filing that declared none takes the certificates of its first
signed upload (recorded in the audit log).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from medrisk.analysis.container import open_container
from medrisk.analysis.errors import AnalysisError
from medrisk.analysis.limits import Limits
from medrisk.analysis.manifest import manifest_facts
from medrisk.analysis.signing import signing_facts
from medrisk.platform import audit, filings, settings, versioning
from medrisk.platform.context import Platform
from medrisk.platform.errors import Conflict, Invalid, TooLarge
from medrisk.platform.principal import Principal
from medrisk.platform.roles import Perm
from medrisk.platform.scope import get_visible, scoped
from medrisk.store.blobs import StoredBlob
from medrisk.store.models import Filing, Scan, Version, utcnow

ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class PackageFacts:
    package: str
    version_name: str | None
    version_code: int | None
    certificates: list[str]


def inspect_package(data: bytes, limits: Limits | None = None) -> PackageFacts:
    """The manifest and signing facts an upload is checked against (fast: no code analysis)."""
    limits = limits or Limits()
    container = open_container(data, limits)
    if not container.has("AndroidManifest.xml"):
        raise AnalysisError("no_manifest", "the archive has no AndroidManifest.xml: not an APK")
    from medrisk.analysis.arsc import ResourceTable

    arsc = None
    if container.has("resources.arsc"):
        try:
            arsc = ResourceTable(container.read("resources.arsc"))
        except AnalysisError:
            arsc = None
    m = manifest_facts(container.read("AndroidManifest.xml"), arsc).to_dict()

    def read_entry(entry: str) -> bytes | None:
        return container.read(entry) if container.has(entry) else None

    s = signing_facts(data, read_entry, m.get("min_sdk")).to_dict()
    certs = sorted({c["sha256"].lower() for c in s["certificates"]})
    return PackageFacts(m.get("package") or "", m.get("version_name"), m.get("version_code"), certs)


def prepare_upload(ctx: Platform, p: Principal, filing_id: int, declared_length: int | None) -> int:
    """Check the caller may upload to this filing; returns the size limit in bytes."""
    with ctx.db.session() as db:
        p.require(Perm.VERSION_UPLOAD)
        get_visible(db, p, Filing, filing_id, "filing")
        limit = settings.get(db, "max_upload_mb") * 1024 * 1024
    if declared_length is not None and declared_length > limit:
        raise TooLarge(f"the package is {declared_length} bytes; the limit is {limit} bytes", field="file")
    return limit


def _reject(ctx: Platform, db: Session, blob: StoredBlob, message: str, code: str) -> Invalid:
    if db.scalar(select(Version.id).where(Version.sha256 == blob.sha256)) is None:
        ctx.blobs.delete(blob.sha256)
    return Invalid(message, field="file", code=code)


def accept_upload(ctx: Platform, p: Principal, filing_id: int, blob: StoredBlob, file_name: str) -> Version:
    """Validate a stored upload against its filing, record the version and queue its scan."""
    with ctx.db.session() as db:
        f = get_visible(db, p, Filing, filing_id, "filing")
        if blob.size == 0:
            raise _reject(ctx, db, blob, "the request body is empty: send the APK file as the body", "not_apk")
        if not blob.head.startswith(ZIP_MAGIC):
            raise _reject(ctx, db, blob, "not an APK: the upload is not a ZIP archive", "not_apk")
        try:
            facts = inspect_package(ctx.blobs.read(blob.sha256))
        except AnalysisError as exc:
            raise _reject(ctx, db, blob, f"not a readable APK: {exc.message}", exc.code) from None
        if facts.package != f.package:
            raise _reject(
                ctx,
                db,
                blob,
                f"package name {facts.package!r} does not match the filing's {f.package!r}",
                "package_mismatch",
            )
        if not facts.certificates:
            raise _reject(ctx, db, blob, "the package is not signed (no signing certificate found)", "unsigned")
        if f.signing_certificates and not set(facts.certificates) & set(f.signing_certificates):
            raise _reject(
                ctx,
                db,
                blob,
                "signing certificate does not match the filing: got SHA-256 "
                + ", ".join(facts.certificates)
                + "; filed "
                + ", ".join(f.signing_certificates),
                "certificate_mismatch",
            )
        existing = db.scalar(select(Version).where(Version.filing_id == f.id, Version.sha256 == blob.sha256))
        if existing is not None:
            raise Conflict(f"this package was already uploaded as version {existing.id}", field="file")
        if not f.signing_certificates:
            filings.pin_certificates(ctx, db, f, facts.certificates, p)
        v = Version(
            filing_id=f.id,
            org_id=f.org_id,
            sha256=blob.sha256,
            size=blob.size,
            file_name=file_name[:255],
            package=facts.package,
            version_name=facts.version_name,
            version_code=facts.version_code,
            certificates=facts.certificates,
            in_approved_range=versioning.in_range(facts.version_name, f.approved_version_range),
            uploaded_by=p.user_id,
            created_at=utcnow(),
        )
        db.add(v)
        db.flush()
        scan = _new_scan(db, v, p)
        audit.record(
            ctx.keys,
            db,
            "version.uploaded",
            actor=p,
            org_id=f.org_id,
            target=f"version:{v.id}",
            details={"filing": f.id, "sha256": v.sha256, "size": v.size, "version_name": v.version_name},
        )
        scan_id = scan.id
    _enqueue(ctx, scan_id)
    return v


def _new_scan(db: Session, v: Version, p: Principal) -> Scan:
    scan = Scan(
        version_id=v.id,
        filing_id=v.filing_id,
        org_id=v.org_id,
        status="queued",
        requested_by=p.user_id,
        created_at=utcnow(),
    )
    db.add(scan)
    db.flush()
    return scan


def _enqueue(ctx: Platform, scan_id: int) -> None:
    if ctx.jobs is not None:
        ctx.jobs.enqueue("scan", scan_id=scan_id)


def request_scan(ctx: Platform, p: Principal, version_id: int) -> Scan:
    """A rescan (say with a newer rule library) is a new scan; earlier ones stay as they were."""
    with ctx.db.session() as db:
        p.require(Perm.SCAN_REQUEST)
        v = get_visible(db, p, Version, version_id, "version")
        busy = db.scalar(select(Scan.id).where(Scan.version_id == v.id, Scan.status.in_(("queued", "running"))))
        if busy is not None:
            raise Conflict(f"scan {busy} of this version is still queued or running")
        scan = _new_scan(db, v, p)
        audit.record(
            ctx.keys,
            db,
            "scan.requested",
            actor=p,
            org_id=v.org_id,
            target=f"scan:{scan.id}",
            details={"version": v.id},
        )
    _enqueue(ctx, scan.id)
    return scan


def list_versions(db: Session, p: Principal, filing_id: int) -> list[Version]:
    f = filings.get_filing(db, p, filing_id)
    return list(db.scalars(scoped(select(Version).where(Version.filing_id == f.id).order_by(Version.id), p, Version)))


def get_version(db: Session, p: Principal, version_id: int) -> Version:
    p.require(Perm.FILING_READ)
    return get_visible(db, p, Version, version_id, "version")


def list_scans(db: Session, p: Principal, *, version_id: int | None = None, filing_id: int | None = None) -> list[Scan]:
    p.require(Perm.FILING_READ)
    stmt = select(Scan).order_by(Scan.id)
    if version_id is not None:
        stmt = stmt.where(Scan.version_id == version_id)
    if filing_id is not None:
        stmt = stmt.where(Scan.filing_id == filing_id)
    return list(db.scalars(scoped(stmt, p, Scan)))


def get_scan(db: Session, p: Principal, scan_id: int) -> Scan:
    p.require(Perm.FILING_READ)
    return get_visible(db, p, Scan, scan_id, "scan")
