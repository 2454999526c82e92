"""The filing's privacy-policy file: upload, replace, read, limits, visibility, audit, and scans that check it."""

from __future__ import annotations

import hashlib

from medrisk.platform.filings import POLICY_MAX_BYTES

ECSPRIDE_CERT = "597d556fd1188bfb3fdf875b4af8d3f682d5fa3e7a6f94d92cdad276858b7e7a"
POLICY_HTML = (
    "<html><head><title>隐私政策</title></head><body><h1>隐私政策</h1>"
    "<p>本隐私政策说明我们如何收集、使用、存储和保护您的个人信息，以及您享有的权利。</p>"
    "<p>我们收集您的手机号码用于账号注册和登录，收集您的设备标识符用于安全风控。</p>"
    "<p>如您对本政策有任何疑问，请通过 privacy@example.org 与我们的个人信息保护负责人联系。</p>"
    "</body></html>"
)


def _put(world, filing_id, body: bytes, content_type="text/html; charset=utf-8", who="hosp_builder"):
    return world.client.put(
        f"/api/v1/filings/{filing_id}/privacy-policy",
        content=body,
        headers={**world.h(who), "Content-Type": content_type},
    )


def test_upload_replace_and_get(world):
    f = world.file_app()
    assert f["privacy_policy_file"] is None
    assert (
        world.client.get(f"/api/v1/filings/{f['id']}/privacy-policy", headers=world.h("hosp_builder")).status_code
        == 404
    )
    body = POLICY_HTML.encode()
    r = _put(world, f["id"], body)
    assert r.status_code == 200, r.text
    pf = r.json()["privacy_policy_file"]
    assert pf["sha256"] == hashlib.sha256(body).hexdigest() and pf["size"] == len(body)
    assert pf["media_type"] == "text/html; charset=utf-8" and pf["uploaded_at"]
    assert world.ctx.blobs.path(pf["sha256"]).is_file()
    got = world.client.get(f"/api/v1/filings/{f['id']}", headers=world.h("hz_rev")).json()
    assert got["privacy_policy_file"] == pf
    r = world.client.get(f"/api/v1/filings/{f['id']}/privacy-policy", headers=world.h("hz_rev"))
    assert r.status_code == 200 and r.content == body and r.headers["content-type"].startswith("text/html")
    assert r.headers["x-content-type-options"] == "nosniff"
    # replace it with GB18030 plain text (encoding detected when not declared)
    text = "隐私政策：我们仅在提供服务所必需的范围内处理您的个人信息。".encode("gb18030")
    r = _put(world, f["id"], text, content_type="text/plain")
    assert r.status_code == 200, r.text
    pf2 = r.json()["privacy_policy_file"]
    assert pf2["sha256"] == hashlib.sha256(text).hexdigest() and pf2["media_type"] == "text/plain; charset=gb18030"
    r = world.client.get(f"/api/v1/filings/{f['id']}/privacy-policy", headers=world.h("hosp_builder"))
    assert r.content == text
    # audited, with the hash it replaced
    audit = world.client.get(
        "/api/v1/audit", params={"action": "filing.privacy_policy_uploaded"}, headers=world.h("auditor")
    ).json()
    mine = [e for e in audit if e["target"] == f"filing:{f['id']}"]
    assert len(mine) == 2
    assert {e["details"]["sha256"] for e in mine} == {pf["sha256"], pf2["sha256"]}
    assert any(e["details"]["previous_sha256"] == pf["sha256"] for e in mine)


