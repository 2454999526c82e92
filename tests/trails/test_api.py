"""Trails over the API, as a new user would: an institution's token sends a day of generated trails,
the regulator's view lists the violations with their evidence, the institution sees its own, others
see nothing; duplicates count once; bad input is refused naming the field."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from medrisk.crypto import SM2PrivateKey
from medrisk.store.models import Disposition, Notification, TrailEvent, TrailIdentity
from medrisk.trails import ledger
from medrisk.trails.generator import INJECT, Institution, chunks, generate
from medrisk.trails.service import service_for

INST = Institution.make("api")
DAY = generate(INST, 240, {rid: 0.025 for rid in INJECT}, seed=11)


@pytest.fixture(scope="module")
def day(tw):
    """The day's trails sent in signed batches of 500, then the windowed sweep."""
    s = tw.sender
    results = []
    for batch in chunks(DAY.events, 500):
        r = tw.client.post("/api/v1/trails/batches", json=s.body(batch), headers=s.headers)
        assert r.status_code == 200, r.text
        results.append(r.json())
    swept = service_for(tw.ctx).sweep(now=DAY.end + timedelta(hours=48))
    return results, swept


def _all_violations(w, who, **params):
    r = w.client.get("/api/v1/trails/violations", params={"limit": 1000, **params}, headers=w.h(who))
    assert r.status_code == 200, r.text
    return r.json()


def test_day_ingested_and_every_injected_violation_found(tw, day):
    results, swept = day
    assert sum(r["accepted"] for r in results) == len(DAY.events)
    assert results[-1]["last_seq"] == len(DAY.events)
    assert swept > 0  # RX-15 and EMR-02 are windowed
    page = _all_violations(tw, "hz_reg")
    found: dict[str, set[str]] = {}
    for v in page["items"]:
        found.setdefault(v["case_key"], set()).add(v["rule_id"])
    assert page["total"] == len(page["items"]) >= len(DAY.injected)
    assert {k: v for k, v in DAY.injected.items() if not v <= found.get(k, set())} == {}
    assert {k for k in DAY.clean if k in found} == set()


