"""Notifications: webhooks signed with HMAC-SM3 to a real receiver on loopback, retried with
backoff while it is down (nothing lost), disabled after repeated failures and re-enabled by an
administrator; e-mail to a real SMTP server; a failed delivery never blocks a disposition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from medrisk.loop.notify import sign_webhook, verify_webhook
from tests.loop.conftest import approved_app


def _hook(w, receiver, who="hosp_admin"):
    r = w.client.post("/api/v1/notify-endpoints", json={"kind": "webhook", "address": receiver.url}, headers=w.h(who))
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"].encode()
    receiver.clock = w.clock
    return r.json()


def test_signature_roundtrip():
    body, ts = b'{"a":1}', int(datetime.now(UTC).timestamp())
    sig = sign_webhook(b"k" * 32, ts, body)
    assert verify_webhook(b"k" * 32, str(ts), body, sig, ts)
    assert not verify_webhook(b"k" * 32, str(ts), body + b" ", sig, ts)
    assert not verify_webhook(b"x" * 32, str(ts), body, sig, ts)
    assert not verify_webhook(b"k" * 32, str(ts), body, sig, ts + 3600)  # replayed an hour later


def test_receiver_down_for_an_hour_then_everything_arrives(lw, receiver):
    w = lw
    ep = _hook(w, receiver)
    f, _ = approved_app(w)
    receiver.up = False
    out = w.ctx.loop.emit("scan_graded", f["id"], "e-c", {"grade": "C"})
    assert out.state == "rectifying"  # the disposition does not wait for delivery
    for _ in range(60):  # an hour in one-minute scheduler ticks
        w.clock.advance(minutes=1)
        w.ctx.loop.tick()
    notes = w.client.get("/api/v1/notifications", params={"filing_id": f["id"]}, headers=w.h("hosp_admin")).json()
    hook = [n for n in notes if n["channel"] == "webhook"][0]
    assert hook["status"] == "pending" and 5 <= hook["attempts"] <= 8 and receiver.received == []
    assert all(not a["ok"] and "503" in a["error"] for a in hook["delivery"])
    receiver.up = True
    w.clock.advance(minutes=60)
    w.ctx.loop.tick()
    assert [x["event_id"] for x in receiver.received] == ["e-c"] and receiver.bad_signatures == 0
    assert receiver.received[0]["deadline"] and receiver.received[0]["findings"] == []
    eps = w.client.get("/api/v1/notify-endpoints", headers=w.h("hosp_admin")).json()
    assert [e for e in eps if e["id"] == ep["id"]][0]["enabled"] is True


def test_disabled_after_repeated_failures_and_reenabled(lw, receiver):
    w = lw
    w.ctx.loop.config.webhook_disable_after = 3
    ep = _hook(w, receiver)
    f, _ = approved_app(w)
    receiver.up = False
    w.ctx.loop.emit("scan_graded", f["id"], "e-c", {"grade": "C"})
    for _ in range(4):
        w.clock.advance(hours=1)
        w.ctx.loop.tick()
    e = [x for x in w.client.get("/api/v1/notify-endpoints", headers=w.h("hosp_admin")).json() if x["id"] == ep["id"]]
    assert e[0]["enabled"] is False and e[0]["consecutive_failures"] == 3
    receiver.up = True
    w.clock.advance(hours=1)
    w.ctx.loop.tick()
    assert receiver.received == []  # held while disabled, not lost
    assert w.client.post(f"/api/v1/notify-endpoints/{ep['id']}/enable", headers=w.h("hosp_builder")).status_code == 403
    r = w.client.post(f"/api/v1/notify-endpoints/{ep['id']}/enable", headers=w.h("hosp_admin"))
    assert r.status_code == 200 and r.json()["enabled"] is True
    assert [x["event_id"] for x in receiver.received] == ["e-c"]


def test_email_failure_is_retried_and_never_blocks(lw, smtp):
    w, box = lw, smtp[0]
    addr = f"li.{w.tag}@example.org"
    contacts = [{"name": "李四", "phone": "+86 139 0000 0000", "email": addr, "role": "负责人"}]
    f, _ = approved_app(w, contacts=contacts)
    port = w.ctx.loop.config.smtp_port
    w.ctx.loop.config.smtp_port = 1  # nothing listens there
    assert w.ctx.loop.emit("scan_graded", f["id"], "e-c", {"grade": "C"}).state == "rectifying"
    assert box.to(addr) == []
    w.ctx.loop.config.smtp_port = port
    w.clock.advance(minutes=2)
    w.ctx.loop.tick()
    msgs = box.to(addr)
    assert len(msgs) == 1 and "Rectification notice" in msgs[0]["Subject"]
    notes = w.client.get("/api/v1/notifications", params={"filing_id": f["id"]}, headers=w.h("hz_reg")).json()
    assert notes[0]["recipient"].startswith("l***@") and [a["ok"] for a in notes[0]["delivery"]] == [False, True]


def test_major_risk_also_goes_by_sms_through_the_http_adapter(lw, receiver):
    w = lw
    receiver.sms = True
    w.ctx.loop.config.sms_url = receiver.url
    w.ctx.loop.config.sms_token = "gateway-token"
    f, _ = approved_app(w)
    w.ctx.loop.emit("scan_graded", f["id"], "e-c", {"grade": "C"})
    assert receiver.received == []  # a rectification notice is not a major risk: e-mail only
    w.ctx.loop.emit("version_seen", f["id"], "v-9", {"version": "9.0", "channel": "应用宝"})
    assert len(receiver.received) == 1
    sms = receiver.received[0]
    assert sms["to"] == "+86 138 0000 0000" and "熔断" in sms["text"] and receiver.auth == "Bearer gateway-token"
    notes = w.client.get("/api/v1/notifications", params={"filing_id": f["id"]}, headers=w.h("hz_reg")).json()
    assert [n["recipient"] for n in notes if n["channel"] == "sms"] == ["+86****00"]


def test_daily_digest_instead_of_one_mail_per_event(lw, smtp):
    w, box = lw, smtp[0]
    addr = f"digest.{w.tag}@example.org"
    r = w.client.post(
        "/api/v1/notify-endpoints",
        json={"kind": "email", "address": addr, "language": "en", "digest": "daily"},
        headers=w.h("hz_reg"),
    )
    assert r.status_code == 201 and r.json()["digest"] == "daily"
    f1, _ = approved_app(w)
    f2, _ = approved_app(w)
    w.ctx.loop.emit("version_seen", f1["id"], "v1", {"version": "9.0"})
    w.ctx.loop.emit("counterfeit_found", f2["id"], "cf", {"channel": "x", "detail": "y"})
    w.ctx.loop.tick()
    assert box.to(addr) == []  # held for the digest
    w.clock.advance(hours=25)
    w.ctx.loop.tick()
    w.ctx.loop.tick()
    msgs = box.to(addr)
    assert len(msgs) == 1 and "2 events" in msgs[0]["Subject"]
    body = msgs[0].get_content()
    assert "[Suspended]" in body and "[Look-alike]" in body


def test_email_over_starttls_to_a_real_smtp_server(tmp_path):
    """TLS from configuration: STARTTLS required by the server, its certificate checked against a CA file."""
    import datetime as dt
    import ipaddress
    import ssl

    from aiosmtpd.controller import Controller
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from medrisk.loop.notify import NotifyConfig, send_email
    from medrisk.store.models import Notification
    from tests.loop.conftest import Mailbox, free_port_for_tests

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    box, port = Mailbox(), free_port_for_tests()
    ctl = Controller(box, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True)
    ctl.start()
    try:
        n = Notification(event_id="e-tls", recipient="tls@example.org", subject="【测试】TLS", body="正文 body")
        cfg = NotifyConfig(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="starttls", smtp_ca_file=str(cert_file))
        send_email(cfg, n)
        assert box.to("tls@example.org")[0]["Subject"] == "【测试】TLS"
        with pytest.raises(Exception):  # noqa: B017 - refused without TLS
            send_email(NotifyConfig(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none"), n)
    finally:
        ctl.stop()
