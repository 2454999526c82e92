"""Versions and scans: uploads checked against the filing, stored by hash, scanned once per scan."""

from __future__ import annotations

import io
import zipfile

import pytest

ECSPRIDE_CERT = "597d556fd1188bfb3fdf875b4af8d3f682d5fa3e7a6f94d92cdad276858b7e7a"


def test_upload_scan_and_immutable_results(world, corpus_dir):
    f = world.file_app(package="de.ecspride", signing_certificates=[ECSPRIDE_CERT], current_version="1.0")
    r = world.upload(f["id"], corpus_dir / "DroidBench-LogNoLeak.apk")
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["package"] == "de.ecspride" and v["certificates"] == [ECSPRIDE_CERT] and v["version_name"] == "1.0"
    assert world.ctx.blobs.path(v["sha256"]).is_file()  # stored by SHA-256
    scans = world.client.get(f"/api/v1/versions/{v['id']}/scans", headers=world.h("hosp_builder")).json()
    assert len(scans) == 1 and scans[0]["status"] == "done", scans
    s = scans[0]
    assert s["grade"] in ("A", "B", "C") and 0 <= s["score"] <= 100 and s["rules_version"]
    result = world.client.get(f"/api/v1/scans/{s['id']}/result", headers=world.h("hz_rev")).json()
    assert result["app"]["package"] == "de.ecspride" and result["risk"]["grade"] == s["grade"]
    assert result["rules_version"] == s["rules_version"]
    # same bytes again: refused as a duplicate
    r = world.upload(f["id"], corpus_dir / "DroidBench-LogNoLeak.apk")
    assert r.status_code == 409
    # a rescan is a new scan; the first one is unchanged
    r = world.client.post(f"/api/v1/versions/{v['id']}/scans", headers=world.h("hosp_builder"))
    assert r.status_code == 202 and r.json()["id"] != s["id"]
    again = world.client.get(f"/api/v1/scans/{s['id']}", headers=world.h("hosp_builder")).json()
    assert again == s
    assert len(world.client.get(f"/api/v1/versions/{v['id']}/scans", headers=world.h("hosp_builder")).json()) == 2
    # another release with the same key is accepted
    r = world.upload(f["id"], corpus_dir / "DroidBench-DirectLeak1.apk")
    assert r.status_code == 201, r.text
    assert len(world.client.get(f"/api/v1/filings/{f['id']}/versions", headers=world.h("hosp_builder")).json()) == 2
    # same package, another signing key: rejected with the reason
    r = world.upload(f["id"], corpus_dir / "DroidBench-PrivateDataLeak1.apk")
    assert r.status_code == 422 and r.json()["code"] == "certificate_mismatch" and r.json()["field"] == "file"
    assert "d40f9e7b" in r.json()["message"]
    # another package: rejected with the reason
    r = world.upload(f["id"], corpus_dir / "UnCrackable-Level1.apk")
    assert r.status_code == 422 and r.json()["code"] == "package_mismatch"
    assert "owasp.mstg.uncrackable1" in r.json()["message"] and "de.ecspride" in r.json()["message"]


