"""Filing (备案): submission, review, re-review, authorisation codes (incl. openssl), encryption at rest."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from sqlalchemy import text

from medrisk import platform_cli
from medrisk.platform.authcode import unb64url

CERT = "ab" * 32


def test_file_review_and_authorisation_code(world):
    f = world.file_app(signing_certificates=[CERT.upper()])
    assert f["status"] == "pending" and f["revision"] == 1
    assert f["signing_certificates"] == [CERT]  # normalised
    assert f["contacts"][0]["phone"] == "+86 138 0000 0000"
    done = world.approve(f["id"])
    assert done["status"] == "approved"
    assert done["approved_version_range"] == ">=1.0,<1.1"
    code = world.client.get(f"/api/v1/filings/{f['id']}/authcode", headers=world.h("hosp_builder")).json()
    payload = code["payload"]
    assert payload["fid"] == f["id"] and payload["pkg"] == f["package"] and payload["crt"] == [CERT]
    assert payload["ins"]["id"] == world.org("hosp") and payload["ver"] == ">=1.0,<1.1"
    assert payload["exp"] > payload["iat"]
    v = world.client.post("/api/v1/authcodes/verify", json={"code": code["code"]}).json()
    assert v["valid"] is True and all(v["checks"].values())
    # a changed payload no longer verifies
    h, p, s = code["code"].split(".")
    forged = json.loads(unb64url(p)) | {"pkg": "com.evil.app"}
    from medrisk.platform.authcode import b64url

    bad = f"{h}.{b64url(json.dumps(forged).encode())}.{s}"
    v = world.client.post("/api/v1/authcodes/verify", json={"code": bad}).json()
    assert v["valid"] is False and v["checks"]["signature"] is False


def test_openssl_verifies_an_authorisation_code(world, tmp_path):
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is required (Debian package openssl)"
    f = world.file_app(signing_certificates=[CERT])
    world.approve(f["id"])
    code = world.client.get(f"/api/v1/filings/{f['id']}/authcode", headers=world.h("hosp_admin")).json()["code"]
    pem = world.client.get("/.well-known/medrisk/platform-key.pem")
    assert pem.status_code == 200 and pem.text.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "platform-key.pem").write_text(pem.text)
    # exactly the commands of docs/platform.md
    script = r"""
