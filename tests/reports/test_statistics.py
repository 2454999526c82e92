"""The periodic statistical report: figures that match the database, a signed PDF with its
Chinese text, and the scheduled delivery to a subscribing regulator through the loop's
notification machinery (a real SMTP server on loopback), retried until sent, sent once."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from medrisk.loop.notify import NotifyConfig
from medrisk.reports import posture, signing, statistics
from medrisk.store.models import (
    NotifyEndpoint,
    Organisation,
    PostureApp,
    Report,
    ReportDelivery,
    ReportSubscription,
    Scan,
    utcnow,
)
from tests.loop.conftest import free_port_for_tests


def org_id(ctx, name: str) -> int:
    with ctx.db.session() as db:
        return db.scalar(select(Organisation.id).where(Organisation.name == name))


def test_monthly_report_figures_text_and_signature(demo_ctx, tmp_path):
    zj = org_id(demo_ctx, "浙江省卫生健康委员会")
    period = utcnow().strftime("%Y-%m")  # the demo scans finished this month
    r = statistics.generate(demo_ctx, zj, period, "zh")
    stats = r.meta["stats"]
    with demo_ctx.db.session() as db:
        root = db.get(Organisation, zj)
        ids = posture.subtree_ids(root)
        done = db.scalar(select(func.count()).where(Scan.org_id.in_(ids), Scan.status == "done"))
        graded = db.scalar(select(func.count()).where(PostureApp.org_id.in_(ids)))
    assert sum(stats["scans_in_period"].values()) == done and stats["graded"] == graded > 0
    assert r.period_start == datetime.fromisoformat(period + "-01T00:00:00+00:00")
    path = tmp_path / "stats.pdf"
    path.write_bytes(signing.read(demo_ctx, r))
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True).stdout
    for s in ("移动医疗应用安全监测统计报告", "浙江省卫生健康委员会", "杭州市卫生健康委员会", "主要风险", "本期处置"):
        assert s in text, s
    assert demo_ctx.keys.verify(signing.signature_der(r), path.read_bytes())
    assert statistics.generate(demo_ctx, zj, period, "zh").id == r.id  # kept, not re-rendered
    with pytest.raises(Exception, match="YYYY-MM"):
        statistics.generate(demo_ctx, zj, "2026-13", "zh")


def test_scheduled_delivery_to_a_subscriber(demo_ctx, smtp):
    box, port = smtp
    hz = org_id(demo_ctx, "杭州市卫生健康委员会")
    address = "hz-stats@example.org"
    with demo_ctx.db.session() as db:
        ep = NotifyEndpoint(org_id=hz, kind="email", address=address, language="zh", created_at=utcnow())
        db.add(ep)
        db.flush()
        sub = ReportSubscription(org_id=hz, endpoint_id=ep.id, period="monthly", lang="zh", created_at=utcnow())
        db.add(sub)
        db.flush()
        sub_id = sub.id
    assert demo_ctx.loop is not None
    next_month = (utcnow().replace(day=1) + timedelta(days=32)).replace(day=2, tzinfo=UTC)
    # the mail server is not configured yet: the delivery waits, with the error recorded
    demo_ctx.loop.config = NotifyConfig(smtp_host="127.0.0.1", smtp_port=free_port_for_tests(), smtp_tls="none")
    assert statistics.run_due(demo_ctx, now=next_month) == 0
    with demo_ctx.db.session() as db:
        d = db.scalars(select(ReportDelivery).where(ReportDelivery.subscription_id == sub_id)).one()
        assert d.status == "pending" and d.attempts == 1 and d.last_error
    demo_ctx.loop.config = NotifyConfig(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")
    assert statistics.run_due(demo_ctx, now=next_month) == 1
    assert statistics.run_due(demo_ctx, now=next_month) == 0  # sent once
    mails = box.to(address)
    assert len(mails) == 1
    with demo_ctx.db.session() as db:
        r = db.get(Report, d.report_id)
        assert r.kind == "periodic" and r.org_id == hz and r.meta["period"] == utcnow().strftime("%Y-%m")
        d = db.get(ReportDelivery, d.id)
        assert d.status == "sent" and d.attempts == 2
    body = mails[0].get_content()
    assert r.sm3 in body and f"/console/reports/{r.id}/download" in body and "openssl dgst -sm3" in body
    assert utcnow().strftime("%Y-%m") in mails[0]["Subject"]


def test_medrisk_report_cli_writes_a_verifiable_pdf(demo_ctx, tmp_path):
    import sys

    zj = org_id(demo_ctx, "浙江省卫生健康委员会")
    out = tmp_path / "zj.pdf"
    env = {**__import__("os").environ}
    env.pop("MEDRISK_KEYSTORE_PASSWORD", None)
    url = str(demo_ctx.db.url)
    cmd = [sys.executable, "-m", "medrisk.cli", "report", "periodic", str(zj), "--period", "2026-01", "-o", str(out)]
    r = subprocess.run(
        [*cmd, "--db", url, "--data-dir", str(demo_ctx.data_dir)], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    key = tmp_path / "key.pem"
    key.write_bytes(demo_ctx.keys.public_pem())
    v = subprocess.run(
        [sys.executable, "-m", "medrisk.cli", "verify", str(out), "--public-key", str(key)],
        capture_output=True,
        text=True,
    )
    assert v.returncode == 0 and "VERIFIED" in v.stdout
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
    assert "2026-01-01 – 2026-01-31" in text and "浙江省卫生健康委员会" in text


def test_delivery_to_a_signed_webhook(demo_ctx):
    """A regulator's webhook endpoint gets the report notice, HMAC-SM3 signed like the loop's."""
    import secrets as pysecrets

    from tests.loop.conftest import Receiver

    rec = Receiver()
    secret = pysecrets.token_urlsafe(32)  # as POST /api/v1/notify-endpoints makes one
    rec.secret = secret.encode()
    try:
        js = org_id(demo_ctx, "江苏省卫生健康委员会")
        with demo_ctx.db.session() as db:
            ep = NotifyEndpoint(org_id=js, kind="webhook", address=rec.url, created_at=utcnow())
            db.add(ep)
            db.flush()
            ep.secret_enc = demo_ctx.keys.encrypt(secret, f"notify_endpoints.secret:{ep.id}")
            db.add(ReportSubscription(org_id=js, endpoint_id=ep.id, period="monthly", lang="en", created_at=utcnow()))
        assert demo_ctx.loop is not None
        demo_ctx.loop.config = NotifyConfig(webhook_timeout=5)
        next_month = (utcnow().replace(day=1) + timedelta(days=32)).replace(day=2, tzinfo=UTC)
        assert statistics.run_due(demo_ctx, now=next_month) >= 1
        assert rec.bad_signatures == 0 and len(rec.received) == 1
        got = rec.received[0]
        with demo_ctx.db.session() as db:
            r = db.get(Report, got["report_id"])
            assert r.org_id == js and r.lang == "en" and got["sm3"] == r.sm3
        assert got["type"] == "medrisk.report" and got["download"].endswith(f"/console/reports/{r.id}/download")
    finally:
        rec.close()


def test_week_quarter_and_year_on_demand(demo_ctx, tmp_path):
    """Other periods than the month: an ISO week, a quarter, a year, with their own bounds."""
    zj = org_id(demo_ctx, "浙江省卫生健康委员会")
    now = utcnow()
    year, week, _ = now.isocalendar()
    this_week = f"{year}-W{week:02d}"  # the demo scans finished this week (lower case is accepted)
    r = statistics.generate(demo_ctx, zj, this_week.lower(), "zh")
    assert r.meta["period"] == this_week and r.meta["stats"]["scans_in_period"]
    start = r.period_start
    assert start.weekday() == 0 and r.period_end - start == timedelta(days=7)
    path = tmp_path / "week.pdf"
    path.write_bytes(signing.read(demo_ctx, r))
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    last = start + timedelta(days=6)
    assert f"{this_week}（{start:%Y-%m-%d} – {last:%Y-%m-%d}）" in text.replace("\n", "")
    assert demo_ctx.keys.verify(signing.signature_der(r), path.read_bytes())
    q = statistics.generate(demo_ctx, zj, "2026-Q1", "en")
    assert (q.period_start, q.period_end) == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert posture.period_bounds("2025") == (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert posture.previous_period(datetime(2026, 1, 5, tzinfo=UTC), "quarterly") == "2025-Q4"
    assert posture.previous_period(datetime(2026, 1, 5, tzinfo=UTC), "weekly") == "2026-W01"
    for bad in ("2026-W54", "2026-Q5", "2026-00", "26-01", "2026-1"):
        with pytest.raises(Exception, match="YYYY-Www"):
            statistics.generate(demo_ctx, zj, bad, "zh")
