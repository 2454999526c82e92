"""The console's main journeys in real headless Chromium against a running server.

One test walks the issue's journeys in order, because each step builds on the previous one:
the regulator logs in with TOTP, reads the dashboard, approves a filing and issues a notice,
downloads a signed PDF and verifies it with openssl; the builder of that institution uploads a
release and reads its findings; the builder cannot open another institution's app by URL.
Screenshots of every page are saved and checked (size, not blank).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image
from sqlalchemy import select

from medrisk.store.models import Filing, Scan
from tests.conftest import require_tool
from tests.console.conftest import seed_channel_findings

VIEW = {"width": 1280, "height": 800}


def check_screenshot(path: Path, full_page: bool = False, view: dict[str, int] = VIEW) -> None:
    img = Image.open(path)
    assert img.width == view["width"], img.size
    assert img.height == view["height"] if not full_page else img.height >= view["height"] // 2, img.size
    grey = img.convert("L")
    low, high = grey.getextrema()
    assert high - low > 100, f"{path.name} looks blank (grey levels {low}-{high})"
    colours = img.convert("RGB").resize((320, 200)).getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 30, f"{path.name} has almost no content"


def shot(page, artifacts: Path, name: str, full_page: bool = False, view: dict[str, int] = VIEW) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    check_screenshot(path, full_page, view)
    return path


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden')
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map(e => e.outerHTML)"""


def login(page, base: str, username: str, password: str, totp: str | None = None) -> None:
    page.goto(base + "/console/login")
    page.fill("#username", username)
    page.fill("#password", password)
    if totp:
        page.fill("#totp", totp)
    page.click("form button[type=submit]")
    page.wait_for_url(base + "/console/")


def filing_id(console, package: str) -> int:
    with console.ctx.db.session() as db:
        fid = db.scalar(select(Filing.id).where(Filing.package == package))
        assert fid is not None
        return fid


def org_ids(console) -> dict[str, int]:
    from medrisk.store.models import Organisation

    with console.ctx.db.session() as db:
        return {name: oid for oid, name in db.execute(select(Organisation.id, Organisation.name))}


