"""The issue's scenarios on real F-Droid repositories over HTTP, both databases:
a tampered copy → critical verdict and the builder notified; a look-alike flagged with its
evidence; a 2.0 for an app filed at 1.3 → suspended; a channel down three crawls → alert,
nothing lost, resumes; the same listing seen again → one event."""

from __future__ import annotations

from sqlalchemy import func, select

from medrisk import platform_cli
from medrisk.store.models import Alert, ChannelListing, ChannelVerdict, Disposition, LoopEvent
from tests.channels.conftest import LOOKALIKE_PACKAGE, PACKAGE, add_channel, file_dms


def _crawl(w, channel_id: int) -> dict:
    rep = w.ctx.channels.crawl(channel_id)
    return rep.to_dict()


def _state(w, filing_id: int) -> str:
    with w.ctx.db.session() as db:
        d = db.get(Disposition, filing_id)
        return d.state if d else "none"


def test_tampered_and_lookalike_reach_the_builder(cw, apks, repos):
    w = cw
    f = file_dms(w, apks)
    official = add_channel(w, "official", repos.url(repos.official), repos.official.fingerprint)
    third = add_channel(w, "thirdparty", repos.url(repos.thirdparty))  # fingerprint pinned on first crawl

    rep = _crawl(w, official["id"])
    assert rep["status"] == "ok", rep
    assert rep["counts"]["new"] == 1 and rep["counts"]["scanned"] == 1
    assert rep["counts"]["verdict_tampered"] == 0 and rep["counts"]["verdict_drift"] == 0
    assert _state(w, f["id"]) in ("none", "filed")  # no disposition change

    rep = _crawl(w, third["id"])
    assert rep["status"] == "ok", rep
    assert rep["counts"]["new"] == 3
    assert rep["counts"]["verdict_tampered"] == 1
    assert rep["counts"]["verdict_lookalike"] == 1
    assert rep["counts"]["verdict_unfiled"] == 1  # the blood-donation app: medical, not filed

    verdicts = w.client.get("/api/v1/channel-verdicts", headers=w.h("hz_reg")).json()
    tampered = [v for v in verdicts if v["kind"] == "tampered"]
    assert len(tampered) == 1 and tampered[0]["severity"] == "critical"
    assert tampered[0]["evidence"]["listed_signers"] == [apks.attacker_cert]
    assert tampered[0]["evidence"]["filed_signers"] == [apks.builder_cert]
    look = [v for v in verdicts if v["kind"] == "lookalike"][0]
    assert look["package"] == LOOKALIKE_PACKAGE and look["filing_id"] == f["id"]
    fired = {r["by"]: r for r in look["evidence"]["fired"]}
    assert fired["name"]["score"] == 1.0 and fired["name"]["threshold"] == 0.85
    assert fired["icon"]["distance"] <= fired["icon"]["threshold"]  # the same launcher icon
    unfiled = [v for v in verdicts if v["kind"] == "unfiled"][0]
    assert unfiled["filing_id"] is None and unfiled["package"] == "fr.mobdev.blooddonation"

    # the builder sees the verdicts about its app; another province's regulator does not
    mine = w.client.get("/api/v1/channel-verdicts", headers=w.h("hosp_builder")).json()
    assert {v["kind"] for v in mine} == {"tampered", "lookalike"}
    assert w.client.get("/api/v1/channel-verdicts", headers=w.h("js_reg")).json() == []

    # disposition and notifications: the closed loop warned the builder, by e-mail, in both languages
    assert _state(w, f["id"]) == "warned"
    mails = w.mailbox.to(f"dms-{w.tag}@example.org")
    subjects = " | ".join(str(m["Subject"]) for m in mails)
    assert "篡改" in subjects and "仿冒" in subjects, subjects

    # scan on discovery: the inventory shows the grade of what patients download
    listings = w.client.get(f"/api/v1/channels/{third['id']}/listings", headers=w.h("hz_reg")).json()
    assert all(item["scan_grade"] in ("A", "B", "C") for item in listings), listings
    assert {item["download_status"] for item in listings} == {"done"}

    # per-app view: where it is published, versions per channel, look-alikes with evidence
    view = w.client.get(f"/api/v1/filings/{f['id']}/channels", headers=w.h("hosp_builder")).json()
    assert set(view["channels"]) == {official["name"], third["name"]}
    assert view["channels"][official["name"]]["versions"][0]["version_name"] == "1.0"
    assert len(view["tampered"]) == 1 and len(view["lookalikes"]) == 1

    # the same listings seen again: nothing new (HTTP 304), and after a forced full re-read, one event each
    with w.ctx.db.session() as db:
        events = db.scalar(select(func.count(LoopEvent.id)))
        n_verdicts = db.scalar(select(func.count(ChannelVerdict.id)))
    assert _crawl(w, third["id"])["status"] == "unchanged"
    from medrisk.store.models import Channel

    with w.ctx.db.session() as db:
        db.get(Channel, third["id"]).state = {}  # forget ETag and timestamp: the whole index is read again
    rep = _crawl(w, third["id"])
    assert rep["status"] == "ok" and rep["counts"]["new"] == 0
    with w.ctx.db.session() as db:
        assert db.scalar(select(func.count(LoopEvent.id))) == events
        assert db.scalar(select(func.count(ChannelVerdict.id))) == n_verdicts
    assert len(w.mailbox.to(f"dms-{w.tag}@example.org")) == len(mails)

    # channel health in the API
    ch = w.client.get(f"/api/v1/channels/{third['id']}", headers=w.h("hz_reg")).json()
    assert ch["health"] == "ok" and ch["counts"]["listings"] == 3 and ch["fingerprint"] == repos.thirdparty.fingerprint
    assert ch["crawls"][0]["status"] == "ok"

    # a regulator dismisses the look-alike with a reason (a builder may not; another province cannot see it)
    url = f"/api/v1/channel-verdicts/{look['id']}/dismiss"
    assert w.client.post(url, json={"reason": "licensed partner"}, headers=w.h("hosp_builder")).status_code == 403
    assert w.client.post(url, json={"reason": "licensed partner"}, headers=w.h("js_reg")).status_code == 404
    assert w.client.post(url, json={"reason": ""}, headers=w.h("hz_reg")).status_code == 422
    r = w.client.post(url, json={"reason": "licensed partner app"}, headers=w.h("hz_reg"))
    assert r.status_code == 200 and r.json()["status"] == "dismissed", r.text
    assert w.client.post(url, json={"reason": "again"}, headers=w.h("hz_reg")).status_code == 409
    left = w.client.get("/api/v1/channel-verdicts?status=open", headers=w.h("hz_reg")).json()
    assert look["id"] not in {v["id"] for v in left} and tampered[0]["id"] in {v["id"] for v in left}
    gone = w.client.get("/api/v1/channel-verdicts?status=dismissed", headers=w.h("hz_reg")).json()
    assert [v["dismissed"]["reason"] for v in gone] == ["licensed partner app"]
    from medrisk.store.models import AuditEntry

    with w.ctx.db.session() as db:
        entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "channel.verdict.dismiss")).one()
        assert entry.target == f"channel-verdict:{look['id']}"
        db.get(Channel, third["id"]).state = {}
    assert _crawl(w, third["id"])["status"] == "ok"  # seen again: still dismissed, no new event
    with w.ctx.db.session() as db:
        assert db.get(ChannelVerdict, look["id"]).status == "dismissed"
        assert db.scalar(select(func.count(LoopEvent.id))) == events


