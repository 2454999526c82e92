"""The issue's "done when", end to end through the API, the upload/scan pipeline, a real SMTP
server and the gate: C grade -> notice e-mail with the deadline -> deadline passes -> gate denies
and the regulator is told -> a fixed release grades B -> gate allows; channel 2.0 vs filed 1.3
suspends. Every step is visible in the API and the audit log."""

from __future__ import annotations

from tests.loop.conftest import approved_app, gate

ECSPRIDE_CERT = "597d556fd1188bfb3fdf875b4af8d3f682d5fa3e7a6f94d92cdad276858b7e7a"


def test_done_when(lw, smtp, corpus_dir):
    w, box = lw, smtp[0]
    tag = w.tag
    builder_mail, regulator_mail = f"zhang.{tag}@example.org", f"hz-reg.{tag}@example.org"
    r = w.client.post(
        "/api/v1/notify-endpoints",
        json={"kind": "email", "address": regulator_mail, "language": "both"},
        headers=w.h("hz_reg"),
    )
    assert r.status_code == 201, r.text
    contacts = [{"name": "张三", "phone": "+86 138 0000 0000", "email": builder_mail, "role": "负责人"}]
    f, code = approved_app(
        w, package="de.ecspride", signing_certificates=[ECSPRIDE_CERT], current_version="1.0", contacts=contacts
    )
    fid = f["id"]
    assert gate(w, code, "1.0.2")["allow"] is True

    # a new release is graded C -> rectification notice by e-mail with the deadline
    w.runner.grades["DroidBench-LogNoLeak.apk"] = "C"
    assert w.upload(fid, corpus_dir / "DroidBench-LogNoLeak.apk").status_code == 201
    d = w.client.get(f"/api/v1/filings/{fid}/disposition", headers=w.h("hosp_builder")).json()
    assert d["state"] == "rectifying" and d["last_grade"] == "C" and d["gate"] == "allow"
    assert d["deadline_at"].startswith(_due())  # 30 days for 问诊挂号类
    assert d["notice"]["findings"][0]["remediation"]["en"] == "Use SM4-GCM"
    assert "/versions" in d["notice"]["submit_fix"]
    mails = box.to(builder_mail)
    assert len(mails) == 1 and _due() in mails[0].get_content() and "整改" in mails[0]["Subject"]
    assert "Use SM4-GCM" in mails[0].get_content()
    assert box.to(regulator_mail) == []  # not a major risk yet

    # the deadline passes with no fix -> suspended: the gate denies, the regulator is told
    w.clock.advance(days=29)
    w.ctx.loop.tick()
    assert gate(w, code, "1.0.2")["allow"] is True
    w.clock.advance(days=2)
    w.ctx.loop.tick()
    g = gate(w, code, "1.0.2")
    assert g["allow"] is False and g["state"] == "suspended" and "circuit breaker" in g["reason"]
    assert len(box.to(regulator_mail)) == 1 and "熔断" in box.to(regulator_mail)[0]["Subject"]
    assert len(box.to(builder_mail)) == 2
    w.ctx.loop.tick()  # a second tick changes nothing
    assert len(box.to(builder_mail)) == 2

    # a fixed release grades B -> reinstated, the gate allows again
    w.runner.grades["DroidBench-DirectLeak1.apk"] = "B"
    assert w.upload(fid, corpus_dir / "DroidBench-DirectLeak1.apk").status_code == 201
    assert gate(w, code, "1.0.2")["allow"] is True
    d = w.client.get(f"/api/v1/filings/{fid}/disposition", headers=w.h("hz_reg")).json()
    assert [t["to_state"] for t in d["transitions"]] == ["rectifying", "suspended", "reinstated"]
    assert [t["rule"] for t in d["transitions"]] == [
        "rectification_notice",
        "deadline_suspension",
        "reinstated_after_fix",
    ]
    assert d["transitions"][0]["evidence"]["scan_id"] and d["transitions"][1]["actor"] == "system"

    # channel version 2.0 of an app filed as 1.3 -> suspended
    g2, code2 = approved_app(w, current_version="1.3")
    ev = {
        "kind": "version_seen",
        "event_id": f"chan-{tag}-1",
        "filing_id": g2["id"],
        "version": "2.0",
        "channel": "应用宝",
    }
    r = w.client.post("/api/v1/loop/events", json=ev, headers=w.h("hz_reg"))
    assert r.status_code == 200 and r.json()["state"] == "suspended", r.text
    again = w.client.post("/api/v1/loop/events", json=ev, headers=w.h("hz_reg")).json()
    assert again["duplicate"] is True
    assert gate(w, code2, "1.3.0")["allow"] is False

    # the audit log holds each step
    audit = w.client.get("/api/v1/audit", params={"action": "disposition.transition"}, headers=w.h("auditor")).json()
    mine = [e for e in audit if e["target"] in (f"filing:{fid}", f"filing:{g2['id']}")]
    assert sorted(e["details"]["to"] for e in mine) == ["rectifying", "reinstated", "suspended", "suspended"]
    assert w.client.get("/api/v1/audit/verify", headers=w.h("auditor")).json()["ok"] is True
    notes = w.client.get("/api/v1/notifications", params={"filing_id": fid}, headers=w.h("hz_reg")).json()
    assert notes and all(n["status"] == "sent" and n["delivery"][0]["ok"] for n in notes)


def _due() -> str:
    from datetime import timedelta

    from tests.loop.conftest import START

    return (START + timedelta(days=30)).date().isoformat()
