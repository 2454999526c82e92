"""Blobs in an S3-compatible object store (MinIO, Ceph RGW, AWS S3, ...), through the ``minio`` client.

Selected with ``MEDRISK_BLOBS=s3://bucket/prefix``; the other settings come from the environment:
``MEDRISK_S3_ENDPOINT`` (``http://127.0.0.1:9000``; ``https://`` for TLS), ``MEDRISK_S3_ACCESS_KEY``,
``MEDRISK_S3_SECRET_KEY``, ``MEDRISK_S3_REGION`` (optional), ``MEDRISK_S3_CACHE_DIR`` (default
``<data dir>/blob-cache``) and ``MEDRISK_S3_CACHE_MAX_BYTES`` (default 4 GiB).

Objects are content-addressed like the filesystem store: key ``<prefix>/<sha[:2]>/<sha>``. An upload
is spooled to a temporary file in the cache directory while it is hashed and its size checked on
every chunk (never held in memory), then sent to the bucket unless an object with that key is
already there (same bytes: deduplicated). The scanner needs a local file, so ``path(sha)`` returns
a copy in the cache directory: downloaded to a temporary file, its SHA-256 checked, then renamed
into place; a cached copy is checked again on every ``path`` call and fetched again when it no
longer matches (a torn or tampered file is never handed to the scanner).

The cache is bounded: after a download, least recently used copies (by modification time, which
``path`` refreshes) are removed until the cache fits in its limit, except copies used in the last
``cache_grace_seconds`` (10 minutes: a scan may still be about to open them), so the cache can exceed its
limit briefly under many concurrent scans of large packages.

Errors name the endpoint, bucket and blob, never the credentials (``BlobStoreError``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from medrisk.store.blobs import _SHA256, BlobStoreError, StoredBlob, _Writer

log = logging.getLogger(__name__)

ENDPOINT_ENV = "MEDRISK_S3_ENDPOINT"
ACCESS_KEY_ENV = "MEDRISK_S3_ACCESS_KEY"
SECRET_KEY_ENV = "MEDRISK_S3_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret
REGION_ENV = "MEDRISK_S3_REGION"
CACHE_DIR_ENV = "MEDRISK_S3_CACHE_DIR"
CACHE_MAX_ENV = "MEDRISK_S3_CACHE_MAX_BYTES"

_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}


@dataclass(frozen=True)
class S3Config:
    bucket: str
    prefix: str = ""
    endpoint: str = "http://127.0.0.1:9000"
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    region: str | None = None
    cache_dir: Path = Path("medrisk-data/blob-cache")
    cache_max_bytes: int = 4 << 30
    cache_grace_seconds: float = 600.0  # a copy used this recently is never evicted (scans last up to 300 s)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    retries: int = 2  # per request, for connection errors and 5xx answers (urllib3's backoff)

    @classmethod
    def from_env(cls, url: str, data_dir: Path) -> S3Config:
        """``s3://bucket/prefix`` plus the ``MEDRISK_S3_*`` settings."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname:
            raise ValueError("MEDRISK_BLOBS: expected s3://bucket/prefix")
        if parts.username or parts.password:
            raise ValueError("MEDRISK_BLOBS: credentials go in MEDRISK_S3_ACCESS_KEY / MEDRISK_S3_SECRET_KEY")
        env = os.environ.get
        endpoint = env(ENDPOINT_ENV) or cls.endpoint
        ep = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        if ep.username or ep.password:
            raise ValueError(f"{ENDPOINT_ENV}: credentials go in {ACCESS_KEY_ENV} / {SECRET_KEY_ENV}")
        if ep.scheme not in ("http", "https") or not ep.hostname:
            raise ValueError(f"{ENDPOINT_ENV}: expected http(s)://host:port")
        return cls(
            bucket=parts.netloc,  # bucket names are lower-case; keep what was written
            prefix=parts.path.strip("/"),
            endpoint=f"{ep.scheme}://{ep.netloc}",
            access_key=env(ACCESS_KEY_ENV) or None,
            secret_key=env(SECRET_KEY_ENV) or None,
            region=env(REGION_ENV) or None,
            cache_dir=Path(env(CACHE_DIR_ENV) or data_dir / "blob-cache"),
            cache_max_bytes=int(env(CACHE_MAX_ENV) or cls.cache_max_bytes),
        )

    @property
    def where(self) -> str:
        """The store, for messages: ``bucket <b> at <endpoint>`` (no credentials)."""
        return f"bucket {self.bucket} at {self.endpoint}"