set -e
b64url_decode() {
  s=$(printf '%s' "$1" | tr -- '-_' '+/'); while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done
  printf '%s' "$s" | base64 -d
}
printf '%s' "${CODE%.*}" > signed.txt
b64url_decode "${CODE##*.}" > sig.der
b64url_decode "$(printf '%s' "$CODE" | cut -d. -f2)" > payload.json
openssl dgst -sm3 -verify platform-key.pem -sigopt distid:1234567812345678 -signature sig.der signed.txt
"""
    r = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env={"CODE": code, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "Verified OK" in r.stdout, r.stdout + r.stderr
    assert json.loads((tmp_path / "payload.json").read_text())["fid"] == f["id"]
    # a modified signed input fails
    (tmp_path / "signed.txt").write_bytes((tmp_path / "signed.txt").read_bytes()[:-2] + b"xx")
    r = subprocess.run(
        [
            openssl,
            "dgst",
            "-sm3",
            "-verify",
            "platform-key.pem",
            "-sigopt",
            "distid:1234567812345678",
            "-signature",
            "sig.der",
            "signed.txt",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "Verification failure" in r.stdout + r.stderr


def test_cli_authcode_verify(world, tmp_path, capsys):
    f = world.file_app(signing_certificates=[CERT])
    world.approve(f["id"])
    code = world.client.get(f"/api/v1/filings/{f['id']}/authcode", headers=world.h("hosp_admin")).json()["code"]
    (tmp_path / "k.pem").write_bytes(world.ctx.keys.public_pem())
    assert platform_cli.main(["authcode", "verify", code, "--public-key", str(tmp_path / "k.pem")]) == 0
    assert "VALID" in capsys.readouterr().out
    assert platform_cli.main(["authcode", "verify", code[:-4] + "AAAA", "--public-key", str(tmp_path / "k.pem")]) == 1
    assert "INVALID" in capsys.readouterr().out


def test_reject_needs_a_reason_and_is_recorded(world):
    f = world.file_app()
    url = f"/api/v1/filings/{f['id']}/review"
    r = world.client.post(url, json={"decision": "rejected"}, headers=world.h("hz_reg"))
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = world.client.post(url, json={"decision": "rejected", "reason": "隐私政策缺失"}, headers=world.h("hz_reg"))
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    revs = world.client.get(f"/api/v1/filings/{f['id']}/revisions", headers=world.h("hosp_builder")).json()
    assert revs[0]["decision"] == "rejected" and revs[0]["reason"] == "隐私政策缺失"
    r = world.client.post(url, json={"decision": "approved"}, headers=world.h("hz_reg"))
    assert r.status_code == 409  # not pending any more
    assert world.client.get(f"/api/v1/filings/{f['id']}/authcode", headers=world.h("hosp_builder")).status_code == 404


def test_change_after_approval_is_reviewed_again(world):
    f = world.file_app(signing_certificates=[CERT])
    world.approve(f["id"])
    first = world.client.get(f"/api/v1/filings/{f['id']}/authcode", headers=world.h("hosp_builder")).json()
    r = world.client.patch(
        f"/api/v1/filings/{f['id']}", json={"current_version": "1.1.0"}, headers=world.h("hosp_builder")
    )
    assert r.status_code == 200 and r.json()["status"] == "pending" and r.json()["revision"] == 2
    assert r.json()["approved_revision"] == 1
    # the approved code stays valid until the regulator decides
    assert world.client.post("/api/v1/authcodes/verify", json={"code": first["code"]}).json()["valid"]
    r = world.client.patch(
        f"/api/v1/filings/{f['id']}", json={"package": "com.other.pkg"}, headers=world.h("hosp_builder")
    )
    assert r.status_code == 422 and r.json()["field"] == "package"
    world.approve(f["id"], who="zj_reg")  # the provincial regulator's region includes the city
    second = world.client.get(f"/api/v1/filings/{f['id']}/authcode", headers=world.h("hosp_builder")).json()
    assert second["id"] != first["id"] and second["payload"]["ver"] == ">=1.1,<1.2" and second["payload"]["rev"] == 2
    v = world.client.post("/api/v1/authcodes/verify", json={"code": first["code"]}).json()
    assert v["valid"] is False and v["reason"].startswith("revoked")
    revs = world.client.get(f"/api/v1/filings/{f['id']}/revisions", headers=world.h("hz_rev")).json()
    assert [r["decision"] for r in revs] == ["approved", "approved"]


def test_revoke_and_reissue(world):
    f = world.file_app(signing_certificates=[CERT])
    world.approve(f["id"], version_range=">=1.0,<2.0", valid_days=30)
    code = world.client.get(f"/api/v1/filings/{f['id']}/authcode", headers=world.h("hz_reg")).json()
    assert code["payload"]["ver"] == ">=1.0,<2.0"
    assert (code["payload"]["exp"] - code["payload"]["iat"]) == 30 * 86400
    r = world.client.post(
        f"/api/v1/authcodes/{code['id']}/revoke", json={"reason": "仿冒"}, headers=world.h("hosp_admin")
    )
    assert r.status_code == 403
    r = world.client.post(f"/api/v1/authcodes/{code['id']}/revoke", json={"reason": "仿冒"}, headers=world.h("hz_reg"))
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert (
        world.client.post("/api/v1/authcodes/verify", json={"code": code["code"]}).json()["reason"] == "revoked: 仿冒"
    )
    r = world.client.post(f"/api/v1/filings/{f['id']}/authcode", json={}, headers=world.h("hz_reg"))
    assert r.status_code == 201
    assert world.client.post("/api/v1/authcodes/verify", json={"code": r.json()["code"]}).json()["valid"]


def test_who_may_review(world):
    f = world.file_app(signing_certificates=[CERT])
    url = f"/api/v1/filings/{f['id']}/review"
    body = {"decision": "approved", "reason": "ok"}
    assert world.client.post(url, json=body, headers=world.h("hosp_admin")).status_code == 403
    assert world.client.post(url, json=body, headers=world.h("hosp_builder")).status_code == 403
    assert world.client.post(url, json=body, headers=world.h("auditor")).status_code == 403
    assert world.client.post(url, json=body, headers=world.h("js_reg")).status_code == 404  # another province
    assert world.client.post(url, json=body, headers=world.h("hz_rev")).status_code == 200


def test_approval_needs_a_signing_certificate(world):
    f = world.file_app()
    r = world.client.post(f"/api/v1/filings/{f['id']}/review", json={"decision": "approved"}, headers=world.h("hz_rev"))
    assert r.status_code == 409 and r.json()["field"] == "signing_certificates"


def test_duplicate_package_conflicts(world):
    f = world.file_app()
    r = world.client.post(
        "/api/v1/filings", json=world.filing_body(package=f["package"]), headers=world.h("corp_builder")
    )
    assert r.status_code == 409 and r.json()["field"] == "package"


def test_contacts_encrypted_at_rest(world):
    f = world.file_app(
        contacts=[{"name": "李四医生", "phone": "13912345678", "email": "lisi@hospital.example", "role": "安全负责人"}]
    )
    with world.ctx.db.engine.connect() as conn:
        raw = conn.execute(text("SELECT contacts_enc FROM filings WHERE id = :i"), {"i": f["id"]}).scalar_one()
        rev = conn.execute(text("SELECT data FROM filing_revisions WHERE filing_id = :i"), {"i": f["id"]}).scalar_one()
    dumped = json.dumps(raw, ensure_ascii=False) if not isinstance(raw, str) else raw
    dumped += rev if isinstance(rev, str) else json.dumps(rev, ensure_ascii=False)
    for secret in ("李四医生", "13912345678", "lisi@hospital.example"):
        assert secret not in dumped
    assert "sm4gcm:v1:" in dumped
    got = world.client.get(f"/api/v1/filings/{f['id']}", headers=world.h("hz_rev")).json()["contacts"][0]
    assert got == {"name": "李四医生", "phone": "13912345678", "email": "lisi@hospital.example", "role": "安全负责人"}


INJECTIONS = [
    "<script>alert('x')</script>",
    "'; DROP TABLE filings; --",
    '" OR 1=1 --',
    '=HYPERLINK("http://evil","x")',
    "{{7*7}} ${7*7} %s%n",
]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_are_stored_and_returned_inert(world, evil):
    f = world.file_app(
        name=evil,
        sdks=[{"name": evil, "purpose": evil}],
        channels=[{"name": evil}],
        contacts=[{"name": evil, "phone": "13800000000", "role": evil}],
    )
    got = world.client.get(f"/api/v1/filings/{f['id']}", headers=world.h("hosp_builder"))
    assert got.headers["content-type"].startswith("application/json")
    g = got.json()
    assert g["name"] == evil and g["sdks"][0]["name"] == evil and g["contacts"][0]["name"] == evil
    r = world.client.post(
        f"/api/v1/filings/{f['id']}/review", json={"decision": "rejected", "reason": evil}, headers=world.h("hz_rev")
    )
    assert r.status_code == 200
    assert (
        world.client.get(f"/api/v1/filings/{f['id']}/revisions", headers=world.h("hosp_builder")).json()[0]["reason"]
        == evil
    )
    assert any(x["id"] == f["id"] for x in world.client.get("/api/v1/filings", headers=world.h("hosp_builder")).json())
    csv_text = world.client.get("/api/v1/exports/filings", headers=world.h("hosp_admin")).text
    if evil.startswith("="):
        assert "'" + evil.replace('"', '""') in csv_text  # spreadsheet formula neutralised
    r = world.client.get("/api/v1/filings", params={"package": evil}, headers=world.h("hosp_builder"))
    assert r.status_code == 422 and r.json()["field"] == "package"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"package": "not a package"}, "package"),
        ({"app_type": "无此类型"}, "app_type"),
        ({"privacy_policy_url": "javascript:alert(1)"}, "privacy_policy_url"),
        ({"contacts": []}, "contacts"),
        ({"contacts": [{"name": "x", "phone": "call me"}]}, "contacts.0.phone"),
        ({"signing_certificates": ["abc"]}, "signing_certificates.0"),
        ({"current_version": "beta"}, "current_version"),
        ({"platform": "symbian"}, "platform"),
        ({"unexpected": 1}, "unexpected"),
        ({"name": "bad\x00name"}, "name"),
    ],
)
def test_invalid_filing_is_422_naming_the_field(world, change, field):
    r = world.client.post("/api/v1/filings", json=world.filing_body(**change), headers=world.h("hosp_builder"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["code"] == "invalid"