def test_major_version_in_a_channel_suspends(cw, apks, repos):
    w = cw
    f = file_dms(w, apks, version="1.3")
    ch = add_channel(w, "drift", repos.url(repos.drift), repos.drift.fingerprint)
    rep = _crawl(w, ch["id"])
    assert rep["counts"]["verdict_drift"] == 1, rep
    v = w.client.get("/api/v1/channel-verdicts?kind=drift", headers=w.h("hz_reg")).json()[0]
    assert v["evidence"]["seen"] == "2.0" and v["evidence"]["class"] == "major" and v["severity"] == "high"
    assert _state(w, f["id"]) == "suspended"
    code = w.client.get(f"/api/v1/filings/{f['id']}/authcode", headers=w.h("hosp_builder")).json()["code"]
    assert w.client.get("/api/v1/gate", params={"code": code, "version": "1.3"}).json()["allow"] is False


def test_channel_down_three_crawls_alerts_then_resumes(cw, apks, repos):
    w = cw
    file_dms(w, apks)
    ch = add_channel(w, "flaky", repos.url(repos.official), repos.official.fingerprint, retries=0)
    assert _crawl(w, ch["id"])["status"] == "ok"
    with w.ctx.db.session() as db:
        db.get(__import__("medrisk.store.models", fromlist=["Channel"]).Channel, ch["id"]).state = {}
    repos.server.up = False
    try:
        results = [_crawl(w, ch["id"]) for _ in range(3)]
    finally:
        repos.server.up = True
    assert [r["status"] for r in results] == ["failed"] * 3
    assert "HTTP 503" in results[0]["error"]
    view = w.client.get(f"/api/v1/channels/{ch['id']}", headers=w.h("hz_reg")).json()
    assert view["health"] == "down" and view["consecutive_failures"] == 3
    assert view["counts"]["listings"] == 1  # the last good listings are kept
    with w.ctx.db.session() as db:
        alerts = list(db.scalars(select(Alert).where(Alert.kind == "channel_down")))
        assert len(alerts) == 1 and alerts[0].details["channel_id"] == ch["id"]
        assert db.scalar(select(func.count(ChannelListing.id)).where(ChannelListing.present.is_(True))) == 1
    rep = _crawl(w, ch["id"])
    assert rep["status"] == "ok", rep
    view = w.client.get(f"/api/v1/channels/{ch['id']}", headers=w.h("hz_reg")).json()
    assert view["health"] == "ok" and view["consecutive_failures"] == 0 and view["counts"]["listings"] == 1