class S3BlobStore:
    """``BlobStore`` on an S3-compatible bucket, with a bounded local cache for ``path``."""

    def __init__(self, cfg: S3Config) -> None:
        import urllib3
        from minio import Minio

        self.cfg = cfg
        self.cache = Path(cfg.cache_dir)
        self.cache.mkdir(parents=True, exist_ok=True)
        ep = urlsplit(cfg.endpoint)
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=cfg.connect_timeout, read=cfg.read_timeout),
            maxsize=10,
            retries=urllib3.Retry(
                total=cfg.retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504], allowed_methods=None
            ),
        )
        self._client = Minio(
            ep.netloc,
            access_key=cfg.access_key,
            secret_key=cfg.secret_key,
            region=cfg.region,
            secure=ep.scheme == "https",
            http_client=http,
        )

    def __repr__(self) -> str:
        return f"S3BlobStore({self.cfg.where}, prefix={self.cfg.prefix!r})"

    # --- keys and errors ---------------------------------------------------------------------------

    def key(self, sha256: str) -> str:
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a SHA-256 hex digest")
        name = f"{sha256[:2]}/{sha256}"
        return f"{self.cfg.prefix}/{name}" if self.cfg.prefix else name

    def _fail(self, exc: Exception, doing: str) -> NoReturn:
        """Raise a ``BlobStoreError`` for a client or network error, naming the store (never a secret)."""
        from minio.error import S3Error

        where = self.cfg.where
        if isinstance(exc, S3Error):
            if exc.code in _CREDENTIAL_CODES:
                raise BlobStoreError(
                    f"S3 blob store {where} refused the credentials ({exc.code}) while {doing}: "
                    f"check {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}"
                ) from None
            if exc.code == "NoSuchBucket":
                raise BlobStoreError(f"S3 blob store: {where} does not exist (create it first)") from None
            raise BlobStoreError(f"S3 blob store {where} answered {exc.code} while {doing}") from None
        reason = getattr(exc, "reason", None) or exc
        raise BlobStoreError(
            f"S3 blob store {where} unreachable while {doing} ({type(reason).__name__}): "
            f"check {ENDPOINT_ENV} and that the server is up"
        ) from None

    def _is_missing(self, exc: Exception) -> bool:
        from minio.error import S3Error

        return isinstance(exc, S3Error) and exc.code in ("NoSuchKey", "NoSuchObject", "NotFound")

    def check(self) -> None:
        """Fail now, with the reason, if the store is unreachable, refuses the credentials or has no bucket."""
        try:
            found = self._client.bucket_exists(self.cfg.bucket)
        except Exception as exc:  # noqa: BLE001 - every client/network error becomes a clear one
            self._fail(exc, "checking the bucket")
        if not found:
            raise BlobStoreError(f"S3 blob store: {self.cfg.where} does not exist (create it first)")

    # --- writing -----------------------------------------------------------------------------------

    def _finish(self, w: _Writer) -> StoredBlob:
        w.fh.close()
        digest = w.hash.hexdigest()
        try:
            if not self.exists(digest):
                try:
                    self._client.fput_object(
                        self.cfg.bucket, self.key(digest), str(w.tmp), content_type="application/octet-stream"
                    )
                except Exception as exc:  # noqa: BLE001
                    self._fail(exc, f"storing blob {digest}")
            # the spooled file is this blob's cached copy: the scan that follows needs no download
            dest = self._cached(digest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(w.tmp, dest)
        finally:
            w.tmp.unlink(missing_ok=True)
        self._evict(keep=digest)
        return StoredBlob(digest, w.size, w.head)

    def put_chunks(self, chunks: Iterable[bytes], max_bytes: int) -> StoredBlob:
        w = _Writer(self.cache, max_bytes)
        try:
            for chunk in chunks:
                w.write(chunk)
        except BaseException:
            w.abort()
            raise
        return self._finish(w)

    async def put_stream(self, chunks: AsyncIterator[bytes], max_bytes: int) -> StoredBlob:
        w = _Writer(self.cache, max_bytes)
        try:
            async for chunk in chunks:
                w.write(chunk)
        except BaseException:
            w.abort()
            raise
        return await asyncio.to_thread(self._finish, w)  # the upload to the bucket blocks

    # --- reading -----------------------------------------------------------------------------------

    def _cached(self, sha256: str) -> Path:
        self.key(sha256)  # validates the digest
        return self.cache / sha256[:2] / sha256

    def path(self, sha256: str) -> Path:
        """A verified local copy of the blob (downloaded into the cache when missing or damaged).

        Raises ``FileNotFoundError`` when the bucket has no such blob, ``BlobStoreError`` when the
        store fails or the downloaded bytes do not match their SHA-256."""
        dest = self._cached(sha256)
        if dest.is_file():
            if _file_sha256(dest) == sha256:
                _touch(dest)
                return dest
            log.warning("cached blob %s is damaged; fetching it again from %s", sha256, self.cfg.where)
            dest.unlink(missing_ok=True)
        self._download(sha256, dest)
        self._evict(keep=sha256)
        return dest

    def _download(self, sha256: str, dest: Path) -> None:
        tmp_dir = self.cache / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="download-")
        tmp = Path(name)
        h = hashlib.sha256()
        response: Any = None
        try:
            with os.fdopen(fd, "wb") as fh:
                try:
                    response = self._client.get_object(self.cfg.bucket, self.key(sha256))
                    for chunk in response.stream(1 << 20):
                        h.update(chunk)
                        fh.write(chunk)
                except Exception as exc:  # noqa: BLE001
                    if self._is_missing(exc):
                        raise FileNotFoundError(f"blob {sha256} is not in {self.cfg.where}") from None
                    self._fail(exc, f"fetching blob {sha256}")
                finally:
                    if response is not None:
                        response.close()
                        response.release_conn()
            if h.hexdigest() != sha256:
                raise BlobStoreError(
                    f"blob {sha256} fetched from {self.cfg.where} is corrupt (its SHA-256 is {h.hexdigest()})"
                )
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        try:
            self._client.stat_object(self.cfg.bucket, self.key(sha256))
        except Exception as exc:  # noqa: BLE001
            if self._is_missing(exc):
                return False
            self._fail(exc, f"looking up blob {sha256}")
        return True

    def delete(self, sha256: str) -> None:
        key = self.key(sha256)
        self._cached(sha256).unlink(missing_ok=True)
        try:
            self._client.remove_object(self.cfg.bucket, key)  # idempotent: no error for a missing key
        except Exception as exc:  # noqa: BLE001
            if not self._is_missing(exc):
                self._fail(exc, f"deleting blob {sha256}")

    # --- the cache ---------------------------------------------------------------------------------

    def cached_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._cache_files())

    def _cache_files(self) -> list[Path]:
        return [p for p in self.cache.glob("[0-9a-f][0-9a-f]/*") if _SHA256.fullmatch(p.name)]

    def _evict(self, keep: str) -> None:
        """Remove least recently used copies until the cache fits its limit (not ``keep``, not recent ones)."""
        entries = []
        for p in self._cache_files():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue  # evicted by another process
            entries.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in entries)
        if total <= self.cfg.cache_max_bytes:
            return
        recent = time.time() - self.cfg.cache_grace_seconds
        for mtime, size, p in sorted(entries, key=lambda e: e[0]):
            if total <= self.cfg.cache_max_bytes:
                break
            if p.name == keep or mtime > recent:
                continue
            p.unlink(missing_ok=True)
            total -= size


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _touch(path: Path) -> None:
    try:
        os.utime(path)  # least recently used = oldest modification time
    except FileNotFoundError:
        pass
