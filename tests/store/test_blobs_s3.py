"""The S3 blob store against a real S3-compatible server (s3rver, see tests/store/s3server.py)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from medrisk.store.blobs import BlobStoreError, BlobTooLarge, FilesystemBlobStore, open_blob_store
from medrisk.store.blobs_s3 import S3BlobStore, S3Config
from tests.store.conftest import make_store
from tests.store.s3server import S3Server, free_port, start_s3rver

SECRET = "do-not-print-this-secret-4711"  # noqa: S105


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def objects(server: S3Server, bucket: str) -> list[str]:
    return sorted(o.object_name for o in server.client().list_objects(bucket, recursive=True))


def cache_files(store: S3BlobStore) -> list[Path]:
    return sorted(p for p in store.cache.rglob("*") if p.is_file())


def test_round_trip_content_addressed(store: S3BlobStore, s3: S3Server) -> None:
    data = os.urandom(300_000)
    blob = store.put_chunks([data[:1000], data[1000:200_000], data[200_000:]], max_bytes=len(data))
    assert blob.sha256 == sha(data) and blob.size == len(data) and blob.head == data[:64]
    key = f"blobs/{blob.sha256[:2]}/{blob.sha256}"
    assert objects(s3, store.cfg.bucket) == [key]  # <prefix>/<sha[:2]>/<sha>
    assert s3.client().get_object(store.cfg.bucket, key).read() == data
    assert store.exists(blob.sha256) and store.read(blob.sha256) == data
    path = store.path(blob.sha256)
    assert path.is_file() and path.read_bytes() == data and path.is_relative_to(store.cache)
    assert not list((store.cache / "tmp").iterdir())  # the spooled upload became the cached copy


def test_put_stream_and_dedup(store: S3BlobStore, s3: S3Server) -> None:
    data = b"PK\x03\x04" + os.urandom(50_000)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    uploads: list[str] = []
    real_put = store._client.fput_object

    def counting_put(bucket: str, key: str, *args: object, **kw: object) -> object:
        uploads.append(key)
        return real_put(bucket, key, *args, **kw)

    store._client.fput_object = counting_put  # type: ignore[method-assign]
    first = asyncio.run(store.put_stream(chunks(), max_bytes=len(data)))
    second = asyncio.run(store.put_stream(chunks(), max_bytes=len(data)))
    third = store.put_chunks([data], max_bytes=len(data))
    assert first == second == third and first.sha256 == sha(data) and first.head.startswith(b"PK\x03\x04")
    assert len(uploads) == 1  # the same bytes are stored once
    assert objects(s3, store.cfg.bucket) == [f"blobs/{first.sha256[:2]}/{first.sha256}"]
    other = store.put_chunks([b"other bytes"], max_bytes=100)
    assert len(objects(s3, store.cfg.bucket)) == 2 and store.read(other.sha256) == b"other bytes"


def test_too_large_leaves_nothing_behind(store: S3BlobStore, s3: S3Server) -> None:
    sent: list[int] = []

    def endless() -> object:
        for _ in range(1000):
            sent.append(1)
            yield b"x" * 1024

    with pytest.raises(BlobTooLarge):
        store.put_chunks(endless(), max_bytes=10 * 1024)
    assert len(sent) == 11  # cut off at the first chunk past the limit, not read to the end

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"y" * 1024

    with pytest.raises(BlobTooLarge):
        asyncio.run(store.put_stream(stream(), max_bytes=5000))
    assert objects(s3, store.cfg.bucket) == []
    assert cache_files(store) == []  # no spooled temporary file, no cached copy


def test_path_downloads_verifies_and_refetches(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    writer = make_store(s3, bucket, tmp_path / "writer")
    data = os.urandom(100_000)
    digest = writer.put_chunks([data], max_bytes=len(data)).sha256
    reader = make_store(s3, bucket, tmp_path / "reader")  # another machine: empty cache
    path = reader.path(digest)
    assert path.read_bytes() == data and path == tmp_path / "reader" / digest[:2] / digest
    # a damaged cached copy is noticed and fetched again
    path.write_bytes(b"torn" + data[4:])
    assert reader.path(digest).read_bytes() == data
    path.write_bytes(data[:1000])
    assert reader.read(digest) == data
    # a damaged object in the bucket is an error naming the blob; nothing is left in the cache
    path.unlink()
    key = f"blobs/{digest[:2]}/{digest}"
    s3.client().put_object(bucket, key, io.BytesIO(b"not the package"), len(b"not the package"))
    with pytest.raises(BlobStoreError, match=f"blob {digest} fetched from bucket {bucket} .*corrupt"):
        reader.path(digest)
    assert cache_files(reader) == []
    # a blob not in the bucket: FileNotFoundError (scans report it as blob_missing), exists() is False
    missing = sha(b"never stored")
    assert not reader.exists(missing)
    with pytest.raises(FileNotFoundError, match=missing):
        reader.path(missing)
    with pytest.raises(FileNotFoundError):
        reader.read(missing)
    with pytest.raises(ValueError):
        reader.path("../../etc/passwd")


def test_delete(store: S3BlobStore, s3: S3Server) -> None:
    a = store.put_chunks([b"first blob"], max_bytes=100)
    b = store.put_chunks([b"second blob"], max_bytes=100)
    cached = store.path(a.sha256)
    store.delete(a.sha256)
    assert not store.exists(a.sha256) and not cached.exists()
    assert objects(s3, store.cfg.bucket) == [f"blobs/{b.sha256[:2]}/{b.sha256}"]
    store.delete(a.sha256)  # idempotent
    with pytest.raises(FileNotFoundError):
        store.path(a.sha256)
    assert store.read(b.sha256) == b"second blob"


def test_cache_is_bounded_least_recently_used_first(s3: S3Server, tmp_path: Path) -> None:
    store = make_store(s3, s3.new_bucket(), tmp_path / "cache", cache_max_bytes=2500, cache_grace_seconds=0)
    blobs = [store.put_chunks([bytes([i]) * 1000], max_bytes=1000).sha256 for i in range(2)]
    old = time.time() - 100
    os.utime(store.path(blobs[0]), (old, old))  # used long ago
    os.utime(store.cache / blobs[1][:2] / blobs[1], (old + 50, old + 50))
    store.put_chunks([b"\x02" * 1000], max_bytes=1000)  # 3000 bytes > 2500: the least recently used goes
    assert store.cached_bytes() == 2000
    assert not (store.cache / blobs[0][:2] / blobs[0]).exists()
    assert (store.cache / blobs[1][:2] / blobs[1]).exists()
    assert store.path(blobs[0]).read_bytes() == b"\x00" * 1000  # fetched again; now blobs[1] is evicted
    assert store.cached_bytes() == 2000 and not (store.cache / blobs[1][:2] / blobs[1]).exists()
    # copies used recently are kept even past the limit (a scan may be about to open them)
    recent = make_store(s3, store.cfg.bucket, tmp_path / "recent", cache_max_bytes=1500)
    for d in blobs:
        recent.path(d)
    assert recent.cached_bytes() == 2000


def test_wrong_credentials_clear_error_without_secret(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    cfg = S3Config(bucket=bucket, endpoint=s3.endpoint, access_key="nobody", secret_key=SECRET, cache_dir=tmp_path)
    store = S3BlobStore(cfg)
    assert SECRET not in repr(store) and SECRET not in repr(cfg)
    with pytest.raises(BlobStoreError) as err:
        store.check()
    msg = str(err.value)
    assert f"bucket {bucket} at {s3.endpoint}" in msg and "refused the credentials" in msg
    assert "MEDRISK_S3_ACCESS_KEY" in msg and SECRET not in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no client traceback chained
    with pytest.raises(BlobStoreError, match="refused the credentials") as err:
        store.put_chunks([b"data"], max_bytes=10)
    assert SECRET not in str(err.value)
    assert cache_files(store) == []
    with pytest.raises(BlobStoreError, match="refused the credentials"):
        store.path(sha(b"data"))


def test_missing_bucket(s3: S3Server, tmp_path: Path) -> None:
    store = make_store(s3, "medrisk-no-such-bucket", tmp_path)
    with pytest.raises(BlobStoreError, match="bucket medrisk-no-such-bucket at .* does not exist"):
        store.check()


def test_server_down_clear_error(tmp_path: Path) -> None:
    server = start_s3rver()  # a server of its own, stopped mid-test
    try:
        bucket = server.new_bucket()
        store = make_store(server, bucket, tmp_path / "cache", retries=1)
        kept = store.put_chunks([b"uploaded while up"], max_bytes=100).sha256
    finally:
        server.stop()
    started = time.monotonic()
    for call in (
        lambda: store.exists(kept),
        lambda: store.put_chunks([b"uploaded while down"], max_bytes=100),
        lambda: make_store(server, bucket, tmp_path / "other").path(kept),
        store.check,
    ):
        with pytest.raises(BlobStoreError) as err:
            call()
        msg = str(err.value)
        assert f"bucket {bucket} at {server.endpoint} unreachable" in msg and "MEDRISK_S3_ENDPOINT" in msg
    assert time.monotonic() - started < 10
    assert store.path(kept).read_bytes() == b"uploaded while up"  # a verified cached copy needs no server
    assert [p.name for p in cache_files(store)] == [kept]  # the failed upload left nothing behind


def test_configuration_from_environment(s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3.new_bucket()
    monkeypatch.setenv("MEDRISK_BLOBS", f"s3://{bucket}/medrisk/blobs/")
    monkeypatch.setenv("MEDRISK_S3_ENDPOINT", s3.endpoint)
    monkeypatch.setenv("MEDRISK_S3_ACCESS_KEY", "S3RVER")
    monkeypatch.setenv("MEDRISK_S3_SECRET_KEY", "S3RVER")
    monkeypatch.setenv("MEDRISK_S3_REGION", "us-east-1")
    monkeypatch.setenv("MEDRISK_S3_CACHE_MAX_BYTES", "12345")
    store = open_blob_store(tmp_path)
    assert isinstance(store, S3BlobStore)
    cfg = store.cfg
    assert (cfg.bucket, cfg.prefix, cfg.endpoint, cfg.region) == (bucket, "medrisk/blobs", s3.endpoint, "us-east-1")
    assert cfg.cache_dir == tmp_path / "blob-cache" and cfg.cache_max_bytes == 12345
    digest = store.put_chunks([b"configured"], max_bytes=100).sha256
    assert objects(s3, bucket) == [f"medrisk/blobs/{digest[:2]}/{digest}"]
    monkeypatch.setenv("MEDRISK_S3_ENDPOINT", "http://user:pw@127.0.0.1:9000")
    with pytest.raises(ValueError, match="credentials go in") as err:
        open_blob_store(tmp_path)
    assert "pw" not in str(err.value)
    monkeypatch.setenv("MEDRISK_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BlobStoreError, match="unreachable"):
        open_blob_store(tmp_path)  # checked when the platform starts
    monkeypatch.delenv("MEDRISK_BLOBS")
    default = open_blob_store(tmp_path)
    assert isinstance(default, FilesystemBlobStore) and default.root == tmp_path / "blobs"
    with pytest.raises(ValueError, match="unsupported blob store gs://"):
        open_blob_store(tmp_path, "gs://bucket")
