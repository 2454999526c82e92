"""The platform on an S3 blob store, end to end: upload through the API, the scan reads the bucket's copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medrisk.platform.scanning import ThreadScanRunner
from medrisk.platform.service import ServiceConfig, build
from medrisk.store.blobs_s3 import S3BlobStore
from tests.platform.world import build_world
from tests.store.s3server import ACCESS_KEY, SECRET_KEY, free_port, start_s3rver

ECSPRIDE_CERT = "597d556fd1188bfb3fdf875b4af8d3f682d5fa3e7a6f94d92cdad276858b7e7a"


def _platform(tmp_path: Path, blobs: str):  # noqa: ANN202 - Platform
    cfg = ServiceConfig(
        data_dir=tmp_path,
        db_url=f"sqlite:///{tmp_path / 'medrisk.db'}",
        jobs="inline",
        scan_runner="thread",
        allow_generated_keystore_password=True,
        keystore_iterations=100_000,
        blobs=blobs,
    )
    ctx = build(cfg)
    ctx.scan_runner = ThreadScanRunner()
    return ctx


def test_upload_and_scan_through_the_bucket(tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = start_s3rver()  # a server of its own: this test stops it
    monkeypatch.setenv("MEDRISK_S3_ENDPOINT", s3.endpoint)
    monkeypatch.setenv("MEDRISK_S3_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("MEDRISK_S3_SECRET_KEY", SECRET_KEY)
    bucket = s3.new_bucket()
    ctx = _platform(tmp_path, f"s3://{bucket}/packages")
    try:
        assert isinstance(ctx.blobs, S3BlobStore)
        world = build_world(ctx)
        f = world.file_app(package="de.ecspride", signing_certificates=[ECSPRIDE_CERT], current_version="1.0")
        r = world.upload(f["id"], corpus_dir / "DroidBench-LogNoLeak.apk")
        assert r.status_code == 201, r.text
        v = r.json()
        sha = v["sha256"]
        keys = [o.object_name for o in s3.client().list_objects(bucket, recursive=True)]
        assert keys == [f"packages/{sha[:2]}/{sha}"]  # in the bucket, content-addressed
        assert not (tmp_path / "blobs").exists()  # nothing in the filesystem store
        scans = world.client.get(f"/api/v1/versions/{v['id']}/scans", headers=world.h("hosp_builder")).json()
        assert len(scans) == 1 and scans[0]["status"] == "done", scans
        # another machine (an empty cache): the rescan fetches the package from the bucket and verifies it
        shutil.rmtree(ctx.blobs.cache)
        r = world.client.post(f"/api/v1/versions/{v['id']}/scans", headers=world.h("hosp_builder"))
        assert r.status_code == 202, r.text
        again = world.client.get(f"/api/v1/scans/{r.json()['id']}", headers=world.h("hosp_builder")).json()
        assert again["status"] == "done" and again["grade"] == scans[0]["grade"], again
        assert ctx.blobs.path(sha).is_file()
        assert world.client.get("/readyz").status_code == 200

        # the store goes away: an upload answers 503 with a reason and a Retry-After, no traceback
        s3.stop()
        r = world.upload(f["id"], corpus_dir / "DroidBench-DirectLeak1.apk")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["code"] == "blob_store_unavailable" and r.headers["Retry-After"] == "30"
        assert SECRET_KEY not in r.text and "Traceback" not in r.text
        r = world.client.get("/readyz")  # the load balancer stops sending traffic here
        assert r.status_code == 503 and r.json()["problems"] == ["blob store unavailable"], r.text
    finally:
        ctx.db.dispose()
        s3.stop()


def test_platform_refuses_to_start_on_an_unreachable_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medrisk.store.blobs import BlobStoreError

    monkeypatch.setenv("MEDRISK_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MEDRISK_S3_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("MEDRISK_S3_SECRET_KEY", "a-secret-that-must-not-leak")
    with pytest.raises(BlobStoreError, match="unreachable") as err:
        _platform(tmp_path, "s3://medrisk/packages")
    assert "a-secret-that-must-not-leak" not in str(err.value)
