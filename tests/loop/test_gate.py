"""The circuit-breaker gate: online decisions from memory, the SM2-signed status list, the
offline client and `medrisk gate check` in both modes."""

from __future__ import annotations

import json
import threading
import time

import pytest
import uvicorn

from medrisk import platform_cli
from medrisk.loop.gate_client import GateClient, StatusListError
from medrisk.platform.keys import public_key_path
from medrisk.web.app import create_app
from tests.loop.conftest import approved_app, free_port_for_tests, gate


def _suspend(w, fid):
    r = w.client.post(
        f"/api/v1/filings/{fid}/disposition/actions",
        json={"action": "suspend", "reason": "高危"},
        headers=w.h("hz_reg"),
    )
    assert r.status_code == 200, r.text


def test_gate_decisions_and_invalid_input(lw):
    w = lw
    f, code = approved_app(w, current_version="2.3.1")
    assert gate(w, code, "2.3.9") == {
        "allow": True,
        "decision": "allow",
        "reason": "authorised; the app is filed",
        "filing_id": f["id"],
        "state": "filed",
    }
    assert "outside the approved range" in gate(w, code, "2.4.0")["reason"]
    assert w.client.post("/api/v1/gate", json={"code": code, "version": "2.3.0"}).json()["allow"] is True
    tampered = code[:-6] + ("AAAAAA" if not code.endswith("AAAAAA") else "BBBBBB")
    assert gate(w, tampered)["allow"] is False
    assert gate(w, "x.y.z")["allow"] is False and gate(w, "nonsense")["allow"] is False
    _suspend(w, f["id"])
    t0 = time.perf_counter()
    assert gate(w, code)["allow"] is False  # in effect at once (cache invalidated on the change)
    assert time.perf_counter() - t0 < 1
    # a code revoked through the platform: picked up by the refresh
    cid = w.client.get(f"/api/v1/filings/{f['id']}/authcode", headers=w.h("hz_reg")).json()["id"]
    g2, code2 = approved_app(w)
    cid2 = w.client.get(f"/api/v1/filings/{g2['id']}/authcode", headers=w.h("hz_reg")).json()["id"]
    assert cid and gate(w, code2)["allow"] is True
    w.ctx.loop.gate.refresh()
    assert (
        w.client.post(f"/api/v1/authcodes/{cid2}/revoke", json={"reason": "泄露"}, headers=w.h("hz_reg")).status_code
        == 200
    )
    w.ctx.loop.gate.refresh()
    assert "revoked" in gate(w, code2)["reason"]


def test_change_in_another_process_reaches_the_gate_by_refresh(lw, smtp):
    w = lw
    f, code = approved_app(w)
    assert gate(w, code)["allow"] is True
    w.ctx.loop.gate.refresh()
    from tests.loop.conftest import StubRunner, make_loop_platform

    other = make_loop_platform(w.url, w.tmp, StubRunner(), smtp[1], w.clock)  # e.g. a second worker
    try:
        other.loop.emit("version_seen", f["id"], "drift-1", {"version": "9.0"})
    finally:
        other.close()
    assert gate(w, code)["allow"] is True  # this process has not looked yet
    w.ctx.loop.gate.refresh()  # the scheduler does this every 0.5 s
    assert gate(w, code)["allow"] is False


def test_signed_status_list_offline_client_and_cli(lw, tmp_path, capsys):
    w = lw
    f1, code1 = approved_app(w, current_version="1.3")
    f2, code2 = approved_app(w, current_version="1.3")
    _suspend(w, f2["id"])
    doc = w.client.get("/.well-known/medrisk/gate-status.json").json()
    assert [e["fid"] for e in doc["status_list"]["filings"]] == [f2["id"]]
    pem = w.client.get("/.well-known/medrisk/platform-key.pem").content
    client = GateClient.from_pem(pem)
    listed = client.load_status_list(json.dumps(doc))
    assert listed["next_update"] > listed["issued_at"]
    now = w.clock.now().timestamp()
    assert client.check(code1, "1.3.2", now=now).allow is True
    d = client.check(code2, "1.3.2", now=now)
    assert d.allow is False and "suspended" in d.reason
    assert client.check(code1, "2.0", now=now).allow is False
    assert "stale" in client.check(code1, "1.3.2", now=listed["next_update"] + 1).reason
    bad = dict(doc, payload=doc["payload"][:-4] + "AAAA")
    with pytest.raises(StatusListError):
        GateClient.from_pem(pem).load_status_list(bad)
    # the CLI, offline
    lst = tmp_path / "status.json"
    lst.write_text(json.dumps(doc))
    keyfile = tmp_path / "key.pem"
    keyfile.write_bytes(pem)
    assert public_key_path(w.tmp / "keys").is_file()
    base = ["gate", "check", "--public-key", str(keyfile), "--status-list", str(lst)]
    assert platform_cli.main([*base[:2], code1, *base[2:], "--version", "1.3.0"]) == 0
    assert platform_cli.main([*base[:2], code2, *base[2:], "--version", "1.3.0"]) == 1
    out = capsys.readouterr().out
    assert "ALLOW" in out and "DENY" in out


def test_cli_online_against_a_running_service(lw, capsys):
    w = lw
    if w.ctx.info.get("backend") == "postgresql":
        pass
    f, code = approved_app(w)
    port = free_port_for_tests()
    server = uvicorn.Server(uvicorn.Config(create_app(w.ctx), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        assert platform_cli.main(["gate", "check", code, "--version", "1.0.3", "--online", url, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["allow"] is True
        _suspend(w, f["id"])
        assert platform_cli.main(["gate", "check", code, "--online", url]) == 1
        assert "DENY" in capsys.readouterr().out
        c = GateClient(GateClient.from_pem(w.ctx.keys.public_pem()).public_key, url)
        assert c.fetch_status_list()["filings"][0]["fid"] == f["id"]
    finally:
        server.should_exit = True
        t.join(10)
