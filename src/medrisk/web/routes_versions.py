"""/api/v1/filings/{id}/versions, /versions and /scans: uploads and immutable scan results.

The upload is the raw request body (``Content-Type: application/vnd.android.package-archive``
or ``application/octet-stream``), not multipart: it streams straight into the blob
store with the size limit checked on every chunk, instead of being spooled to a
temporary file by a form parser first.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from medrisk.platform import versions
from medrisk.platform.errors import Conflict, TooLarge
from medrisk.store.blobs import BlobTooLarge
from medrisk.store.models import Scan
from medrisk.web.common import ERRORS
from medrisk.web.deps import Caller, Ctx, Id
from medrisk.web.schemas import ScanOut, VersionOut

router = APIRouter(prefix="/api/v1", tags=["versions and scans"], responses=ERRORS)

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the APK file itself",
        "content": {
            "application/vnd.android.package-archive": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def version_out(v: Any, latest_scan_id: int | None = None) -> VersionOut:
    return VersionOut.model_validate(v).model_copy(update={"latest_scan_id": latest_scan_id})


@router.post(
    "/filings/{filing_id}/versions",
    status_code=201,
    response_model=VersionOut,
    openapi_extra=UPLOAD_BODY,
    summary="Upload a release (APK) and queue its scan",
)
async def upload(
    filing_id: Id,
    request: Request,
    ctx: Ctx,
    p: Caller,
    file_name: Annotated[str, Query(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f/\\]+$")] = "upload.apk",
) -> VersionOut:
    length = request.headers.get("content-length")
    declared = int(length) if length and length.isdigit() else None
    limit = await run_in_threadpool(versions.prepare_upload, ctx, p, filing_id, declared)
    try:
        blob = await ctx.blobs.put_stream(request.stream(), limit)
    except BlobTooLarge:
        raise TooLarge(f"the package is larger than the limit of {limit} bytes", field="file") from None
    v = await run_in_threadpool(versions.accept_upload, ctx, p, filing_id, blob, file_name)
    return version_out(v)


@router.get("/filings/{filing_id}/versions", response_model=list[VersionOut], summary="Uploaded releases of a filing")
def list_versions(filing_id: Id, ctx: Ctx, p: Caller) -> list[VersionOut]:
    with ctx.db.session() as db:
        vs = versions.list_versions(db, p, filing_id)
        latest: dict[int, int] = {}
        for s in versions.list_scans(db, p, filing_id=filing_id):
            latest[s.version_id] = s.id
        return [version_out(v, latest.get(v.id)) for v in vs]


@router.get("/versions/{version_id}", response_model=VersionOut)
def get_version(version_id: Id, ctx: Ctx, p: Caller) -> VersionOut:
    with ctx.db.session() as db:
        v = versions.get_version(db, p, version_id)
        scans = versions.list_scans(db, p, version_id=v.id)
        return version_out(v, scans[-1].id if scans else None)


@router.post("/versions/{version_id}/scans", status_code=202, response_model=ScanOut, summary="Rescan (a new scan)")
def rescan(version_id: Id, ctx: Ctx, p: Caller) -> ScanOut:
    scan = versions.request_scan(ctx, p, version_id)
    with ctx.db.session() as db:
        return ScanOut.model_validate(db.get(Scan, scan.id))


@router.get("/versions/{version_id}/scans", response_model=list[ScanOut], summary="Scans of a version")
def list_scans(version_id: Id, ctx: Ctx, p: Caller) -> list[ScanOut]:
    with ctx.db.session() as db:
        v = versions.get_version(db, p, version_id)
        return [ScanOut.model_validate(s) for s in versions.list_scans(db, p, version_id=v.id)]


@router.get("/scans/{scan_id}", response_model=ScanOut, summary="A scan: status, score, grade, rule-library version")
def get_scan(scan_id: Id, ctx: Ctx, p: Caller) -> ScanOut:
    with ctx.db.session() as db:
        return ScanOut.model_validate(versions.get_scan(db, p, scan_id))


@router.get(
    "/scans/{scan_id}/result",
    response_model=dict[str, Any],
    summary="The full scan result (schema: scan-result.schema.json)",
)
def get_scan_result(scan_id: Id, ctx: Ctx, p: Caller) -> dict[str, Any]:
    with ctx.db.session() as db:
        s = versions.get_scan(db, p, scan_id)
        if s.result is None:
            raise Conflict(f"scan {scan_id} is {s.status}: no result")
        return s.result
