from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from medrisk.store.blobs_s3 import S3BlobStore, S3Config
from tests.platform.fixtures import _fast_argon2  # noqa: F401 - test-sized Argon2 for the platform test
from tests.store.s3server import ACCESS_KEY, SECRET_KEY, S3Server, start_s3rver


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """One s3rver for the session (each test uses a bucket of its own)."""
    server = start_s3rver()
    yield server
    server.stop()


def make_store(server: S3Server, bucket: str, cache: Path, **over: object) -> S3BlobStore:
    cfg = S3Config(
        bucket=bucket,
        prefix="blobs",
        endpoint=server.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        cache_dir=cache,
        **over,  # type: ignore[arg-type]
    )
    return S3BlobStore(cfg)


@pytest.fixture
def store(s3: S3Server, tmp_path: Path) -> S3BlobStore:
    s = make_store(s3, s3.new_bucket(), tmp_path / "cache")
    s.check()
    return s
