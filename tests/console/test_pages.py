"""The console over HTTP (no browser): session cookie flags, CSRF, visibility by organisation,
escaping, exports, the audit page, the comparison of two scans, login failures and redirects."""

from __future__ import annotations

import csv
import io
import re

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from medrisk.platform import filings
from medrisk.platform.demo import _principal
from medrisk.store.models import Filing, Organisation, Scan
from tests.console.conftest import running_console, seed_channel_findings

TINY = "android.appsecurity.cts.tinyapp"


def client(console) -> httpx.Client:
    return httpx.Client(base_url=console.base, timeout=60, follow_redirects=False)


def login(console, username: str) -> httpx.Client:
    c = client(console)
    page = c.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    data = {"csrf": csrf, "username": username, "password": console.users[username].password, "next": "/console/"}
    if console.users[username].totp_secret:
        data["totp"] = console.totp(username)
    r = c.post("/console/login", data=data)
    assert r.status_code == 303, r.text
    return c


def csrf_of(c: httpx.Client, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', c.get(path).text).group(1)


def fid(console, package: str) -> int:
    with console.ctx.db.session() as db:
        return db.scalar(select(Filing.id).where(Filing.package == package))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def console(request, tmp_path_factory, scan_runner, corpus_dir):
    """These pages on both databases (the browser journeys run on SQLite)."""
    yield from running_console(request, tmp_path_factory.mktemp(f"console-{request.param}"), request.param, scan_runner)


@pytest.fixture(scope="module")
def hz(console) -> httpx.Client:
    return login(console, "hz.regulator")


def test_session_cookie_and_security_headers(console):
    c = client(console)
    page = c.get("/console/login")
    assert page.status_code == 200
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert header in page.headers
    assert "script-src 'self'" in page.headers["content-security-policy"]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    u = console.users["corp.builder"]
    r = c.post("/console/login", data={"csrf": csrf, "username": u.username, "password": u.password})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "medrisk_session=mrs_" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    token = cookie.split("medrisk_session=")[1].split(";")[0]
    home = c.get("/console/")
    assert home.status_code == 200 and token not in home.text  # the token never reaches a page
    assert c.get("/").headers["location"] == "/console/"


def test_login_failures_and_redirect_target(console):
    c = client(console)
    page = c.get("/console/login", params={"next": "//evil.example/steal"})
    assert 'name="next" value="/console/"' in page.text  # no open redirect
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    bad = c.post("/console/login", data={"csrf": csrf, "username": "hz.regulator", "password": "wrong-Password-1"})
    assert bad.status_code == 401 and "登录失败" in bad.text
    nobody = c.post("/console/login", data={"csrf": csrf, "username": "no.such.user", "password": "wrong-Password-1"})
    assert nobody.status_code == 401 and re.sub(r"\s+", " ", nobody.text) == re.sub(r"\s+", " ", bad.text)
    # the login form itself is CSRF protected (a pre-login cookie bound to the form)
    fresh = client(console)
    forged = fresh.post("/console/login", data={"csrf": "x", "username": "hz.regulator", "password": "p"})
    assert forged.status_code == 403
    assert c.get("/console/").headers["location"].startswith("/console/login")


def test_state_changes_need_the_csrf_token_and_same_origin(console, hz):
    app = fid(console, "fr.mobdev.blooddonation")
    body = {"action": "suspend", "reason": "test", "confirm": "yes"}
    assert hz.post(f"/console/apps/{app}/action", data=body).status_code == 403
    assert hz.post(f"/console/apps/{app}/action", data={**body, "csrf": "0" * 64}).status_code == 403
    token = csrf_of(hz, f"/console/apps/{app}")
    other = hz.post(
        f"/console/apps/{app}/action", data={**body, "csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert other.status_code == 403
    no_reason = hz.post(f"/console/apps/{app}/action", data={"action": "suspend", "confirm": "yes", "csrf": token})
    assert no_reason.status_code == 422 and "原因" in no_reason.text
    assert hz.post(f"/console/apps/{app}/upload", content=b"PK").status_code == 403  # upload: token in a header
    ok = hz.post(f"/console/apps/{app}/action", data={**body, "csrf": token})
    assert ok.status_code == 303
    page = hz.get(f"/console/apps/{app}")
    assert "已熔断" in page.text
    with console.ctx.db.session() as db:
        from medrisk.store.models import AuditEntry

        entry = db.scalars(
            select(AuditEntry).where(AuditEntry.action == "disposition.transition").order_by(AuditEntry.seq.desc())
        ).first()
        assert entry.actor == "hz.regulator" and entry.details["to"] == "suspended"


def test_visibility_follows_the_organisation_tree(console, hz):
    nj = login(console, "nj.builder")
    corp_app = fid(console, "fr.mobdev.blooddonation")
    with console.ctx.db.session() as db:
        corp_scan = db.scalar(select(Scan.id).where(Scan.filing_id == corp_app))
        js = db.scalar(select(Organisation.id).where(Organisation.name == "江苏省卫生健康委员会"))
    for path in (
        f"/console/apps/{corp_app}",
        f"/console/scans/{corp_scan}",
        f"/console/scans/{corp_scan}/report.html",
        f"/console/scans/{corp_scan}/report.pdf.sig",
        f"/console/apps/{corp_app}/compare",
    ):
        assert nj.get(path).status_code == 404, path
    mine = nj.get("/console/").text
    assert "南京健康云" in mine and "无偿献血助手" not in mine and "糖尿病健康管理" not in mine
    assert hz.get(f"/console/orgs/{js}").status_code == 404  # another province
    assert nj.get("/console/audit").status_code == 403  # builders have no audit permission
    assert nj.get("/console/exports/apps.csv").status_code == 403  # nor exports


def test_exports_respect_visibility_and_neutralise_formulas(console):
    with console.ctx.db.session() as db:
        p = _principal(db, "hosp.builder")
        f = filings.create_filing(
            console.ctx,
            db,
            p,
            {
                "name": '=HYPERLINK("http://evil.example")<script>alert(1)</script>',
                "package": "com.example.formula",
                "platform": "android",
                "app_type": "问诊挂号类",
                "current_version": "1.0",
                "privacy_policy_url": "https://example.org/p",
            },
        )
        formula_id = f.id
    admin = login(console, "hosp.admin")
    page = admin.get(f"/console/apps/{formula_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    rows = list(csv.DictReader(io.StringIO(admin.get("/console/exports/apps.csv").content.decode("utf-8-sig"))))
    names = {r["name"] for r in rows}
    assert "糖尿病健康管理" in names and "无偿献血助手" not in names and "南京健康云" not in names
    formula = next(r for r in rows if r["filing_id"] == str(formula_id))
    assert formula["name"].startswith("'=")
    wb = load_workbook(io.BytesIO(admin.get("/console/exports/findings.xlsx").content))
    ws = wb.active
    header = [c.value for c in next(ws.iter_rows(max_row=1))]
    assert header[:3] == ["filing_id", "institution", "name"]
    packages = {r[3] for r in ws.iter_rows(min_row=2, values_only=True)}
    assert packages and packages <= {"com.example.kbb12.dms", "com.htbridge.pivaa"}
    xlsx_apps = load_workbook(io.BytesIO(admin.get("/console/exports/apps.xlsx").content)).active
    cell = next(r for r in xlsx_apps.iter_rows(min_row=2, values_only=True) if r[0] == formula_id)[2]
    assert cell.startswith("'=")  # stored as text, not a formula
    with console.ctx.db.session() as db:
        from medrisk.store.models import AuditEntry

        actions = set(db.scalars(select(AuditEntry.action).where(AuditEntry.actor == "hosp.admin")))
    assert {"export.apps", "export.findings"} <= actions


def test_audit_search_and_chain_verification(console):
    aud = login(console, "nat.auditor")
    page = aud.get("/console/audit", params={"action": "login."})
    assert page.status_code == 200 and "login.success" in page.text and "filing.approved" not in page.text
    checked = aud.get("/console/audit", params={"verify": 1})
    assert "审计日志完整" in checked.text
    status = re.search(r'data-testid="chain-status">(.*?)</p>', aud.get("/console/audit").text, re.S).group(1)
    assert "nat.auditor" in status and "<b>OK</b>" in status  # the last verification, without walking the chain
    with console.ctx.db.session() as db:
        from medrisk.store.models import AuditEntry

        e = db.get(AuditEntry, 5)
        e.details = {**e.details, "edited": True}  # tamper with one entry
    tampered = aud.get("/console/audit", params={"verify": 1}).text
    assert "审计日志被篡改" in tampered and "#5" in tampered


def test_compare_two_scans(console, corpus_dir):
    """Two real releases of one package: the comparison splits the findings into fixed/new/unchanged."""
    c = login(console, "nj.builder")
    with console.ctx.db.session() as db:
        from medrisk.platform.versions import inspect_package

        cert = inspect_package((corpus_dir / "apksig-debuggable-boolean.apk").read_bytes()).certificates
        f = filings.create_filing(
            console.ctx,
            db,
            _principal(db, "nj.builder"),
            {
                "name": "对比测试",
                "package": TINY,
                "platform": "android",
                "app_type": "问诊挂号类",
                "current_version": "1.0",
                "privacy_policy_url": "https://example.org/p",
                "signing_certificates": cert,
            },
        )
        app = f.id
    token = csrf_of(c, f"/console/apps/{app}")
    for name in ("apksig-debuggable-boolean.apk", "apksig-debuggable-resource.apk"):
        r = c.post(
            f"/console/apps/{app}/upload",
            params={"file_name": name},
            content=(corpus_dir / name).read_bytes(),
            headers={"X-CSRF-Token": token, "Origin": console.base},
        )
        assert r.status_code == 200 and r.json()["ok"], r.text
    with console.ctx.db.session() as db:
        a, b = db.scalars(select(Scan).where(Scan.filing_id == app).order_by(Scan.id)).all()
    ra = {x["rule_id"] for x in a.result["findings"] if not x["suppressed"]}
    rb = {x["rule_id"] for x in b.result["findings"] if not x["suppressed"]}
    page = c.get(f"/console/apps/{app}/compare", params={"a": a.id, "b": b.id}).text
    counts = dict(re.findall(r"<h2>(已修复|新增|未变化) \((\d+)\)</h2>", page))
    assert counts == {"已修复": str(len(ra - rb)), "新增": str(len(rb - ra)), "未变化": str(len(ra & rb))}
    assert len(ra & rb) > 0


def test_lookalikes_panel_shows_open_verdicts_of_the_jurisdiction(console, hz):
    """Channel monitoring's verdicts (medrisk.channels) appear on the overview of the region only."""
    from medrisk.store.models import Channel, ChannelListing, ChannelVerdict, utcnow

    corp_app = fid(console, "fr.mobdev.blooddonation")
    with console.ctx.db.session() as db:
        f = db.get(Filing, corp_app)
        hz_org = db.scalar(select(Organisation.id).where(Organisation.name == "杭州市卫生健康委员会"))
        ch = Channel(org_id=hz_org, name="测试应用市场", kind="folder", url="/tmp/none", created_at=utcnow())
        db.add(ch)
        db.flush()
        listing = ChannelListing(
            channel_id=ch.id,
            org_id=f.org_id,
            listing_key="fr.mobdev.blooddonati0n@1",
            package="fr.mobdev.blooddonati0n",
            app_name="无偿献血助手 Pro",
        )
        db.add(listing)
        db.flush()
        db.add(
            ChannelVerdict(
                dedupe_key=f"lookalike:{listing.id}",
                kind="lookalike",
                severity="high",
                channel_id=ch.id,
                listing_id=listing.id,
                filing_id=f.id,
                org_id=f.org_id,
                score=0.93,
            )
        )
    page = hz.get("/console/").text
    panel = page.split("仿冒应用 (")[1].split("</section>")[0]
    assert panel.startswith("1)") and "无偿献血助手 Pro" in panel and "测试应用市场" in panel
    assert f"/console/apps/{corp_app}" in panel
    js = login(console, "js.regulator")
    assert "无偿献血助手 Pro" not in js.get("/console/").text


def test_app_page_channels_section_and_lookalike_evidence(console, hz):
    """The app's channel section (``ChannelService.app_view``): versions per channel with drift, the
    tampered copy's fingerprints and the look-alike's scores against their thresholds; the overview
    panel shows the same evidence and links to the app."""
    ids = seed_channel_findings(console, "com.example.kbb12.dms", "渠道监测测试市场")
    page = hz.get(f"/console/apps/{ids['filing']}").text
    section = page.split('id="channels"')[1].split("</section>")[0]
    assert "渠道监测测试市场" in section and "9.9" in section and "≠" in section  # the drifted version
    assert "bb" * 32 in section and "aa" * 32 in section and "['" not in section  # listed vs filed signer
    assert "0.910" in section and "阈值 0.85" in section and "距离 6" in section
    overview = hz.get("/console/").text
    panel = overview.split('class="card wide lookalikes"')[1].split("</section>")[0]
    assert f"/console/apps/{ids['filing']}#channels" in panel and "糖尿病健康管理 专业版" in panel
    assert "阈值 0.85" in panel and "bb" * 32 in panel
    builder = login(console, "hosp.builder")  # the institution sees where its app is published
    mine = builder.get(f"/console/apps/{ids['filing']}").text
    assert "渠道监测测试市场" in mine and "/verdicts/" not in mine  # no dismissal for builders
    hz.cookies.set("medrisk_lang", "en", domain="127.0.0.1", path="/console")
    try:
        en = hz.get(f"/console/apps/{ids['filing']}").text
    finally:
        hz.cookies.delete("medrisk_lang", domain="127.0.0.1", path="/console")
    assert "Channel monitoring" in en and "Threshold 0.85" in en


def test_regulator_dismisses_a_verdict_with_a_reason(console, hz):
    from medrisk.store.models import AuditEntry, ChannelVerdict

    ids = seed_channel_findings(console, "com.htbridge.pivaa", "排除测试市场")
    app = f"/console/apps/{ids['filing']}"
    page = hz.get(app).text
    assert f'action="/console/verdicts/{ids["lookalike"]}/dismiss"' in page
    token = csrf_of(hz, app)
    url = f"/console/verdicts/{ids['lookalike']}/dismiss"
    no_box = hz.post(url, data={"csrf": token, "reason": "授权合作方", "back": app})
    assert no_box.status_code == 422
    no_reason = hz.post(url, data={"csrf": token, "reason": " ", "confirm": "yes", "back": app})
    assert no_reason.status_code == 422
    builder = login(console, "hosp.builder")
    b_token = csrf_of(builder, app)
    denied = builder.post(url, data={"csrf": b_token, "reason": "不是仿冒", "confirm": "yes", "back": app})
    assert denied.status_code == 403
    js = login(console, "js.regulator")  # another province: not visible
    js_token = csrf_of(js, "/console/")
    assert js.post(url, data={"csrf": js_token, "reason": "x" * 5, "confirm": "yes"}).status_code == 404
    ok = hz.post(url, data={"csrf": token, "reason": "授权合作方的定制版", "confirm": "yes", "back": app})
    assert ok.status_code == 303 and ok.headers["location"] == f"{app}?ok=dismissed"
    with console.ctx.db.session() as db:
        v = db.get(ChannelVerdict, ids["lookalike"])
        assert v.status == "dismissed" and v.dismissed_reason == "授权合作方的定制版"
        assert db.scalar(select(AuditEntry.seq).where(AuditEntry.target == f"channel-verdict:{v.id}")) is not None
    page = hz.get(app).text
    assert f'action="/console/verdicts/{ids["lookalike"]}/dismiss"' not in page and "已排除" in page
    assert f"verdict-{ids['lookalike']}" not in hz.get("/console/").text.split("lookalikes")[1]
    evil = hz.post(
        f"/console/verdicts/{ids['tampered']}/dismiss",
        data={"csrf": token, "reason": "重新签名的官方包", "confirm": "yes", "back": "https://evil.example/"},
    )
    assert evil.headers["location"] == "/console/?ok=dismissed"  # no open redirect


def test_a_regulator_without_totp_enrols_before_anything_else(console):
    import pyotp

    from medrisk.platform.users import create_user

    with console.ctx.db.session() as db:
        js = db.scalar(select(Organisation.id).where(Organisation.name == "江苏省卫生健康委员会"))
        create_user(
            console.ctx, db, None, org_id=js, username="js.newcomer", role="regulator", password="Js-Newcomer-2026!"
        )
    c = client(console)
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/login").text).group(1)
    r = c.post("/console/login", data={"csrf": csrf, "username": "js.newcomer", "password": "Js-Newcomer-2026!"})
    assert r.status_code == 303 and r.headers["location"] == "/console/enrol"
    assert c.get("/console/").headers["location"] == "/console/enrol"  # nothing else until enrolled
    page = c.get("/console/enrol").text
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    wrong = c.post("/console/enrol", data={"csrf": token, "totp": "000000"})
    assert wrong.status_code == 422 and "动态口令不正确" in wrong.text
    ok = c.post("/console/enrol", data={"csrf": token, "totp": pyotp.TOTP(secret).now()})
    assert ok.status_code == 303
    assert "安全态势：江苏省卫生健康委员会" in c.get("/console/").text


def test_periodic_report_on_demand_subscription_and_logout(console):
    from medrisk.store.models import NotifyEndpoint, Report, ReportSubscription, utcnow

    zj = login(console, "zj.regulator")
    token = csrf_of(zj, "/console/reports")
    period = utcnow().strftime("%Y-%m")
    r = zj.post("/console/reports/generate", data={"csrf": token, "period": period})
    assert r.status_code == 303
    with console.ctx.db.session() as db:
        rep = db.scalars(select(Report).where(Report.kind == "periodic")).one()
        zj_org = db.scalar(select(Organisation.id).where(Organisation.name == "浙江省卫生健康委员会"))
        assert rep.org_id == zj_org and rep.meta["period"] == period
        ep = NotifyEndpoint(org_id=zj_org, kind="email", address="zj-stats@example.org", created_at=utcnow())
        db.add(ep)
        db.flush()
        ep_id = ep.id
    listing = zj.get("/console/reports").text
    assert f"/console/reports/{rep.id}/download" in listing and rep.sm3[:16] in listing
    pdf = zj.get(f"/console/reports/{rep.id}/download")
    sig = zj.get(f"/console/reports/{rep.id}/signature")
    assert pdf.content.startswith(b"%PDF-") and console.ctx.keys.verify(sig.content, pdf.content)
    assert zj.post("/console/reports/subscribe", data={"csrf": token, "endpoint": ep_id}).status_code == 303
    with console.ctx.db.session() as db:
        sub = db.scalars(select(ReportSubscription)).one()
        assert sub.org_id == zj_org and sub.endpoint_id == ep_id and sub.period == "monthly"
    js = login(console, "js.regulator")  # another province: neither the report nor the endpoint
    assert js.get(f"/console/reports/{rep.id}/download").status_code == 404
    js_token = csrf_of(js, "/console/reports")
    assert js.post("/console/reports/subscribe", data={"csrf": js_token, "endpoint": ep_id}).status_code == 404
    session = zj.cookies.get("medrisk_session")
    replay = client(console)
    replay.cookies.set("medrisk_session", session, path="/console")
    assert replay.get("/console/reports").status_code == 200  # the cookie alone is the session ...
    assert zj.post("/console/logout", data={"csrf": token}).status_code == 303
    assert (
        replay.get("/console/reports").headers["location"].startswith("/console/login")
    )  # revoked, not just forgotten


def test_subscriptions_made_in_the_console_are_delivered_by_the_schedule(console, hz, smtp):
    """End to end: a regulator subscribes an e-mail endpoint (monthly by default, and weekly) on the
    reports page; the console's background schedule generates each period's signed report and sends
    it to a real SMTP server on loopback, once."""
    import time

    from medrisk.loop.notify import NotifyConfig
    from medrisk.reports import posture
    from medrisk.store.models import NotifyEndpoint, ReportSubscription, utcnow
    from medrisk.web.console import Background

    box, port = smtp
    address = f"hz-{str(console.ctx.db.url).split(':')[0].split('+')[0]}@example.org"
    with console.ctx.db.session() as db:
        hz_org = db.scalar(select(Organisation.id).where(Organisation.name == "杭州市卫生健康委员会"))
        ep = NotifyEndpoint(org_id=hz_org, kind="email", address=address, language="zh", created_at=utcnow())
        db.add(ep)
        db.flush()
        ep_id = ep.id
    page = hz.get("/console/reports").text
    assert f'<option value="{ep_id}">email {address}</option>' in page and 'value="weekly"' in page
    token = csrf_of(hz, "/console/reports")
    assert hz.post("/console/reports/subscribe", data={"csrf": token, "endpoint": ep_id}).status_code == 303
    weekly = {"csrf": token, "endpoint": ep_id, "period": "weekly"}
    assert hz.post("/console/reports/subscribe", data=weekly).status_code == 303
    bad = {"csrf": token, "endpoint": ep_id, "period": "hourly"}
    assert hz.post("/console/reports/subscribe", data=bad).status_code == 422
    with console.ctx.db.session() as db:
        subs = db.scalars(select(ReportSubscription).where(ReportSubscription.endpoint_id == ep_id)).all()
        assert sorted(s.period for s in subs) == ["monthly", "weekly"]
    assert console.ctx.loop is not None
    saved = console.ctx.loop.config
    console.ctx.loop.config = NotifyConfig(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")
    try:
        schedule = Background(console.ctx)
        schedule.run_once(time.monotonic() + 7200)  # what the thread does every hour
        mails = box.to(address)
        now = utcnow()
        periods = {posture.previous_month(now), posture.previous_period(now, "weekly")}
        assert len(mails) == 2 and {p for p in periods for m in mails if p in m["Subject"]} == periods
        schedule.run_once(time.monotonic() + 4 * 3600)
        assert len(box.to(address)) == 2  # sent once
    finally:
        console.ctx.loop.config = saved
    quarter = f"{utcnow().year}-q{(utcnow().month - 1) // 3 + 1}"  # on demand, any period kind
    assert hz.post("/console/reports/generate", data={"csrf": token, "period": quarter}).status_code == 303
    listing = hz.get("/console/reports").text
    assert "每周" in listing and posture.previous_period(utcnow(), "weekly") in listing
    assert quarter.upper() in listing
