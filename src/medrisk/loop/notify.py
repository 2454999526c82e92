"""Notifications (white paper §5.3): who is told, what, and delivery with retries.

Every risk event goes to the filing's contacts (e-mail) and the institution's own endpoints;
major risks (``major: true`` in the policy: suspension, counterfeit, ...) also go to the
supervising regulator and, per ``regulator_levels``, the levels above it. A notification is
planned in the disposition's transaction (so nothing is lost) and delivered afterwards;
failures are retried with exponential backoff (1 min doubling to 1 h) and never undo the
disposition. A webhook endpoint is disabled after ``webhook_disable_after`` consecutive
failures; its notifications wait until an administrator re-enables it.

Webhooks: POST of the JSON payload with ``X-MedRisk-Timestamp`` (Unix seconds) and
``X-MedRisk-Signature: hmac-sm3=<hex>`` over ``timestamp + "." + body`` with the endpoint's
secret (see ``sign_webhook``/``verify_webhook``).
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from medrisk.crypto import hmac_sm3, verify_hmac_sm3
from medrisk.loop.policy import render
from medrisk.platform.filings import decrypt_contacts
from medrisk.store.models import (
    DeliveryAttempt,
    Disposition,
    Filing,
    Notification,
    NotifyEndpoint,
    Organisation,
    Scan,
    Transition,
)

if TYPE_CHECKING:
    from medrisk.loop.engine import LoopService

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=1)
CLAIM_LEASE = timedelta(minutes=5)  # a delivery in progress owns its notification this long
DIGEST_PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}


@dataclass
class NotifyConfig:
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_tls: str = "starttls"  # starttls | ssl | none
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str = "medrisk@localhost"
    smtp_ca_file: str | None = None
    webhook_timeout: float = 5.0
    webhook_disable_after: int = 10
    sms_url: str | None = None  # the SMS provider's HTTP gateway (an adapter: POST {"to", "text"})
    sms_token: str | None = None

    @classmethod
    def from_env(cls) -> NotifyConfig:
        env = os.environ.get
        return cls(
            smtp_host=env("MEDRISK_SMTP_HOST") or None,
            smtp_port=int(env("MEDRISK_SMTP_PORT", "25")),
            smtp_tls=env("MEDRISK_SMTP_TLS", "starttls"),
            smtp_user=env("MEDRISK_SMTP_USER") or None,
            smtp_password=env("MEDRISK_SMTP_PASSWORD") or None,
            mail_from=env("MEDRISK_MAIL_FROM", "medrisk@localhost"),
            smtp_ca_file=env("MEDRISK_SMTP_CA_FILE") or None,
            sms_url=env("MEDRISK_SMS_URL") or None,
            sms_token=env("MEDRISK_SMS_TOKEN") or None,
        )


# --- signing ---------------------------------------------------------------------------------------


def sign_webhook(secret: bytes, timestamp: int, body: bytes) -> str:
    return "hmac-sm3=" + hmac_sm3(secret, str(timestamp).encode() + b"." + body).hex()


def verify_webhook(secret: bytes, timestamp: str, body: bytes, signature: str, now: int, tolerance: int = 300) -> bool:
    """For receivers: the signature matches and the timestamp is within ``tolerance`` seconds."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance or not signature.startswith("hmac-sm3="):
        return False
    try:
        tag = bytes.fromhex(signature.removeprefix("hmac-sm3="))
    except ValueError:
        return False
    return verify_hmac_sm3(secret, timestamp.encode() + b"." + body, tag)


def endpoint_secret(svc: LoopService, ep: NotifyEndpoint) -> bytes | None:
    value = svc.ctx.keys.decrypt(ep.secret_enc, f"notify_endpoints.secret:{ep.id}")
    return value.encode() if value else None


# --- planning --------------------------------------------------------------------------------------