def test_regulator_sees_evidence_with_the_full_trail(tw, day):
    page = _all_violations(tw, "hz_reg", rule="RX-03")
    assert page["total"] >= 1
    v = page["items"][0]
    r = tw.client.get(f"/api/v1/trails/violations/{v['id']}", headers=tw.h("hz_reg"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rule"]["id"] == "RX-03" and body["rule"]["regulations"][0]["confidence"]
    types = [e["type"] for e in body["evidence"]]
    assert "prescription.dispensed" in types and "prescription.reviewed" in types and "consultation.started" in types
    assert types.index("prescription.dispensed") < types.index("prescription.reviewed")  # the evidence of RX-03
    seqs = [e["seq"] for e in body["evidence"]]
    assert seqs == sorted(seqs)
    # the regulator sees the staff's licence numbers, never the patient's id (only its pseudonym)
    licences = {e["payload"]["actor"].get("licence") for e in body["evidence"]} - {None}
    assert licences and licences <= {s.licence for s in INST.roster()}
    assert all("id" not in (e["payload"].get("patient") or {}) for e in body["evidence"])
    assert all((e["payload"].get("patient") or {}).get("ref", "p_").startswith("p_") for e in body["evidence"])
    # the receipts covering the evidence verify with the platform's public key alone
    pub = tw.ctx.keys.public_key
    assert body["receipts"] and all(ledger.verify_receipt(pub, doc) for doc in body["receipts"])
    audit = tw.client.get("/api/v1/audit", params={"action": "trail.evidence_viewed"}, headers=tw.h("auditor"))
    assert any(e["target"] == f"trail_violation:{v['id']}" for e in audit.json())


def test_visibility_institution_own_other_region_nothing(tw, day):
    own = _all_violations(tw, "corp_admin")
    assert own["total"] == _all_violations(tw, "hz_reg")["total"] > 0
    assert _all_violations(tw, "js_reg")["total"] == 0  # another province
    assert _all_violations(tw, "hosp_admin")["total"] == 0  # another institution
    vid = own["items"][0]["id"]
    assert tw.client.get(f"/api/v1/trails/violations/{vid}", headers=tw.h("js_reg")).status_code == 404
    r = tw.client.get("/api/v1/trails/violations", params={"org_id": tw.sender.org_id}, headers=tw.h("hosp_admin"))
    assert r.status_code == 404
    # the sender's token (trails:read) sees its own institution's violations
    r = tw.client.get("/api/v1/trails/violations", headers=tw.sender.headers)
    assert r.status_code == 200 and r.json()["total"] == own["total"]


def test_indicators(tw, day):
    r = tw.client.get(
        "/api/v1/trails/indicators",
        params={"since": "2026-11-30T00:00:00Z", "until": "2026-12-10T00:00:00Z"},
        headers=tw.h("hz_reg"),
    )
    assert r.status_code == 200, r.text
    (ind,) = [x for x in r.json() if x["org_id"] == tw.sender.org_id]
    assert ind["prescriptions"] == 240 - sum(1 for v in DAY.injected.values() if "RX-12" in v) * 0 - 0
    never_reviewed = sum(1 for v in DAY.injected.values() if "RX-15" in v)
    assert ind["reviewed"] == 240 - never_reviewed
    assert ind["review_rate"] == round((240 - never_reviewed) / 240, 4)
    assert 15 <= ind["median_review_minutes"] <= 25  # the standard flow reviews after 20 minutes
    assert ind["consultations"] == 240
    late_or_missing = sum(1 for v in DAY.injected.values() if "EMR-02" in v)
    assert ind["records_completeness"] == 1.0 or late_or_missing > 0
    assert ind["violations"] == sum(ind["violations_by_rule"].values()) > 0
    assert ind["violations_by_rule"].get("RX-15") == never_reviewed


def test_violations_reach_the_closed_loop(tw, day):
    with tw.ctx.db.session() as db:
        d = db.get(Disposition, tw.sender.filing_id)
        assert d is not None and d.state == "warned" and d.cause.startswith("trail_violation")
        notes = db.scalars(select(Notification).where(Notification.template == "trail_violation")).all()
        assert notes and "业务留痕违规" in notes[0].subject
    r = tw.client.get(f"/api/v1/filings/{tw.sender.filing_id}/disposition", headers=tw.h("corp_admin"))
    assert r.json()["state"] == "warned"
    assert any(t["rule"].startswith("trail_violation") for t in r.json()["transitions"])


def test_minimum_necessary_at_rest(tw, day):
    """No licence number or patient id in the ledger rows; identities only as SM4-GCM ciphertexts."""
    lic = INST.doctors[0].licence
    with tw.ctx.db.session() as db:
        raw = " ".join(
            str(x)
            for x in db.execute(
                text("SELECT payload FROM trail_events WHERE org_id = :o"), {"o": tw.sender.org_id}
            ).scalars()
        )
        # booleans, not `x not in raw`: pytest's diff of a multi-megabyte string takes minutes
        has_licence, has_patient = lic in raw, "PT-api-" in raw
        assert not has_licence, f"licence {lic} stored in clear: {raw[max(0, raw.find(lic) - 200) :][:400]}"
        assert not has_patient and '"ref"' in raw.replace("'", '"')
        enc = db.scalars(select(TrailIdentity.value_enc).where(TrailIdentity.org_id == tw.sender.org_id)).all()
        assert enc and all(v.startswith("sm4gcm:v1:") for v in enc) and lic not in " ".join(enc)
        assert db.scalar(select(TrailEvent.payload).limit(1))["actor"]["ref"].startswith("s_")


def test_duplicates_accepted_once_and_conflicts_refused(tw, day):
    s = tw.sender
    first = DAY.events[:50]
    r = tw.client.post("/api/v1/trails/batches", json=s.body(first), headers=s.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 0 and body["duplicates"] == 50 and body["first_seq"] is None
    changed = [dict(first[-1], at="2026-11-30T10:00:00Z")]
    r = tw.client.post(
        "/api/v1/trails/events",
        json={**s.body(changed), "event": changed[0]} | {"events": None}
        and {"key_id": s.key_id, "signature": s.body(changed)["signature"], "event": changed[0]},
        headers=s.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["status"] == "conflict" and r.json()["accepted"] == 0


def test_single_event_and_its_receipt(tw, day):
    s = tw.sender
    ev = {
        "schema_version": 1,
        "event_id": "api-single-1",
        "type": "staff.registered",
        "at": "2026-12-02T08:00:00+08:00",
        "actor": {"role": "pharmacist", "licence": "2209999000001"},
        "data": {"role": "pharmacist", "practice_years": 5, "real_name_verified": True},
    }
    sig = ledger.sign_batch(s.key, [ev])
    r = tw.client.post(
        "/api/v1/trails/events", json={"key_id": s.key_id, "signature": sig, "event": ev}, headers=s.headers
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 1 and out["first_seq"] == out["last_seq"]
    assert ledger.verify_receipt(tw.ctx.keys.public_key, out["receipt"])
    rec = tw.client.get(f"/api/v1/trails/batches/{out['batch_id']}/receipt", headers=s.headers).json()
    assert rec == out["receipt"]
    latest = tw.client.get("/api/v1/trails/receipts/latest", headers=s.headers).json()
    assert latest["receipt"]["last_seq"] == out["last_seq"]
    forged = dict(out["receipt"], receipt=dict(out["receipt"]["receipt"], last_seq=1))
    assert not ledger.verify_receipt(tw.ctx.keys.public_key, forged)


def _event(i=0, **over):
    ev = {
        "schema_version": 1,
        "event_id": f"api-bad-{i}",
        "type": "consultation.ended",
        "at": "2026-12-02T09:00:00Z",
        "consultation_id": "C-api-x",
        "actor": {"role": "doctor", "licence": INST.doctors[0].licence},
    }
    ev.update(over)
    return ev


def test_refusals_name_the_problem(tw):
    s = tw.sender
    events = [_event(0), _event(1), _event(2), _event(3, at="2026-12-02 09:00")]
    r = tw.client.post("/api/v1/trails/batches", json=s.body(events), headers=s.headers)
    assert r.status_code == 422 and r.json()["field"] == "events.3.at" and "time zone" in r.json()["message"]
    events = [_event(0, schema_version=2)]
    r = tw.client.post("/api/v1/trails/batches", json=s.body(events), headers=s.headers)
    assert r.status_code == 422 and "unknown schema version 2" in r.json()["message"]
    # a signature by another key, or over other events
    other = SM2PrivateKey.generate()
    good = [_event(7)]
    bad_sig = base64.b64encode(other.sign(ledger.batch_statement([ledger.event_digest(good[0])]))).decode()
    r = tw.client.post("/api/v1/trails/batches", json={**s.body(good), "signature": bad_sig}, headers=s.headers)
    assert r.status_code == 422 and r.json()["code"] == "bad_signature" and r.json()["field"] == "signature"
    r = tw.client.post("/api/v1/trails/batches", json={**s.body([_event(8)]), "events": good}, headers=s.headers)
    assert r.status_code == 422 and r.json()["code"] == "bad_signature"
    # an unknown key id; a user session instead of a token; another institution's token
    r = tw.client.post("/api/v1/trails/batches", json={**s.body(good), "key_id": "ab" * 32}, headers=s.headers)
    assert r.status_code == 403 and r.json()["code"] == "unknown_key"
    r = tw.client.post("/api/v1/trails/batches", json=s.body(good), headers=tw.h("corp_admin"))
    assert r.status_code == 403 and "trails:write" in r.json()["message"]
    tok = tw.client.post("/api/v1/trails/tokens", json={"name": "hosp"}, headers=tw.h("hosp_admin")).json()["token"]
    r = tw.client.post("/api/v1/trails/batches", json=s.body(good), headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 403 and r.json()["code"] == "unknown_key"
    # only institution administrators register senders and make ingestion tokens
    for who in ("corp_builder", "hz_reg"):
        r = tw.client.post("/api/v1/trails/tokens", json={"name": "x"}, headers=tw.h(who))
        assert r.status_code == 403
    r = tw.client.post(
        "/api/v1/trails/sources",
        json={"name": "x", "public_key_pem": "-----BEGIN PUBLIC KEY-----\nAAAA" + "A" * 60},
        headers=tw.h("corp_admin"),
    )
    assert r.status_code == 422 and r.json()["field"] == "public_key_pem"
    # a token with trails:write only cannot read anything else of the platform
    r = tw.client.get("/api/v1/filings", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 403


def test_revoked_sender_refused(tw):
    from tests.trails.conftest import make_sender

    extra = make_sender(tw, filing=False)
    r = tw.client.post(f"/api/v1/trails/sources/{extra.source_id}/revoke", headers=tw.h("corp_admin"))
    assert r.status_code == 200 and r.json()["revoked_at"]
    r = tw.client.post("/api/v1/trails/batches", json=extra.body([_event(20)]), headers=extra.headers)
    assert r.status_code == 403 and r.json()["code"] == "key_revoked"


def test_verify_endpoint_and_rules(tw, day):
    r = tw.client.get("/api/v1/trails/verify", headers=tw.h("auditor"))
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["events"] >= len(DAY.events)
    assert tw.client.get("/api/v1/trails/verify", headers=tw.h("corp_builder")).status_code == 403
    rules = tw.client.get("/api/v1/trails/rules", headers=tw.h("corp_builder")).json()
    assert len(rules) == 18 and all(r["title"]["zh"] and r["title"]["en"] for r in rules)
