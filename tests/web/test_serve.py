"""`medrisk serve` as a new user meets it: embedded defaults, demo data, credentials printed once."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MEDRISK_KEYSTORE_PASSWORD", "MEDRISK_DB_URL", "MEDRISK_DATA_DIR")
    }
    cmd = [
        sys.executable,
        "-m",
        "medrisk.platform_cli",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    out = open(log.with_suffix(".out"), "w")  # noqa: SIM115 - closed with the process
    err = open(log.with_suffix(".err"), "w")  # noqa: SIM115
    return subprocess.Popen(cmd, stdout=out, stderr=err, env=env)


def _wait(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("medrisk serve exited: " + log.with_suffix(".err").read_text())
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail("medrisk serve did not answer within 60 s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_serve_embedded_with_demo_data(tmp_path, corpus_dir):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve"
    proc = _start(tmp_path / "data", port, log)
    try:
        _wait(base, proc, log)
        out = log.with_suffix(".out").read_text()
        rows = {m[0]: (m[2], m[3]) for m in re.findall(r"^  (\S+)\s+(\S+)\s+(\S+)\s+(\S+)$", out, re.M)}
        assert {"admin", "hz.reviewer", "hosp.builder", "nj.builder"} <= set(rows)
        c = httpx.Client(base_url=base, timeout=30)

        def login(user: str) -> dict[str, str]:
            pw, secret = rows[user]
            body = {"username": user, "password": pw} | (
                {"totp_code": pyotp.TOTP(secret).now()} if secret != "-" else {}
            )
            r = c.post("/api/v1/auth/login", json=body)
            assert r.status_code == 200, r.text
            return {"Authorization": f"Bearer {r.json()['token']}"}

        assert c.get("/openapi.json").json()["info"]["title"] == "MedRisk platform"
        names = [o["name"] for o in c.get("/api/v1/orgs", headers=login("admin")).json()]
        assert "浙江省卫生健康委员会" in names and "杭州市卫生健康委员会" in names
        # the README flow: file, upload (scanned in a worker process), approve
        b = login("hosp.builder")
        f = c.post(
            "/api/v1/filings",
            headers=b,
            json={
                "name": "示范医院 App",
                "package": "de.rhab.helloworld",
                "app_type": "问诊挂号类",
                "current_version": "1.0",
                "privacy_policy_url": "https://example.org/privacy",
                "contacts": [{"name": "王五", "phone": "13800000000"}],
            },
        ).json()
        apk = (corpus_dir / "androguard-hello-world.apk").read_bytes()
        v = c.post(
            f"/api/v1/filings/{f['id']}/versions",
            headers={**b, "Content-Type": "application/octet-stream"},
            content=apk,
        )
        assert v.status_code == 201, v.text
        for _ in range(120):
            scans = c.get(f"/api/v1/versions/{v.json()['id']}/scans", headers=b).json()
            if scans and scans[0]["status"] in ("done", "failed"):
                break
            time.sleep(0.5)
        assert scans[0]["status"] == "done" and scans[0]["grade"] in ("A", "B", "C"), scans
        r = c.post(f"/api/v1/filings/{f['id']}/review", headers=login("hz.reviewer"), json={"decision": "approved"})
        assert r.status_code == 200, r.text
        assert c.get(f"/api/v1/filings/{f['id']}", headers=login("nj.builder")).status_code == 404
    finally:
        _stop(proc)
    logs = log.with_suffix(".err").read_text()
    for pw, secret in rows.values():  # printed once on the console, never in the logs
        assert pw not in logs and (secret == "-" or secret not in logs)
    keys = tmp_path / "data" / "keys"
    assert (keys / "sm2-signing-key.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert oct((keys / "keystore-password").stat().st_mode & 0o777) == "0o600"
    # a second start keeps the data and prints no credentials
    proc = _start(tmp_path / "data", port, log)
    try:
        _wait(base, proc, log)
        assert "shown ONCE" not in log.with_suffix(".out").read_text()
    finally:
        _stop(proc)
    r = subprocess.run(
        [sys.executable, "-m", "medrisk.platform_cli", "audit", "verify", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "audit log OK" in r.stdout, r.stdout + r.stderr