def _findings(db: Session, scan_id: int | None, limit: int = 10) -> list[dict[str, Any]]:
    if not scan_id:
        return []
    s = db.get(Scan, scan_id)
    if s is None or not s.result:
        return []
    out = []
    for f in (s.result.get("findings") or [])[:limit]:

        def txt(v: Any, lang: str) -> str:
            return v.get(lang) or v.get("zh") or "" if isinstance(v, dict) else str(v or "")

        out.append(
            {
                "rule": f.get("rule_id") or f.get("id"),
                "severity": f.get("severity"),
                "title": {"zh": txt(f.get("title"), "zh"), "en": txt(f.get("title"), "en")},
                "remediation": {"zh": txt(f.get("remediation"), "zh"), "en": txt(f.get("remediation"), "en")},
            }
        )
    return out


def _regulators(db: Session, org_id: int, levels: int) -> list[int]:
    out: list[int] = []
    org = db.get(Organisation, org_id)
    while org is not None and org.parent_id is not None and len(out) < levels:
        org = db.get(Organisation, org.parent_id)
        if org is not None:
            out.append(org.id)
    return out


def plan(
    svc: LoopService, db: Session, f: Filing, d: Disposition, t: Transition, spec: dict[str, Any], data: dict[str, Any]
) -> list[int]:
    template = str(spec["template"])
    major = bool(spec.get("major"))
    findings = _findings(db, d.last_scan_id)
    values: dict[str, Any] = {
        "app": f.name,
        "package": f.package,
        "filing": f.id,
        "grade": d.last_grade,
        "scan": d.last_scan_id,
        "version": data.get("version") or f.current_version,
        "deadline": d.deadline_at.strftime("%Y-%m-%d %H:%M UTC") if d.deadline_at else None,
        "reason": data.get("reason") or t.rule,
        "seen": data.get("version"),
        "filed": f.current_version,
        "channel": data.get("channel"),
        "detail": data.get("detail"),
        "until": d.accepted_until.strftime("%Y-%m-%d %H:%M UTC") if d.accepted_until else None,
        "state": d.state,
    }
    values["findings"] = (
        "\n".join(
            f"- [{x['severity']}] {x['title']['zh']} / {x['title']['en']}: "
            f"{x['remediation']['zh']} {x['remediation']['en']}"
            for x in findings
        )
        or "-"
    )
    payload = {
        "type": "medrisk.disposition",
        "event_id": t.event_id,
        "template": template,
        "major": major,
        "filing": {"id": f.id, "name": f.name, "package": f.package, "org_id": f.org_id},
        "transition": {"id": t.id, "rule": t.rule, "from": t.from_state, "to": t.to_state, "at": t.at.isoformat()},
        "state": d.state,
        "deadline": d.deadline_at.isoformat() if d.deadline_at else None,
        "grade": d.last_grade,
        "scan_id": d.last_scan_id,
        "findings": findings if template == "rectification_notice" else [],
        "submit_fix": f"POST /api/v1/filings/{f.id}/versions",
    }
    targets: list[tuple[str, str, str, int | None, str]] = []  # audience, channel, recipient, endpoint, language
    digests: set[int] = set()
    for c in decrypt_contacts(svc.ctx, f.id, f.contacts_enc):
        if c.get("email"):
            targets.append(("builder", "email", c["email"], None, "both"))
        if major and c.get("phone") and svc.config.sms_url:  # a text message for major risks only
            targets.append(("builder", "sms", c["phone"], None, "zh"))
    orgs = [("builder", f.org_id)]
    if major:
        orgs += [("regulator", o) for o in _regulators(db, f.org_id, svc.policy.regulator_levels)]
    for audience, org_id in orgs:
        for ep in db.scalars(select(NotifyEndpoint).where(NotifyEndpoint.org_id == org_id).order_by(NotifyEndpoint.id)):
            targets.append((audience, ep.kind, ep.address, ep.id, ep.language))
            if ep.kind == "email" and ep.digest in DIGEST_PERIODS:
                digests.add(ep.id)
    ids = []
    now = svc.clock.now()
    seen: set[tuple[str, str]] = set()
    for audience, channel, recipient, ep_id, lang in targets:
        if (channel, recipient) in seen:
            continue
        seen.add((channel, recipient))
        subject, body = render(template, lang, values)
        n = Notification(
            filing_id=f.id,
            org_id=f.org_id,
            event_id=t.event_id,
            template=template,
            channel=channel,
            recipient=recipient,
            endpoint_id=ep_id,
            audience=audience,
            subject=subject,
            body=body,
            payload={**payload, "audience": audience},
            status="digest" if ep_id in digests else "pending",
            next_attempt_at=now,
            created_at=now,
        )
        db.add(n)
        db.flush()
        ids.append(n.id)
    return ids


