"""Content-addressed blob store (uploaded packages), by SHA-256.

``BlobStore`` is the interface; ``FilesystemBlobStore`` is the embedded default. An
object-storage backend implements the same four methods. Uploads are written to a
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
