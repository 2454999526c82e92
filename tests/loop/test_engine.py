"""The disposition engine: the white paper's rules as data, idempotency, manual actions with
deadlines and acceptances on an injected clock, and state that survives a restart."""

from __future__ import annotations

from datetime import timedelta

from medrisk.loop.policy import load_policy
from medrisk.platform.versioning import major_drift
from tests.loop.conftest import START, approved_app, gate, make_loop_platform


def _state(w, fid):
    return w.client.get(f"/api/v1/filings/{fid}/disposition", headers=w.h("hz_reg")).json()


def _act(w, fid, who="hz_reg", **body):
    return w.client.post(f"/api/v1/filings/{fid}/disposition/actions", json=body, headers=w.h(who))


def test_major_drift_and_policy_data():
    assert major_drift("2.0", "1.3") and major_drift("1.4.0", "1.3.9") and not major_drift("1.3.7", "1.3")
    assert not major_drift("garbage", "1.3")
    p = load_policy()
    assert p.deadline_days("问诊挂号类") == 30 and p.deadline_days("unknown tier") == 30
    assert "suspended" not in p.gate_allows and "rectifying" in p.gate_allows


def test_grades_drive_the_rules_and_events_are_idempotent(lw):
    w = lw
    f, code = approved_app(w)
    fid, svc = f["id"], w.ctx.loop
    assert _state(w, fid)["state"] == "filed"
    assert svc.emit("scan_graded", fid, "e-a", {"grade": "A"}).state == "monitoring"
    out = svc.emit("scan_graded", fid, "e-c", {"grade": "C", "scan_id": 99})
    assert out.state == "rectifying" and not out.duplicate
    again = svc.emit("scan_graded", fid, "e-c", {"grade": "C", "scan_id": 99})
    assert again.duplicate and again.transition_id is None
    assert len(_state(w, fid)["transitions"]) == 2
    # back to B within the deadline -> monitoring, deadline cleared
    w.clock.advance(days=10)
    assert svc.emit("scan_graded", fid, "e-b", {"grade": "B"}).state == "monitoring"
    d = _state(w, fid)
    assert d["deadline_at"] is None and d["transitions"][-1]["rule"] == "rectified"
    # a pending (not approved) filing is not in the loop
    pending = w.file_app()
    assert svc.emit("scan_graded", pending["id"], "e-p", {"grade": "C"}).state is None


def test_counterfeit_warns_builder_and_regulator(lw, receiver):
    w = lw
    f, code = approved_app(w)
    r = w.client.post(
        "/api/v1/notify-endpoints", json={"kind": "webhook", "address": receiver.url}, headers=w.h("hz_reg")
    )
    receiver.secret = r.json()["secret"].encode()
    receiver.clock = w.clock
    ev = {
        "kind": "counterfeit_found",
        "event_id": "cf-1",
        "filing_id": f["id"],
        "channel": "某应用市场",
        "detail": "com.fake.app 使用相同图标",
    }
    assert w.client.post("/api/v1/loop/events", json=ev, headers=w.h("hz_reg")).json()["state"] == "warned"
    assert gate(w, code)["allow"] is True  # a warning does not cut the app off
    assert [x["template"] for x in receiver.received] == ["counterfeit"]
    assert receiver.received[0]["audience"] == "regulator" and receiver.bad_signatures == 0


def test_manual_actions_extend_accept_expire(lw):
    w = lw
    f, code = approved_app(w)
    fid, svc = f["id"], w.ctx.loop
    assert _act(w, fid, who="hosp_builder", action="issue_notice").status_code == 403
    r = _act(w, fid, action="issue_notice", days=10, reason="人工抽检发现问题")
    assert r.status_code == 200 and r.json()["state"] == "rectifying"
    assert _act(w, fid, action="extend_deadline", days=5).status_code == 422  # a reason is required
    r = _act(w, fid, action="extend_deadline", days=5, reason="厂商申请延期")
    assert r.status_code == 200
    assert _state(w, fid)["deadline_at"].startswith((START + timedelta(days=15)).date().isoformat())
    w.clock.advance(days=12)
    svc.tick()
    assert _state(w, fid)["state"] == "rectifying"
    # the regulator accepts the risk for 5 days; it reopens by itself when that expires
    until = (w.clock.now() + timedelta(days=5)).isoformat()
    r = _act(w, fid, action="accept_risk", until=until, reason="临床必需，补偿措施已落实")
    assert r.status_code == 200 and r.json()["state"] == "monitoring"
    assert _act(w, fid, action="reinstate", reason="x").status_code == 409  # not suspended
    w.clock.advance(days=6)
    svc.tick()
    d = _state(w, fid)
    assert d["state"] == "rectifying" and d["accepted_until"] is None
    assert d["transitions"][-1]["rule"] == "acceptance_expired"
    # suspend and reinstate by hand
    assert _act(w, fid, action="suspend", reason="重大漏洞").json()["state"] == "suspended"
    assert gate(w, code)["allow"] is False
    assert svc.emit("scan_graded", fid, "e-b2", {"grade": "B"}).state == "suspended"  # a manual suspension stays
    assert _act(w, fid, action="reinstate", reason="已修复并复核").json()["state"] == "reinstated"
    assert gate(w, code)["allow"] is True
    assert _act(w, fid, action="revoke", reason="停止运营").json()["state"] == "revoked"
    assert gate(w, code)["allow"] is False


def test_state_and_deadlines_survive_a_restart(lw, smtp):
    w = lw
    f, _ = approved_app(w)
    fid = f["id"]
    w.ctx.loop.emit("scan_graded", fid, "e-c", {"grade": "C"})
    w.ctx.close()
    from medrisk.loop.clock import FakeClock
    from tests.loop.conftest import StubRunner

    clock = FakeClock(START + timedelta(days=31))
    ctx2 = make_loop_platform(w.url, w.tmp, StubRunner(), smtp[1], clock)
    try:
        ctx2.loop.tick()
        from medrisk.store.models import Disposition

        with ctx2.db.session() as db:
            assert db.get(Disposition, fid).state == "suspended"
    finally:
        ctx2.close()