# --- delivery --------------------------------------------------------------------------------------


def send_email(cfg: NotifyConfig, n: Notification) -> None:
    if not cfg.smtp_host:
        raise RuntimeError("e-mail is not configured (MEDRISK_SMTP_HOST)")
    msg = EmailMessage()
    msg["From"] = cfg.mail_from
    msg["To"] = n.recipient
    msg["Subject"] = n.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="medrisk")
    msg["X-MedRisk-Event"] = n.event_id
    msg.set_content(n.body, charset="utf-8")
    context = ssl.create_default_context(cafile=cfg.smtp_ca_file)
    if cfg.smtp_tls == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.smtp_host, cfg.smtp_port, timeout=15, context=context)
    else:
        smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=15)
    with smtp:
        if cfg.smtp_tls == "starttls":
            smtp.starttls(context=context)
        if cfg.smtp_user:
            smtp.login(cfg.smtp_user, cfg.smtp_password or "")
        smtp.send_message(msg)


def send_webhook(svc: LoopService, n: Notification, ep: NotifyEndpoint) -> None:
    secret = endpoint_secret(svc, ep)
    if not secret:
        raise RuntimeError("webhook secret unreadable")
    body = json.dumps(
        {**n.payload, "notification_id": n.id, "subject": n.subject}, ensure_ascii=False, sort_keys=True
    ).encode()
    ts = int(svc.clock.now().timestamp())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-MedRisk-Timestamp": str(ts),
        "X-MedRisk-Signature": sign_webhook(secret, ts, body),
        "X-MedRisk-Event": n.event_id,
        "X-MedRisk-Delivery": str(n.id),
    }
    r = httpx.post(n.recipient, content=body, headers=headers, timeout=svc.config.webhook_timeout)
    if r.status_code >= 300:
        raise RuntimeError(f"HTTP {r.status_code}")


def send_sms(cfg: NotifyConfig, n: Notification) -> None:
    """The SMS adapter: one HTTP POST to the provider's gateway (configuration: MEDRISK_SMS_URL/TOKEN)."""
    if not cfg.sms_url:
        raise RuntimeError("SMS is not configured (MEDRISK_SMS_URL)")
    headers = {"Authorization": f"Bearer {cfg.sms_token}"} if cfg.sms_token else {}
    text = n.subject[:300]
    r = httpx.post(cfg.sms_url, json={"to": n.recipient, "text": text, "ref": str(n.id)}, headers=headers, timeout=10)
    if r.status_code >= 300:
        raise RuntimeError(f"HTTP {r.status_code}")


def deliver(svc: LoopService, notification_id: int) -> bool:
    """One attempt; records it. True if sent. Never raises (the scheduler retries)."""
    cfg = svc.config
    with svc.ctx.db.session() as db:
        n = db.get(Notification, notification_id, with_for_update=True)
        if n is None or n.status != "pending":
            return False
        ep = db.get(NotifyEndpoint, n.endpoint_id) if n.endpoint_id else None
        if ep is not None and not ep.enabled:
            return False  # held until an administrator re-enables the endpoint
        claimed_at = svc.clock.now()
        if n.next_attempt_at is not None and n.next_attempt_at > claimed_at:
            return False  # another delivery holds it (a redelivered job) or its retry is not due yet
        # claim it: a concurrent or redelivered job skips it; if this process dies while sending,
        # the tick picks it up again when the lease ends
        n.next_attempt_at = claimed_at + CLAIM_LEASE
        db.flush()
        db.expunge(n)
        if ep is not None:
            db.expunge(ep)
    error: str | None = None
    try:
        if n.channel == "email":
            send_email(cfg, n)
        elif n.channel == "webhook":
            assert ep is not None
            send_webhook(svc, n, ep)
        elif n.channel == "sms":
            send_sms(cfg, n)
        else:
            raise RuntimeError(f"unknown channel {n.channel}")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    now = svc.clock.now()
    with svc.ctx.db.session() as db:
        row = db.get(Notification, notification_id)
        assert row is not None
        if row.status != "pending":
            return False
        row.attempts += 1
        db.add(DeliveryAttempt(notification_id=row.id, at=now, ok=error is None, error=error))
        e = db.get(NotifyEndpoint, row.endpoint_id) if row.endpoint_id else None
        if error is None:
            row.status, row.sent_at, row.last_error = "sent", now, None
            if e is not None:
                e.consecutive_failures = 0
        else:
            row.last_error = error
            row.next_attempt_at = now + min(timedelta(minutes=2 ** (row.attempts - 1)), MAX_BACKOFF)
            if e is not None:
                e.consecutive_failures += 1
                if e.enabled and e.consecutive_failures >= cfg.webhook_disable_after:
                    e.enabled, e.disabled_at = False, now
            log.warning("notification %s attempt %s failed: %s", row.id, row.attempts, error)
    return error is None


