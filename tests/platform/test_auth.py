"""Authentication: Argon2id, password policy, lockout, rate limits, alerts, TOTP, sessions, API tokens."""

from __future__ import annotations

import itertools
import logging
from datetime import timedelta

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from medrisk.platform.sessions import token_hash
from medrisk.store.models import AuthSession, User, utcnow
from medrisk.web.app import create_app

_addr = itertools.count(1)
STRONG = "Vivid-Lantern-Mosaic-77"  # noqa: S105


def client_from(world) -> TestClient:
    """A client with an address of its own, so address-based limits of one test do not touch others."""
    addr = f"10.9.{next(_addr)}.1"
    c = TestClient(create_app(world.ctx), client=(addr, 40000))
    c.addr = addr  # type: ignore[attr-defined]
    return c


def new_user(world, role="builder", org="hosp", **kw):
    who = {"builder": "hosp_admin", "auditor": "hosp_admin"}.get(role, "admin")
    name = f"u{next(_addr)}.{world.tag}"
    r = world.client.post(
        "/api/v1/users",
        json={"org_id": world.org(org), "username": name, "role": role, "password": STRONG, **kw},
        headers=world.h(who),
    )
    assert r.status_code == 201, r.text
    return name, r.json()


def test_passwords_are_argon2id_and_never_stored_plain(world):
    name, u = new_user(world)
    with world.ctx.db.engine.connect() as conn:
        h = conn.execute(text("SELECT password_hash FROM users WHERE id = :i"), {"i": u["id"]}).scalar_one()
    assert h.startswith("$argon2id$") and STRONG not in h