def test_console_journeys(console, browser, artifacts, tmp_path, corpus_dir):
    base = console.base
    u = console.users
    openssl = require_tool("openssl")

    # --- the regulator (Hangzhou), with TOTP ---------------------------------------------------------
    reg = browser.new_context(viewport=VIEW, accept_downloads=True, locale="zh-CN")
    page = reg.new_page()
    page.goto(base + "/console/")
    assert page.url.startswith(base + "/console/login")  # not logged in: to the login page
    order = [page.evaluate("document.activeElement.id")]  # keyboard users start in the form (autofocus)
    for _ in range(3):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
    assert order == ["username", "password", "totp", "BUTTON"]
    assert page.evaluate(UNLABELLED) == []
    page.fill("#username", "hz.regulator")
    page.fill("#password", u["hz.regulator"].password)
    page.click("form button[type=submit]")  # no one-time code: refused
    assert page.locator("[role=alert]").inner_text().startswith("此账号需要动态口令")
    login(page, base, "hz.regulator", u["hz.regulator"].password, console.totp("hz.regulator"))
    assert "安全态势：杭州市卫生健康委员会" in page.locator("h1").inner_text()
    graded = int(page.locator(".kpi", has_text="已评级").locator("b").inner_text())
    assert graded == 3  # the three Hangzhou releases of the demo, scanned for real
    assert page.locator("svg title", has_text="等级分布").count() == 1
    assert page.locator("section", has_text="最常见的问题").locator("td b").count() >= 3
    shot(page, artifacts, "01-regulator-overview")
    shot(page, artifacts, "01-regulator-overview-full", full_page=True)
    tablet = {"width": 768, "height": 1024}
    page.set_viewport_size(tablet)
    no_scroll = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert no_scroll, "the overview scrolls sideways on a tablet"
    shot(page, artifacts, "01-regulator-overview-tablet", view=tablet)
    page.set_viewport_size(VIEW)

    # the work queue lists the filing to review; approve it with a reason and the confirmation
    page.click("header nav >> text=待办")
    page.wait_for_url(base + "/console/queue")
    shot(page, artifacts, "02-queue")
    page.click("text=互联网医院在线问诊")
    fid = filing_id(console, "owasp.sat.agoat")
    page.wait_for_url(f"{base}/console/apps/{fid}")
    page.check("input[name=decision][value=approved]")
    page.fill("#review-reason", "材料齐全，同意备案")
    page.click("section.action >> button[type=submit]")  # the confirmation box is not ticked yet
    assert page.url == f"{base}/console/apps/{fid}"  # the browser refused: required checkbox
    page.check("section.action input[name=confirm]")
    page.click("section.action >> button[type=submit]")
    page.wait_for_url(f"{base}/console/apps/{fid}?ok=approved")
    assert "已批准" in page.locator("p.sub").inner_text()
    # issue a rectification notice (now possible: the filing is approved and monitored)
    page.select_option("#action", "issue_notice")
    page.fill("#days", "15")
    page.fill("#action-reason", "隐私政策未列明第三方 SDK")
    page.check("section.action input[name=confirm]")
    page.click("section.action >> button.danger")
    page.wait_for_url(f"{base}/console/apps/{fid}?ok=issue_notice")
    assert "整改中" in page.locator("p.sub").inner_text()
    assert page.locator("table", has_text="隐私政策未列明第三方 SDK").count() == 1  # the disposition history
    shot(page, artifacts, "03-app-after-notice", full_page=True)
    assert page.evaluate(UNLABELLED) == []  # every control of the action forms has a label

    # open a scanned app and download its signed PDF; openssl verifies it with the published key
    dms = filing_id(console, "com.example.kbb12.dms")
    page.goto(f"{base}/console/apps/{dms}")
    with page.expect_download() as dl:
        page.click("a[data-testid=pdf]")
    pdf = tmp_path / dl.value.suggested_filename
    dl.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")
    with page.expect_download() as dl_sig:
        page.click("p.reports >> text=签名 >> nth=0")
    sig = tmp_path / dl_sig.value.suggested_filename
    dl_sig.value.save_as(sig)
    assert sig.name == pdf.name + ".sig"
    key = tmp_path / "platform-key.pem"
    key.write_bytes(page.request.get(base + "/.well-known/medrisk/platform-key.pem").body())
    cmd = [openssl, "dgst", "-sm3", "-verify", str(key), "-sigopt", "distid:1234567812345678", "-signature"]
    ok = subprocess.run([*cmd, str(sig), str(pdf)], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verified OK" in ok.stdout, ok.stdout + ok.stderr
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(pdf.read_bytes() + b"%")
    bad = subprocess.run([*cmd, str(sig), str(tampered)], capture_output=True, text=True)
    assert bad.returncode != 0 and "Verified OK" not in bad.stdout
    # the English switch
    page.click("text=English")
    assert "Filing" in page.locator("main").inner_text()
    page.click("text=中文")
    reg.close()

    # --- the national regulator drills down: region chart → province → city → institution → app -----
    orgs = org_ids(console)
    nat = browser.new_context(viewport=VIEW, locale="zh-CN")
    page = nat.new_page()
    login(page, base, "nat.regulator", u["nat.regulator"].password, console.totp("nat.regulator"))
    assert "安全态势：国家卫生健康委员会" in page.locator("h1").inner_text()
    bars = page.locator("section", has_text="按下级地区").locator("svg a.bar-link")
    assert bars.count() == 2  # 浙江省 and 江苏省, each bar a link
    page.locator(f"svg a[href='/console/orgs/{orgs['浙江省卫生健康委员会']}']").click()  # the bar in the chart
    page.wait_for_url(f"{base}/console/orgs/{orgs['浙江省卫生健康委员会']}")
    assert "安全态势：浙江省卫生健康委员会" in page.locator("h1").inner_text()
    assert page.locator("nav.crumbs a").all_inner_texts() == ["国家卫生健康委员会", "浙江省卫生健康委员会"]
    page.click("table.regions >> text=杭州市卫生健康委员会")  # the table beside the chart
    page.wait_for_url(f"{base}/console/orgs/{orgs['杭州市卫生健康委员会']}")
    assert "安全态势：杭州市卫生健康委员会" in page.locator("h1").inner_text()
    shot(page, artifacts, "07-drill-city")
    page.locator(f"svg a[href='/console/orgs/{orgs['杭州市示范人民医院']}']").click()  # an institution's bar
    page.wait_for_url(f"{base}/console/orgs/{orgs['杭州市示范人民医院']}")
    apps = page.locator("table.apps").inner_text()
    assert "糖尿病健康管理" in apps and "互联网医院在线问诊" not in apps  # that hospital's apps only
    page.click("table.apps >> text=糖尿病健康管理")
    page.wait_for_url(f"{base}/console/apps/{dms}")
    assert page.locator("section#channels h2").inner_text().startswith("渠道监测")
    shot(page, artifacts, "08-drill-app")

    # channel monitoring finds a look-alike: the overview's panel shows its evidence and leads to the
    # app's channel section, where the regulator dismisses it with a reason and the confirmation
    found = seed_channel_findings(console, "com.example.kbb12.dms", "浏览器测试市场")
    page.goto(base + "/console/")
    panel = page.locator("section.lookalikes")
    row = panel.locator(f"tr#verdict-{found['lookalike']}")
    row.locator("summary").click()
    assert "阈值 0.85" in row.inner_text() and "某某科技" in row.inner_text()
    shot(page, artifacts, "09-lookalikes-panel")
    row.locator(f"a[href='/console/apps/{dms}#channels']").click()
    page.wait_for_url(f"{base}/console/apps/{dms}#channels")
    verdict = page.locator(f"section#channels tr#verdict-{found['lookalike']}")
    verdict.locator("summary", has_text="排除").click()
    verdict.locator("textarea").fill("授权合作方的定制版，非仿冒")
    verdict.locator("button[type=submit]").click()  # not confirmed yet: the browser refuses
    assert page.url == f"{base}/console/apps/{dms}#channels"
    verdict.locator("input[name=confirm]").check()
    verdict.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/console/apps/{dms}?ok=dismissed")
    assert "已排除" in page.locator(f"section#channels tr#verdict-{found['lookalike']}").inner_text()
    page.locator("section#channels").scroll_into_view_if_needed()
    shot(page, artifacts, "10-app-channels")
    assert page.evaluate(UNLABELLED) == []
    nat.close()

    # --- the builder of that institution: uploads a release and reads its findings -----------------
    bld = browser.new_context(viewport=VIEW, locale="zh-CN")
    page = bld.new_page()
    login(page, base, "corp.builder", u["corp.builder"].password)
    table = page.locator("table.apps").inner_text()
    assert "互联网医院在线问诊" in table and "无偿献血助手" in table
    assert "糖尿病健康管理" not in table and "南京健康云" not in table  # other institutions' apps
    assert page.locator("section.attention", has_text="互联网医院在线问诊").count() == 1  # the notice
    shot(page, artifacts, "04-builder-my-apps")
    page.click("table.apps >> text=互联网医院在线问诊")
    page.wait_for_url(f"{base}/console/apps/{fid}")
    assert page.evaluate(UNLABELLED) == []
    page.set_input_files("#apk", str(corpus_dir / "AndroGoat.apk"))
    page.click("form.upload button[type=submit]")
    page.wait_for_url(f"{base}/console/apps/{fid}?ok=uploaded", timeout=60_000)
    with console.ctx.db.session() as db:
        scan = db.scalars(select(Scan).where(Scan.filing_id == fid)).one()
        assert scan.status == "done" and scan.grade in ("A", "B", "C")
        scan_id, grade = scan.id, scan.grade
    row = page.locator("tr", has_text=f"#{scan_id}")
    assert grade in row.inner_text()
    page.click(f"a[href='/console/scans/{scan_id}']")
    page.wait_for_url(f"{base}/console/scans/{scan_id}")
    groups = page.locator("section.group h3")
    assert groups.count() >= 2  # findings grouped by category
    first = page.locator("details.finding").first
    first.locator("summary").click()
    assert "修复建议" in first.inner_text() and "证据" in first.inner_text()
    shot(page, artifacts, "05-builder-scan")

    # --- ... and cannot open another institution's app, scan or report by URL ---------------------
    with console.ctx.db.session() as db:
        other_scan = db.scalar(select(Scan.id).where(Scan.filing_id == dms))
    for path in (f"/console/apps/{dms}", f"/console/scans/{other_scan}", f"/console/scans/{other_scan}/report.pdf"):
        resp = page.goto(base + path)
        assert resp is not None and resp.status == 404, path
    assert "未找到" in page.locator("main").inner_text()
    shot(page, artifacts, "06-builder-404")
    bld.close()
