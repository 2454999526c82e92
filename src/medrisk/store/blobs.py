"""Content-addressed blob store (uploaded packages), by SHA-256.

``BlobStore`` is the interface; ``FilesystemBlobStore`` is the embedded default;
``medrisk.store.blobs_s3.S3BlobStore`` keeps them in an S3-compatible object store
(``MEDRISK_BLOBS=s3://bucket/prefix``, see ``open_blob_store``). Uploads are written to a
temporary file while they stream in and the size limit is checked on every chunk,
so an oversized upload is cut off before it fills the disk.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"upload exceeds the limit of {limit} bytes")
        self.limit = limit


class BlobStoreError(Exception):
    """The blob store cannot be reached, refused a request or returned a damaged blob.

    The message names the store (endpoint, bucket, blob), never a credential: it is meant for
    operators (CLI, logs); the web API answers 503 with a generic message.
    """


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    head: bytes  # first bytes, for a cheap type check before anything parses the package


class BlobStore(Protocol):
    def put_chunks(self, chunks: Iterable[bytes], max_bytes: int) -> StoredBlob: ...

    async def put_stream(self, chunks: AsyncIterator[bytes], max_bytes: int) -> StoredBlob: ...

    def read(self, sha256: str) -> bytes: ...

    def path(self, sha256: str) -> Path: ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None: ...


class _Writer:
    def __init__(self, root: Path, max_bytes: int) -> None:
        tmp_dir = root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        self.fh = os.fdopen(fd, "wb")
        self.tmp = Path(name)
        self.hash = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.max_bytes = max_bytes

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise BlobTooLarge(self.max_bytes)
        if len(self.head) < 64:
            self.head += chunk[: 64 - len(self.head)]
        self.hash.update(chunk)
        self.fh.write(chunk)

    def abort(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


class FilesystemBlobStore:
    """Blobs at ``root/ab/cd/<sha256>``, written atomically (temp file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _finish(self, w: _Writer) -> StoredBlob:
        w.fh.close()
        digest = w.hash.hexdigest()
        dest = self.path(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            w.tmp.unlink(missing_ok=True)
        else:
            os.replace(w.tmp, dest)
        return StoredBlob(digest, w.size, w.head)

    def put_chunks(self, chunks: Iterable[bytes], max_bytes: int) -> StoredBlob:
        w = _Writer(self.root, max_bytes)
        try:
            for chunk in chunks:
                w.write(chunk)
        except BaseException:
            w.abort()
            raise
        return self._finish(w)

    async def put_stream(self, chunks: AsyncIterator[bytes], max_bytes: int) -> StoredBlob:
        w = _Writer(self.root, max_bytes)
        try:
            async for chunk in chunks:
                w.write(chunk)
        except BaseException:
            w.abort()
            raise
        return self._finish(w)

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)


BLOBS_ENV = "MEDRISK_BLOBS"  # s3://bucket/prefix; unset or empty: files under <data dir>/blobs


def open_blob_store(data_dir: Path, url: str | None = None) -> BlobStore:
    """The blob store named by ``url`` (default ``$MEDRISK_BLOBS``): ``s3://bucket[/prefix]`` (settings
    ``MEDRISK_S3_*``, see ``blobs_s3.S3Config``), ``file:///dir`` or a directory; unset: ``data_dir/blobs``."""
    url = url if url is not None else os.environ.get(BLOBS_ENV, "")
    if url.startswith("s3://"):
        from medrisk.store.blobs_s3 import S3BlobStore, S3Config  # minio only when it is used

        store = S3BlobStore(S3Config.from_env(url, data_dir))
        store.check()  # refuse to start on an unreachable store or wrong credentials, with the reason
        return store
    if url.startswith("file://"):
        return FilesystemBlobStore(Path(url[len("file://") :]))
    if "://" in url:
        raise ValueError(f"{BLOBS_ENV}: unsupported blob store {url.split('://')[0]}:// (s3:// or a directory)")
    return FilesystemBlobStore(Path(url) if url else data_dir / "blobs")
