"""The audit log: SM3 chain, SM2-signed checkpoints, tamper detection, retention, visibility."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from medrisk import platform_cli
from medrisk.platform import audit, settings
from medrisk.store.models import AuditCheckpoint, AuditEntry, AuditHead, utcnow
from tests.platform.world import build_world


@pytest.fixture
def log(fresh_ctx):
    """A platform with a few dozen audit entries and a checkpoint every 10."""
    with fresh_ctx.db.session() as db:
        settings.apply(db, {"audit_checkpoint_every": 10})
    w = build_world(fresh_ctx)
    for _ in range(8):
        w.file_app()
    return w


def _verify(ctx):
    with ctx.db.session() as db:
        return audit.verify(ctx.keys, db)


def _exec(ctx, sql, **params):
    with ctx.db.engine.begin() as conn:
        conn.execute(text(sql), params)


def test_intact_log_verifies_with_signed_checkpoints(log):
    rep = _verify(log.ctx)
    assert rep.ok, rep.problems
    assert rep.entries >= 20 and rep.checkpoints >= 2
    with log.ctx.db.session() as db:
        cp = db.scalars(select(AuditCheckpoint)).first()
        stmt = audit.checkpoint_statement(cp.seq, cp.hash, cp.signed_at, cp.key_id)
    import base64

    assert log.ctx.keys.public_key.verify(base64.b64decode(cp.signature), stmt)
    r = log.client.get("/api/v1/audit/verify", headers=log.h("auditor"))
    assert r.status_code == 200 and r.json()["ok"] is True


def test_edited_entry_is_reported(log, tmp_path, capsys):
    _exec(log.ctx, "UPDATE audit_entries SET actor = 'someone-else' WHERE seq = 7")
    rep = _verify(log.ctx)
    assert not rep.ok and rep.problems[0].seq == 7 and rep.problems[0].kind == "edited"
    # the CLI, with the published public key only
    pem = tmp_path / "k.pem"
    pem.write_bytes(log.ctx.keys.public_pem())
    rc = platform_cli.main(["audit", "verify", "--db", log.ctx.db.url, "--public-key", str(pem)])
    out = capsys.readouterr().out
    assert rc == 1 and "first problem at entry 7 (edited)" in out


def test_edited_details_are_reported(log):
    with log.ctx.db.session() as db:
        seq = db.scalar(select(func.min(AuditEntry.seq)).where(AuditEntry.action == "user.created"))
        db.execute(
            update(AuditEntry).where(AuditEntry.seq == seq).values(details={"username": "x", "role": "platform_admin"})
        )
    rep = _verify(log.ctx)
    assert rep.problems[0].seq == seq and rep.problems[0].kind == "edited"


def test_removed_entry_is_reported(log):
    _exec(log.ctx, "DELETE FROM audit_entries WHERE seq = 12")
    rep = _verify(log.ctx)
    assert rep.problems[0].seq == 12 and rep.problems[0].kind == "removed"


def test_removed_tail_is_reported(log):
    with log.ctx.db.session() as db:
        last = db.scalar(select(func.max(AuditEntry.seq)))
    _exec(log.ctx, "DELETE FROM audit_entries WHERE seq = :s", s=last)
    rep = _verify(log.ctx)
    assert rep.problems[0].seq == last and rep.problems[0].kind == "removed"


def test_reordered_entries_are_reported(log):
    _exec(log.ctx, "UPDATE audit_entries SET seq = -1 WHERE seq = 5")
    _exec(log.ctx, "UPDATE audit_entries SET seq = 5 WHERE seq = 6")
    _exec(log.ctx, "UPDATE audit_entries SET seq = 6 WHERE seq = -1")
    rep = _verify(log.ctx)
    assert rep.problems[0].seq == 5 and rep.problems[0].kind == "reordered"


def test_rewritten_chain_fails_the_signed_checkpoint(log):
    """An attacker without the SM2 key edits entry 3 and recomputes every hash after it."""
    with log.ctx.db.session() as db:
        rows = db.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        prev = audit.GENESIS
        for e in rows:
            if e.seq == 3:
                e.actor = "forger"
            e.prev_hash = prev
            e.hash = audit.entry_hash(prev, audit.entry_content(e))
            prev = e.hash
    rep = _verify(log.ctx)
    assert not rep.ok
    assert rep.problems[0].kind == "checkpoint" and rep.problems[0].seq == 10


def test_retention_under_180_days_is_refused_and_changes_are_audited(log):
    r = log.client.patch("/api/v1/config", json={"audit_retention_days": 179}, headers=log.h("admin"))
    assert r.status_code == 422 and r.json()["field"] == "audit_retention_days"
    r = log.client.patch("/api/v1/config", json={"audit_retention_days": 200}, headers=log.h("admin"))
    assert r.status_code == 200 and r.json()["audit_retention_days"] == 200
    assert (
        log.client.patch("/api/v1/config", json={"audit_retention_days": 400}, headers=log.h("hz_reg")).status_code
        == 403
    )
    changes = log.client.get("/api/v1/audit", params={"action": "config.changed"}, headers=log.h("auditor")).json()
    assert any(e["details"].get("audit_retention_days") == {"from": 365, "to": 200} for e in changes)


def test_purge_keeps_a_verifiable_anchor(log):
    with log.ctx.db.session() as db:  # pretend the first 15 entries are a year old
        db.execute(update(AuditEntry).where(AuditEntry.seq <= 15).values(ts=utcnow() - timedelta(days=400)))
        # rewriting ts changes hashes: recompute as if they had been written then
        prev = audit.GENESIS
        for e in db.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all():
            e.prev_hash, e.hash = prev, audit.entry_hash(prev, audit.entry_content(e))
            prev = e.hash
        db.execute(update(AuditHead).values(last_hash=prev))
        db.execute(text("DELETE FROM audit_checkpoints"))
        db.flush()
        for seq in (10, 20):
            h = db.get(AuditEntry, seq).hash
            audit._sign_checkpoint(log.ctx.keys, db, seq, h)
    with log.ctx.db.session() as db:
        assert audit.purge(log.ctx.keys, db) == 10  # up to the checkpoint at 10, not 15
    rep = _verify(log.ctx)
    assert rep.ok, rep.problems
    assert rep.first_seq == 11


def test_audit_visibility(log):
    f = log.file_app(who="corp_builder")
    assert log.client.get("/api/v1/audit", headers=log.h("hosp_builder")).status_code == 403
    assert log.client.get("/api/v1/audit/verify", headers=log.h("hz_reg")).status_code == 403
    hz = log.client.get("/api/v1/audit", params={"limit": 1000}, headers=log.h("hz_reg")).json()
    js = log.client.get("/api/v1/audit", params={"limit": 1000}, headers=log.h("js_reg")).json()
    target = f"filing:{f['id']}"
    assert any(e["target"] == target for e in hz) and not any(e["target"] == target for e in js)
    hosp = log.client.get("/api/v1/audit", params={"limit": 1000}, headers=log.h("hosp_auditor")).json()
    assert hosp and all(e["org_id"] == log.org("hosp") for e in hosp)
    exports = log.client.get("/api/v1/exports/filings", headers=log.h("hz_reg"))
    assert exports.status_code == 200
    logged = log.client.get("/api/v1/audit", params={"action": "export"}, headers=log.h("auditor")).json()
    assert logged and logged[-1]["details"]["rows"] >= 1