def test_cli_add_crawl_and_show(cw, apks, repos, capsys):
    """What a new user types: medrisk channels add / crawl / verdicts on the platform's database."""
    w = cw
    f = file_dms(w, apks)
    args = ["--db", w.ctx.db.url if hasattr(w.ctx.db, "url") else str(w.ctx.db.engine.url.render_as_string(False))]
    args += ["--data-dir", str(w.ctx.data_dir)]
    name = f"cli-{w.tag}"
    url = repos.url(repos.thirdparty)
    assert (
        platform_cli_main(["channels", "add", "--name", name, "--url", url, "--set", "backoff_seconds=0"] + args) == 0
    )
    assert "channel" in capsys.readouterr().out
    assert platform_cli_main(["channels", "crawl", name] + args) == 0
    out = capsys.readouterr().out
    assert "verdict_tampered=1" in out and "verdict_lookalike=1" in out, out
    assert platform_cli_main(["channels", "verdicts", "--kind-filter", "tampered"] + args) == 0
    assert PACKAGE in capsys.readouterr().out
    assert platform_cli_main(["channels", "app", "--filing", str(f["id"])] + args) == 0
    assert name in capsys.readouterr().out
    assert platform_cli_main(["channels", "add", "--name", name, "--url", url] + args) == 2  # duplicate name
    assert "exists" in capsys.readouterr().err
    assert platform_cli_main(["channels", "add", "--name", "x", "--kind", "nope", "--url", url] + args) == 2
    assert "unknown channel kind" in capsys.readouterr().err


def platform_cli_main(argv: list[str]) -> int:
    from medrisk.cli import main

    return main(argv)


assert platform_cli  # the CLI's module is importable on its own