def deliver_due(svc: LoopService, limit: int = 200) -> int:
    now = svc.clock.now()
    with svc.ctx.db.session() as db:
        ids = list(
            db.scalars(
                select(Notification.id)
                .outerjoin(NotifyEndpoint, Notification.endpoint_id == NotifyEndpoint.id)
                .where(
                    Notification.status == "pending",
                    Notification.next_attempt_at <= now,
                    or_(Notification.endpoint_id.is_(None), NotifyEndpoint.enabled.is_(True)),
                )
                .order_by(Notification.id)
                .limit(limit)
            )
        )
    return sum(1 for i in ids if deliver(svc, i))


def send_digests(svc: LoopService) -> int:
    """One e-mail per digest endpoint and period with everything held for it (by its preference).

    Held notifications become ``sent`` when the digest goes out (each with its attempt); if
    sending fails they stay held and the next tick tries again."""
    now = svc.clock.now()
    sent = 0
    with svc.ctx.db.session() as db:
        eps = list(
            db.scalars(
                select(NotifyEndpoint).where(
                    NotifyEndpoint.kind == "email",
                    NotifyEndpoint.digest.in_(list(DIGEST_PERIODS)),
                    NotifyEndpoint.enabled.is_(True),
                )
            )
        )
        for ep in eps:
            db.expunge(ep)
    for ep in eps:
        if now < (ep.last_digest_at or ep.created_at) + DIGEST_PERIODS[ep.digest]:
            continue
        with svc.ctx.db.session() as db:
            held = list(
                db.scalars(
                    select(Notification)
                    .where(Notification.endpoint_id == ep.id, Notification.status == "digest")
                    .order_by(Notification.id)
                )
            )
            for n in held:
                db.expunge(n)
        if not held:
            continue
        zh, en = ("每日", "daily") if ep.digest == "daily" else ("每周", "weekly")
        lines = [f"- {n.created_at:%Y-%m-%d %H:%M} UTC  {n.subject}" for n in held]
        digest = Notification(
            event_id=f"digest:{ep.id}",
            recipient=ep.address,
            subject=f"【MedRisk {zh}汇总】{len(held)} 条风险事件 / MedRisk {en} digest: {len(held)} events",
            body="\n".join(lines) + "\n\n" + "\n\n=====\n\n".join(n.body for n in held),
        )
        error = None
        try:
            send_email(svc.config, digest)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("digest for endpoint %s failed: %s", ep.id, error)
        with svc.ctx.db.session() as db:
            for n in held:
                row = db.get(Notification, n.id)
                assert row is not None
                row.attempts += 1
                db.add(DeliveryAttempt(notification_id=row.id, at=now, ok=error is None, error=error or None))
                if error is None:
                    row.status, row.sent_at, row.last_error = "sent", now, None
                else:
                    row.last_error = error
            if error is None:
                e = db.get(NotifyEndpoint, ep.id)
                assert e is not None
                e.last_digest_at = now
                sent += 1
    return sent