def test_bad_type_encoding_and_oversize(world):
    f = world.file_app()
    r = _put(world, f["id"], b"%PDF-1.7\n", content_type="application/pdf")
    assert r.status_code == 422 and r.json()["code"] == "unsupported_type" and "application/pdf" in r.json()["message"]
    r = _put(world, f["id"], b"text", content_type="text/plain; charset=latin-1")
    assert r.status_code == 422 and r.json()["code"] == "unsupported_encoding"
    r = _put(world, f["id"], b"MZ\x90\x00\x00\x00binary", content_type="text/plain")
    assert r.status_code == 422 and r.json()["code"] == "not_text" and r.json()["field"] == "file"
    r = _put(world, f["id"], "隐私政策".encode("gb18030"), content_type="text/plain; charset=utf-8")
    assert r.status_code == 422 and r.json()["code"] == "unsupported_encoding" and "UTF-8" in r.json()["message"]
    r = _put(world, f["id"], b"", content_type="text/plain")
    assert r.status_code == 422
    r = _put(world, f["id"], b"a" * (POLICY_MAX_BYTES + 1), content_type="text/plain")
    assert r.status_code == 413 and r.json()["code"] == "too_large" and "2 MB" in r.json()["message"]

    def chunks():
        for _ in range(3):
            yield b"a" * (1024 * 1024)

    r = world.client.put(  # no Content-Length: cut off while streaming
        f"/api/v1/filings/{f['id']}/privacy-policy",
        content=chunks(),
        headers={**world.h("hosp_builder"), "Content-Type": "text/plain"},
    )
    assert r.status_code == 413, r.text
    got = world.client.get(f"/api/v1/filings/{f['id']}", headers=world.h("hosp_builder")).json()
    assert got["privacy_policy_file"] is None


def test_other_institution_gets_404_and_readers_cannot_write(world):
    f = world.file_app()
    assert _put(world, f["id"], POLICY_HTML.encode()).status_code == 200
    for who in ("corp_builder", "nj_builder"):
        assert _put(world, f["id"], b"mine now", content_type="text/plain", who=who).status_code == 404
        r = world.client.get(f"/api/v1/filings/{f['id']}/privacy-policy", headers=world.h(who))
        assert r.status_code == 404
    assert world.client.get(f"/api/v1/filings/{f['id']}/privacy-policy", headers=world.h("js_reg")).status_code == 404
    assert _put(world, f["id"], b"x", content_type="text/plain", who="hz_rev").status_code == 403
    assert _put(world, f["id"], b"x", content_type="text/plain", who="hosp_auditor").status_code == 403
    r = world.client.get(f"/api/v1/filings/{f['id']}/privacy-policy", headers=world.h("hosp_auditor"))
    assert r.status_code == 200 and r.content == POLICY_HTML.encode()


def test_scan_checks_the_uploaded_policy(world, corpus_dir):
    f = world.file_app(package="de.ecspride", signing_certificates=[ECSPRIDE_CERT], current_version="1.0")
    r = world.upload(f["id"], corpus_dir / "DroidBench-LogNoLeak.apk")
    assert r.status_code == 201, r.text
    first = world.client.get(f"/api/v1/versions/{r.json()['id']}/scans", headers=world.h("hosp_builder")).json()[0]
    before = world.client.get(f"/api/v1/scans/{first['id']}/result", headers=world.h("hosp_builder")).json()
    assert before["indicators"]["privacy"]["policy"]["present"] is False
    assert before["indicators"]["privacy"]["app_type"] is not None  # the filing's app type
    sha = _put(world, f["id"], POLICY_HTML.encode()).json()["privacy_policy_file"]["sha256"]
    r = world.client.post(f"/api/v1/versions/{r.json()['id']}/scans", headers=world.h("hosp_builder"))
    assert r.status_code == 202, r.text
    s = world.client.get(f"/api/v1/scans/{r.json()['id']}", headers=world.h("hosp_builder")).json()
    assert s["status"] == "done", s
    result = world.client.get(f"/api/v1/scans/{s['id']}/result", headers=world.h("hosp_builder")).json()
    policy = result["indicators"]["privacy"]["policy"]
    assert policy["present"] is True and sha in policy["source"] and policy["language"] == "zh"
    checks = {c["id"]: c["verdict"] for c in policy["checks"]}
    assert checks["present"] == "pass" and any(v != "not_applicable" for k, v in checks.items() if k != "present")
