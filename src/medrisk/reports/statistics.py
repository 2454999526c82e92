"""The periodic statistical report of a jurisdiction (white paper §5.3): counts and trends by grade,
region, institution and category, top risks and the dispositions taken in the period.

``generate`` renders one period (a month by default, the previous one; or an ISO week, a quarter,
a year) as a signed PDF and keeps it; ``run_due`` is the scheduled part: for every subscription
it makes sure the report of its last complete period (last month for ``monthly``) exists and
is delivered to the subscription's notification endpoint through the loop's notification
machinery (``loop/notify.py``: SMTP or an HMAC-SM3 signed webhook), retrying on the next run
until it is sent. The report itself is not attached: it is confidential, so the message carries
its number, SM3 digest and a console link behind login.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from medrisk.platform import audit
from medrisk.platform.context import Platform
from medrisk.platform.errors import Invalid, NotFound
from medrisk.platform.principal import Principal
from medrisk.reports import charts, posture, signing
from medrisk.reports.i18n import pick
from medrisk.reports.pdf import css, env, html_to_pdf
from medrisk.store.models import (
    Notification,
    NotifyEndpoint,
    Organisation,
    Report,
    ReportDelivery,
    ReportSubscription,
    utcnow,
)

log = logging.getLogger(__name__)
PUBLIC_URL_ENV = "MEDRISK_PUBLIC_URL"

LABELS: dict[str, dict[str, str]] = {
    "title": {"zh": "移动医疗应用安全监测统计报告", "en": "Mobile medical app security statistics"},
    "period": {"zh": "统计周期", "en": "Period"},
    "jurisdiction": {"zh": "监管范围", "en": "Jurisdiction"},
    "summary": {"zh": "总体情况", "en": "Summary"},
    "apps": {"zh": "备案应用", "en": "Filed apps"},
    "graded": {"zh": "已评级应用", "en": "Graded apps"},
    "scans_period": {"zh": "本期完成检测", "en": "Scans finished in the period"},
    "pending": {"zh": "待审核备案", "en": "Filings to review"},
    "rectifying": {"zh": "整改中", "en": "Rectifying"},
    "suspended": {"zh": "已熔断", "en": "Suspended"},
    "grades": {"zh": "当前等级分布", "en": "Current grades"},
    "trend": {"zh": "近 12 个月检测等级趋势", "en": "Grades of scans over 12 months"},
    "regions": {"zh": "按下级地区", "en": "By region"},
    "institutions": {"zh": "按机构", "en": "By institution"},
    "categories": {"zh": "问题类别（涉及应用数）", "en": "Finding categories (apps affected)"},
    "top": {"zh": "主要风险（涉及应用最多的规则）", "en": "Top risks (rules affecting most apps)"},
    "dispositions": {"zh": "本期处置", "en": "Dispositions in the period"},
    "institution": {"zh": "机构", "en": "Institution"},
    "rule": {"zh": "规则", "en": "Rule"},
    "severity": {"zh": "严重程度", "en": "Severity"},
    "apps_affected": {"zh": "涉及应用", "en": "Apps"},
    "state": {"zh": "处置结果", "en": "Outcome"},
    "count": {"zh": "次数", "en": "Count"},
    "total": {"zh": "合计", "en": "Total"},
    "none": {"zh": "无", "en": "none"},
    "report_no": {"zh": "报告编号", "en": "Report no."},
    "generated": {"zh": "生成于", "en": "Generated"},
    "signed": {
        "zh": "本报告已使用平台 SM2 私钥签名（独立签名文件 .sig）",
        "en": "Signed with the platform's SM2 key (detached .sig)",
    },
    "key_id": {"zh": "公钥标识 (SM3)", "en": "Key id (SM3)"},
}


def _labels(lang: str) -> dict[str, str]:
    key = "en" if lang == "en" else "zh"
    return {k: v[key] for k, v in LABELS.items()}


def check_period(period: str) -> str:
    """A month ``YYYY-MM`` (the default), an ISO week ``YYYY-Www``, a quarter ``YYYY-Qn`` or a year."""
    period = (period or "").strip().upper()
    try:
        posture.period_bounds(period)
    except ValueError:
        raise Invalid(
            "the period is a month YYYY-MM, a week YYYY-Www, a quarter YYYY-Qn or a year YYYY", field="period"
        ) from None
    return period


def report_html(ctx: Platform, org_id: int, period: str, lang: str, report_no: str) -> tuple[str, dict[str, Any]]:
    start, end = posture.period_bounds(period)
    L = _labels(lang)
    from medrisk.reports.i18n import sev
    from medrisk.reports.names import state_name

    posture.index_pending(ctx)
    with ctx.db.session() as db:
        root = db.get(Organisation, org_id)
        if root is None:
            raise NotFound(f"organisation {org_id} not found")
        ov = posture.overview(db, root, now=end - timedelta(seconds=1))
        in_period = posture.scans_in_period(db, root, start, end)
        dispositions = posture.transitions_in_period(db, root, start, end)
        cats = posture.category_counts(db, root)
        root_name = root.name
    titles = {r["rule_id"]: pick(r["title"], lang) for r in ov.top_rules}
    stats = {
        "apps": ov.apps,
        "graded": sum(ov.grades.values()),
        "grades": ov.grades,
        "scans_in_period": in_period,
        "dispositions": dispositions,
        "pending": ov.pending_review,
    }
    tpl = env().get_template("stats_report.html")
    html = tpl.render(
        lang=lang,
        L=L,
        css=css(),
        root_name=root_name,
        period=period,
        start=start,
        end=end,
        last_day=end - timedelta(days=1),
        ov=ov,
        in_period=in_period,
        dispositions=sorted(dispositions.items(), key=lambda kv: -kv[1]),
        cats=cats,
        titles=titles,
        report_no=report_no,
        generated=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        kid=ctx.keys.kid,
        openssl=signing.openssl_command(f"medrisk-report-{period}.pdf"),
        sev=lambda s: sev(s, lang),
        state_name=lambda s: state_name(s, lang),
        svg={
            "grades": charts.donut(ov.grades, L["grades"]),
            "trend": charts.trend_lines(ov.trend, L["trend"]),
            "regions": charts.stacked_bars([(b.name, b.grades) for b in ov.regions[:15]], L["regions"]),
            "cats": charts.bars([(c, n) for c, n in cats[:10]], L["categories"], colour="#b36b00"),
        },
    )
    return html, stats


def generate(
    ctx: Platform, org_id: int, period: str | None, lang: str = "zh", *, actor: Principal | None = None
) -> Report:
    """The signed PDF of one period (default: the previous month) for one organisation's subtree
    (rendered once, then kept)."""
    period = check_period(period or posture.previous_month(utcnow()))
    lang = "en" if lang == "en" else "zh"
    subject = f"org:{org_id}:{period}"
    with ctx.db.session() as db:
        existing = signing.find(db, "periodic", subject, lang, "pdf")
        if existing is not None:
            db.expunge(existing)
            return existing
    report_no = f"MR-P{org_id:04d}-{period.replace('-', '')}-{lang.upper()}-{utcnow():%Y%m%d%H%M%S}"
    html, stats = report_html(ctx, org_id, period, lang, report_no)
    data = html_to_pdf(html)
    with ctx.db.session() as db:
        r = signing.store(
            ctx,
            db,
            kind="periodic",
            subject=subject,
            org_id=org_id,
            lang=lang,
            fmt="pdf",
            data=data,
            meta={"report_no": report_no, "period": period, "stats": stats},
            actor=actor,
            period=posture.period_bounds(period),
        )
        db.expunge(r)
        return r


# --- scheduled delivery ----------------------------------------------------------------------------------


def _message(r: Report, org_name: str, ep: NotifyEndpoint, lang: str) -> Notification:
    base = os.environ.get(PUBLIC_URL_ENV, "http://127.0.0.1:8000").rstrip("/")
    period = r.meta.get("period", "")
    link = f"{base}/console/reports/{r.id}/download"
    sig = f"{base}/console/reports/{r.id}/signature"
    zh = (
        f"{org_name} {period} 移动医疗应用安全监测统计报告已生成。\n报告编号：{r.meta.get('report_no')}\n"
        f"下载（需登录）：{link}\n签名：{sig}\n文件 SM3：{r.sm3}\n"
        f"验证：{signing.openssl_command('report.pdf')}"
    )
    en = (
        f"The security statistics report of {org_name} for {period} is ready.\nReport no. {r.meta.get('report_no')}\n"
        f"Download (login required): {link}\nSignature: {sig}\nSM3 of the file: {r.sm3}\n"
        f"Verify: {signing.openssl_command('report.pdf')}"
    )
    subject = f"【MedRisk】{period} 统计报告 / statistics report: {org_name}"
    body = {"zh": zh, "en": en}.get(lang) or zh
    if ep.language == "both":
        body = zh + "\n\n-----\n\n" + en
    return Notification(
        event_id=f"report:{r.id}",
        template="periodic_report",
        channel=ep.kind,
        recipient=ep.address,
        endpoint_id=ep.id,
        audience="regulator",
        subject=subject,
        body=body,
        payload={
            "type": "medrisk.report",
            "report_id": r.id,
            "report_no": r.meta.get("report_no"),
            "period": period,
            "org_id": r.org_id,
            "sm3": r.sm3,
            "download": link,
            "signature": sig,
        },
    )


def _send_webhook(svc: Any, msg: Notification, ep: NotifyEndpoint, delivery_id: int) -> None:
    """Like ``notify.send_webhook`` (same HMAC-SM3 signature), with a delivery id of its own
    (``report-<n>``), so a receiver that deduplicates on X-MedRisk-Delivery never confuses a report
    with a disposition notification."""
    import json

    import httpx

    from medrisk.loop import notify

    secret = notify.endpoint_secret(svc, ep)
    if not secret:
        raise RuntimeError("webhook secret unreadable")
    body = json.dumps({**msg.payload, "subject": msg.subject}, ensure_ascii=False, sort_keys=True).encode()
    ts = int(svc.clock.now().timestamp())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-MedRisk-Timestamp": str(ts),
        "X-MedRisk-Signature": notify.sign_webhook(secret, ts, body),
        "X-MedRisk-Event": msg.event_id,
        "X-MedRisk-Delivery": f"report-{delivery_id}",
    }
    r = httpx.post(ep.address, content=body, headers=headers, timeout=svc.config.webhook_timeout)
    if r.status_code >= 300:
        raise RuntimeError(f"HTTP {r.status_code}")


def deliver(ctx: Platform, delivery_id: int) -> bool:
    """One attempt to send one report to one subscription; recorded, never raises."""
    from medrisk.loop import notify

    with ctx.db.session() as db:
        d = db.get(ReportDelivery, delivery_id)
        if d is None or d.status == "sent":
            return False
        sub = db.get(ReportSubscription, d.subscription_id)
        r = db.get(Report, d.report_id)
        ep = db.get(NotifyEndpoint, sub.endpoint_id) if sub else None
        org = db.get(Organisation, r.org_id) if r else None
        if sub is None or r is None or ep is None or not ep.enabled:
            return False
        for row in (ep, r):
            db.expunge(row)
        msg = _message(r, org.name if org else "", ep, sub.lang)
    error = None
    try:
        if ctx.loop is None:
            raise RuntimeError("notifications are not configured (no closed loop)")
        if ep.kind == "email":
            notify.send_email(ctx.loop.config, msg)
        elif ep.kind == "webhook":
            _send_webhook(ctx.loop, msg, ep, delivery_id)
        else:
            raise RuntimeError(f"endpoint kind {ep.kind} cannot receive reports")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("report %s delivery %s failed: %s", r.id, delivery_id, error)
    with ctx.db.session() as db:
        d = db.get(ReportDelivery, delivery_id)
        assert d is not None
        d.attempts += 1
        d.last_error = error
        if error is None:
            d.status, d.sent_at = "sent", utcnow()
        audit.record(
            ctx.keys,
            db,
            "report.delivered" if error is None else "report.delivery_failed",
            actor_name="system",
            org_id=r.org_id,
            target=f"report:{r.id}",
            details={"subscription": d.subscription_id, "endpoint": ep.id, "attempt": d.attempts},
        )
    return error is None


def run_due(ctx: Platform, now: datetime | None = None) -> int:
    """The scheduled job: for every subscription, the last complete period of its schedule (last
    month for the default ``monthly``; last ISO week, quarter or year), generated and delivered."""
    now = now or utcnow()
    sent = 0
    with ctx.db.session() as db:
        subs = [
            (s.id, s.org_id, s.lang, s.period)
            for s in db.scalars(select(ReportSubscription).order_by(ReportSubscription.id))
        ]
    for sub_id, org_id, lang, schedule in subs:
        period = posture.previous_period(now, schedule if schedule in posture.SCHEDULES else "monthly")
        try:
            r = generate(ctx, org_id, period, lang)
        except Exception:
            log.exception("periodic report for organisation %s failed", org_id)
            continue
        with ctx.db.session() as db:
            d = db.scalars(
                select(ReportDelivery).where(ReportDelivery.report_id == r.id, ReportDelivery.subscription_id == sub_id)
            ).first()
            if d is None:
                d = ReportDelivery(report_id=r.id, subscription_id=sub_id, status="pending", attempts=0)
                db.add(d)
                db.flush()
            if d.status == "sent":
                continue
            delivery_id = d.id
        sent += deliver(ctx, delivery_id)
    return sent