def test_first_signed_upload_pins_the_certificate(world, corpus_dir):
    f = world.file_app(package="owasp.mstg.uncrackable1", current_version="1.0")
    assert f["signing_certificates"] == []
    r = world.upload(f["id"], corpus_dir / "UnCrackable-Level1.apk")
    assert r.status_code == 201, r.text
    got = world.client.get(f"/api/v1/filings/{f['id']}", headers=world.h("hosp_builder")).json()
    assert got["signing_certificates"] == [r.json()["certificates"][0]]
    done = world.approve(f["id"])
    assert done["status"] == "approved"
    code = world.client.get(f"/api/v1/filings/{f['id']}/authcode", headers=world.h("hosp_builder")).json()
    assert code["payload"]["crt"] == got["signing_certificates"]
    audit = world.client.get(
        "/api/v1/audit", params={"action": "filing.certificates_pinned"}, headers=world.h("auditor")
    ).json()
    assert any(e["target"] == f"filing:{f['id']}" for e in audit)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in entries.items():
            z.writestr(k, v)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"MZ\x90\x00 this is a Windows program", "not_apk"),
        (b"%PDF-1.7\n", "not_apk"),
        (_zip({"hello.txt": b"hi"}), "no_manifest"),
        (b"", "not_apk"),
    ],
    ids=["exe", "pdf", "zip-without-manifest", "empty"],
)
def test_non_apk_upload_is_rejected_with_the_reason(world, body, code):
    f = world.file_app()
    r = world.client.post(
        f"/api/v1/filings/{f['id']}/versions",
        content=body,
        headers={**world.h("hosp_builder"), "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code and r.json()["field"] == "file"
    leftovers = [p for p in world.ctx.blobs.root.rglob("*") if p.is_file()]
    import hashlib

    assert all(p.name != hashlib.sha256(body).hexdigest() for p in leftovers)


def test_unsigned_package_is_rejected(world, corpus_dir):
    f = world.file_app(package="jakhar.aseem.diva", current_version="1.0")
    r = world.upload(f["id"], corpus_dir / "diva-beta.apk")
    assert r.status_code == 422 and r.json()["code"] == "unsigned"


def test_oversized_upload_is_refused_while_streaming(world):
    f = world.file_app()
    r = world.client.patch("/api/v1/config", json={"max_upload_mb": 1}, headers=world.h("admin"))
    assert r.status_code == 200 and r.json()["max_upload_mb"] == 1

    def body():
        for _ in range(64):  # 4 MiB in 64 KiB chunks, chunked: no Content-Length to trust
            yield b"PK\x03\x04" + b"\0" * (64 * 1024 - 4)

    try:
        url = f"/api/v1/filings/{f['id']}/versions"
        r = world.client.post(
            url, content=body(), headers={**world.h("hosp_builder"), "Content-Type": "application/octet-stream"}
        )
        assert r.status_code == 413 and r.json()["field"] == "file"
        tmp = world.ctx.blobs.root / "tmp"
        assert not any(tmp.iterdir())  # the partial upload was removed
        # a declared length over the limit is refused before reading anything
        r = world.client.post(
            url,
            content=b"PK\x03\x04",
            headers={
                **world.h("hosp_builder"),
                "Content-Type": "application/octet-stream",
                "Content-Length": str(5 * 1024 * 1024),
            },
        )
        assert r.status_code == 413
    finally:
        world.client.patch("/api/v1/config", json={"max_upload_mb": 300}, headers=world.h("admin"))


def test_other_institutions_cannot_upload_or_read(world, corpus_dir):
    f = world.file_app(package="tests.androguard", current_version="1.0")
    r = world.upload(f["id"], corpus_dir / "androguard-TestActivity.apk")
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    scan_id = world.client.get(f"/api/v1/versions/{vid}", headers=world.h("hosp_builder")).json()["latest_scan_id"]
    assert scan_id
    for who in ("corp_builder", "nj_builder", "js_reg"):
        expected = 403 if who == "js_reg" else 404  # a regulator may not upload at all
        assert world.upload(f["id"], corpus_dir / "androguard-TestActivity.apk", who=who).status_code == expected
        assert world.client.get(f"/api/v1/versions/{vid}", headers=world.h(who)).status_code == 404
        assert world.client.get(f"/api/v1/scans/{scan_id}", headers=world.h(who)).status_code == 404
        assert world.client.get(f"/api/v1/scans/{scan_id}/result", headers=world.h(who)).status_code == 404
        assert world.client.post(f"/api/v1/versions/{vid}/scans", headers=world.h(who)).status_code in (403, 404)
    for who in ("hz_reg", "zj_reg", "hosp_auditor", "auditor"):
        assert world.client.get(f"/api/v1/scans/{scan_id}", headers=world.h(who)).status_code == 200
    assert world.upload(f["id"], corpus_dir / "androguard-TestActivity.apk", who="hz_reg").status_code == 403


def test_blob_store_stops_reading_at_the_limit(tmp_path):
    import asyncio

    from medrisk.store.blobs import BlobTooLarge, FilesystemBlobStore

    store = FilesystemBlobStore(tmp_path)
    consumed = []

    async def chunks():
        for _ in range(1000):
            consumed.append(1)
            yield b"x" * 1024

    with pytest.raises(BlobTooLarge):
        asyncio.run(store.put_stream(chunks(), 10 * 1024))
    assert len(consumed) == 11  # stopped at the first chunk over the limit
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing left on disk
    blob = asyncio.run(store.put_stream(_agen([b"PK\x03\x04", b"rest"]), 1024))
    assert store.read(blob.sha256) == b"PK\x03\x04rest" and blob.head == b"PK\x03\x04rest" and blob.size == 8
    assert store.path(blob.sha256).parent.parent.parent == tmp_path


async def _agen(items):
    for i in items:
        yield i