def test_login_failures_are_generic(world):
    c = client_from(world)
    name, _ = new_user(world)
    wrong = c.post("/api/v1/auth/login", json={"username": name, "password": "Wrong-Password-123"})
    unknown = c.post("/api/v1/auth/login", json={"username": "nobody-" + name, "password": "Wrong-Password-123"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["message"] == unknown.json()["message"]
    assert c.post("/api/v1/auth/login", json={"username": name, "password": STRONG}).status_code == 200


def test_account_lockout(world):
    c = client_from(world)
    name, u = new_user(world)
    for _ in range(5):
        assert (
            c.post("/api/v1/auth/login", json={"username": name, "password": "Wrong-Password-123"}).status_code == 401
        )
    # locked: even the right password fails now, from any address
    assert client_from(world).post("/api/v1/auth/login", json={"username": name, "password": STRONG}).status_code == 401
    events = world.client.get("/api/v1/audit", params={"action": "login.lockout"}, headers=world.h("auditor")).json()
    assert any(e["actor"] == name for e in events)
    assert world.client.post(f"/api/v1/users/{u['id']}/unlock", headers=world.h("hosp_admin")).status_code == 204
    assert c.post("/api/v1/auth/login", json={"username": name, "password": STRONG}).status_code == 200


def test_rate_limit_per_address_and_bulk_login_alert(world):
    c = client_from(world)
    name, _ = new_user(world)
    codes = [
        c.post(
            "/api/v1/auth/login", json={"username": f"guess{i}-{world.tag}", "password": "Wrong-Password-123"}
        ).status_code
        for i in range(21)
    ]
    assert codes[:20] == [401] * 20 and codes[20] == 429
    r = c.post("/api/v1/auth/login", json={"username": name, "password": STRONG})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert client_from(world).post("/api/v1/auth/login", json={"username": name, "password": STRONG}).status_code == 200
    alerts = world.client.get("/api/v1/alerts", headers=world.h("admin")).json()
    assert any(a["kind"] == "bulk_login" and a["subject"] == f"address:{c.addr}" for a in alerts)


def test_high_frequency_login_alert_visible_to_the_region(world):
    name, u = new_user(world)
    for _ in range(10):  # several addresses: one account attacked from many places
        client_from(world).post("/api/v1/auth/login", json={"username": name, "password": "Wrong-Password-123"})
    mine = [
        a
        for a in world.client.get("/api/v1/alerts", headers=world.h("hz_reg")).json()
        if a["subject"] == f"user:{name}"
    ]
    assert mine and mine[0]["kind"] == "high_frequency_login" and mine[0]["details"]["failures"] >= 10
    others = world.client.get("/api/v1/alerts", headers=world.h("js_reg")).json()
    assert not [a for a in others if a["subject"] == f"user:{name}"]


def test_password_policy_and_history(world):
    for weak, why in [("short1A!", "12"), ("alllowercaseletters", "three"), ("NoDigitsOrSymbolsHere", "three")]:
        r = world.client.post(
            "/api/v1/users",
            json={"org_id": world.org("hosp"), "username": f"weak{next(_addr)}", "role": "builder", "password": weak},
            headers=world.h("hosp_admin"),
        )
        assert r.status_code == 422 and r.json()["field"] == "password" and why in r.json()["message"]
    name, u = new_user(world)
    c = client_from(world)
    h = {
        "Authorization": "Bearer "
        + c.post("/api/v1/auth/login", json={"username": name, "password": STRONG}).json()["token"]
    }
    other = c.post("/api/v1/auth/login", json={"username": name, "password": STRONG}).json()["token"]
    current = STRONG
    for i in range(5):
        new = f"Fresh-Password-{i}-Zebra"
        r = c.post("/api/v1/auth/password", json={"old_password": current, "new_password": new}, headers=h)
        assert r.status_code == 204, r.text
        current = new
    # the other session was revoked by the change
    assert c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other}"}).status_code == 401
    for reused in ("Fresh-Password-1-Zebra", "Fresh-Password-4-Zebra"):
        r = c.post("/api/v1/auth/password", json={"old_password": current, "new_password": reused}, headers=h)
        assert r.status_code == 422 and r.json()["code"] == "reused_password"
    # six changes ago is allowed again
    assert (
        c.post("/api/v1/auth/password", json={"old_password": current, "new_password": STRONG}, headers=h).status_code
        == 204
    )
    r = c.post("/api/v1/auth/password", json={"old_password": "wrong", "new_password": "Another-Strong-99"}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "old_password"


def test_totp_is_mandatory_for_regulators_with_enrolment(world):
    c = client_from(world)
    name, u = new_user(world, role="regulator", org="hz")
    r = c.post("/api/v1/auth/login", json={"username": name, "password": STRONG})
    assert r.status_code == 200 and r.json()["totp_enrolment_required"] is True
    h = {"Authorization": f"Bearer {r.json()['token']}"}
    r = c.get("/api/v1/filings", headers=h)
    assert r.status_code == 403 and r.json()["code"] == "totp_enrolment_required"
    assert c.get("/api/v1/auth/me", headers=h).json()["session_kind"] == "totp_enrol"
    enrol = c.post("/api/v1/auth/totp/enrol", headers=h).json()
    assert enrol["otpauth_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrol["secret"])
    assert (
        c.post(
            "/api/v1/auth/totp/confirm", json={"code": "000000" if totp.now() != "000000" else "111111"}, headers=h
        ).status_code
        == 422
    )
    assert c.post("/api/v1/auth/totp/confirm", json={"code": totp.now()}, headers=h).status_code == 204
    assert c.get("/api/v1/filings", headers=h).status_code == 200
    # from now on the code is required, and each code works once
    r = c.post("/api/v1/auth/login", json={"username": name, "password": STRONG})
    assert r.status_code == 401 and r.json()["code"] == "totp_required"
    code = totp.at(utcnow() + timedelta(seconds=30))
    assert (
        c.post("/api/v1/auth/login", json={"username": name, "password": STRONG, "totp_code": code}).status_code == 200
    )
    assert (
        c.post("/api/v1/auth/login", json={"username": name, "password": STRONG, "totp_code": code}).status_code == 401
    )
    # secrets are stored encrypted
    with world.ctx.db.session() as db:
        stored = db.scalar(select(User.totp_secret_enc).where(User.id == u["id"]))
    assert enrol["secret"] not in stored and stored.startswith("sm4gcm:")


def test_sessions_expire_and_can_be_revoked(world):
    c = client_from(world)
    name, u = new_user(world)
    tok = c.post("/api/v1/auth/login", json={"username": name, "password": STRONG}).json()["token"]
    h = {"Authorization": f"Bearer {tok}"}
    assert c.get("/api/v1/auth/me", headers=h).status_code == 200
    with world.ctx.db.session() as db:  # idle for an hour
        db.execute(
            update(AuthSession)
            .where(AuthSession.token_hash == token_hash(tok))
            .values(last_seen_at=utcnow() - timedelta(hours=1))
        )
    r = c.get("/api/v1/auth/me", headers=h)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    tok = c.post("/api/v1/auth/login", json={"username": name, "password": STRONG}).json()["token"]
    with world.ctx.db.session() as db:  # past its absolute lifetime
        db.execute(
            update(AuthSession)
            .where(AuthSession.token_hash == token_hash(tok))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tok}"}).status_code == 401
    tok = c.post("/api/v1/auth/login", json={"username": name, "password": STRONG}).json()["token"]
    h = {"Authorization": f"Bearer {tok}"}
    sessions = c.get("/api/v1/auth/sessions", headers=h).json()
    assert [s["current"] for s in sessions] == [True]
    assert c.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert c.get("/api/v1/auth/me", headers=h).status_code == 401
    # role change and disabling revoke sessions
    tok = c.post("/api/v1/auth/login", json={"username": name, "password": STRONG}).json()["token"]
    r = world.client.patch(f"/api/v1/users/{u['id']}", json={"role": "auditor"}, headers=world.h("hosp_admin"))
    assert r.status_code == 200 and r.json()["role"] == "auditor"
    assert c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tok}"}).status_code == 401
    changes = world.client.get(
        "/api/v1/audit", params={"action": "user.role_changed"}, headers=world.h("auditor")
    ).json()
    assert any(
        e["target"] == f"user:{u['id']}" and e["details"] == {"from": "builder", "to": "auditor"} for e in changes
    )
    assert c.get("/api/v1/auth/me", headers={"Authorization": "Bearer mrs_forged"}).status_code == 401
    assert c.get("/api/v1/auth/me").status_code == 401


def test_api_tokens_are_scoped_shown_once_and_hashed(world, corpus_dir):
    h = world.h("hosp_builder")
    r = world.client.post(
        "/api/v1/tokens", json={"name": "ci", "scopes": ["filings:read", "versions:write"]}, headers=h
    )
    assert r.status_code == 201
    token = r.json()["token"]
    assert token.startswith("mrt_")
    listed = world.client.get("/api/v1/tokens", headers=h).json()
    assert all("token" not in t for t in listed) and any(t["id"] == r.json()["id"] for t in listed)
    with world.ctx.db.engine.connect() as conn:
        dump = str(conn.execute(text("SELECT * FROM api_tokens")).all())
    assert token not in dump and token_hash(token) in dump
    th = {"Authorization": f"Bearer {token}"}
    assert world.client.get("/api/v1/filings", headers=th).status_code == 200
    r = world.client.post("/api/v1/filings", json=world.filing_body(), headers=th)
    assert r.status_code == 403  # no filings:write scope
    assert (
        world.client.post(
            "/api/v1/auth/password", json={"old_password": "x", "new_password": "y"}, headers=th
        ).status_code
        == 403
    )
    assert (
        world.client.post("/api/v1/tokens", json={"name": "x", "scopes": ["filings:read"]}, headers=th).status_code
        == 403
    )
    r = world.client.post("/api/v1/tokens", json={"name": "bad", "scopes": ["filings:review"]}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "scopes"
    r = world.client.post("/api/v1/tokens", json={"name": "bad", "scopes": ["nonsense"]}, headers=h)
    assert r.status_code == 422 and r.json()["field"].startswith("scopes")
    assert world.client.delete(f"/api/v1/tokens/{listed[-1]['id']}", headers=world.h("corp_builder")).status_code == 404
    assert world.client.delete(f"/api/v1/tokens/{listed[-1]['id']}", headers=h).status_code == 204
    assert world.client.get("/api/v1/filings", headers=th).status_code == 401


def test_nothing_secret_in_logs(world, caplog):
    caplog.set_level(logging.DEBUG)
    c = client_from(world)
    name, u = new_user(world, phone="13700001111")
    tok = c.post("/api/v1/auth/login", json={"username": name, "password": STRONG}).json()["token"]
    c.post("/api/v1/auth/login", json={"username": name, "password": "Wrong-But-Secret-9"})
    api = world.client.post(
        "/api/v1/tokens", json={"name": "t", "scopes": ["filings:read"]}, headers=world.h("hosp_builder")
    ).json()
    world.client.post(f"/api/v1/users/{u['id']}/reset-password", headers=world.h("hosp_admin"))
    for secret in (STRONG, "Wrong-But-Secret-9", tok, api["token"], "13700001111"):
        assert secret not in caplog.text
    entries = world.client.get("/api/v1/audit", params={"after_seq": 0, "limit": 1000}, headers=world.h("admin")).json()
    blob = str(entries)
    for secret in (STRONG, "Wrong-But-Secret-9", tok, api["token"], "13700001111"):
        assert secret not in blob
    with world.ctx.db.engine.connect() as conn:
        assert "13700001111" not in str(
            conn.execute(text("SELECT phone_enc FROM users WHERE id = :i"), {"i": u["id"]}).all()
        )
    assert world.client.get(f"/api/v1/users/{u['id']}", headers=world.h("hosp_admin")).json()["phone"] == "13700001111"
