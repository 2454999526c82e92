"""Per-scan reports of real scans: Chinese text and embedded CJK fonts (pdftotext, pdffonts), no
missing glyphs (every character drawn is in the embedded fonts), page images (pdftoppm), the
detached SM2 signature (openssl and `medrisk verify`), stored once, escaping in HTML."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fontTools.ttLib import TTCollection, TTFont
from PIL import Image
from sqlalchemy import select

from medrisk.platform import filings, versions
from medrisk.platform.demo import _principal
from medrisk.reports import pdf as pdfmod
from medrisk.reports import signing
from medrisk.store.models import Filing, Scan
from tests.conftest import require_tool


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: apt-get install poppler-utils (or run scripts/test.sh)", pytrace=False)
    return path


def scan_of(ctx, package: str) -> Scan:
    with ctx.db.session() as db:
        fid = db.scalar(select(Filing.id).where(Filing.package == package))
        s = db.scalars(select(Scan).where(Scan.filing_id == fid, Scan.status == "done")).first()
        assert s is not None
        return s


@pytest.fixture(scope="module")
def dms_pdf(demo_ctx, tmp_path_factory):
    s = scan_of(demo_ctx, "com.example.kbb12.dms")
    with demo_ctx.db.session() as db:
        r = pdfmod.scan_report(demo_ctx, db, _principal(db, "hosp.builder"), s, "zh", "pdf")
        db.expunge(r)
    out = tmp_path_factory.mktemp("pdf") / "report.pdf"
    out.write_bytes(signing.read(demo_ctx, r))
    out.with_name("report.pdf.sig").write_bytes(signing.signature_der(r))
    return s, r, out


def font_files() -> list[Path]:
    """The font files fontconfig resolves for the report's families (Debian fonts-noto-cjk)."""
    out = []
    for family in ("Noto Sans CJK SC", "Noto Sans CJK SC:bold", "Noto Sans Mono CJK SC"):
        r = subprocess.run(["fc-match", "-f", "%{file}", family], capture_output=True, text=True)
        assert r.returncode == 0 and "NotoSans" in r.stdout, f"{family}: {r.stdout} (apt-get install fonts-noto-cjk)"
        out.append(Path(r.stdout))
    return out


def covered(paths: list[Path]) -> set[int]:
    cps: set[int] = set()
    for p in paths:
        fonts = TTCollection(str(p)).fonts if p.suffix == ".ttc" else [TTFont(str(p))]
        for f in fonts:
            cps.update(f.getBestCmap() or {})
    return cps


def test_scan_pdf_has_chinese_text_embedded_fonts_and_no_missing_glyphs(dms_pdf, tmp_path):
    s, r, path = dms_pdf
    text = subprocess.run([poppler("pdftotext"), "-layout", str(path), "-"], capture_output=True, text=True).stdout
    for expected in (
        "移动医疗应用安全检测报告",
        "糖尿病健康管理",
        "杭州市示范人民医院",
        "修复建议",
        "分类扣分",
        "第三方 SDK",
    ):
        assert expected in text, expected
    assert f"#{s.id}" in text and s.grade in text
    assert (s.result_sm3 or "")[:40] in text.replace("\n", "")  # the digest of what it describes
    assert "\ufffd" not in text
    fonts = subprocess.run([poppler("pdffonts"), str(path)], capture_output=True, text=True).stdout.splitlines()[2:]
    assert fonts and any("Noto-Sans-CJK-SC" in line for line in fonts)
    for line in fonts:
        cols = line.split()
        assert "Type 3" not in line and cols[-5] == "yes", f"font not embedded: {line}"  # emb column
    # every character drawn has a glyph in the embedded fonts: no tofu boxes
    glyphs = covered(font_files())
    missing = {ch for ch in text if not ch.isspace() and ord(ch) not in glyphs}
    assert not missing, f"characters without a glyph: {sorted(missing)[:20]}"
    pages = int(
        next(
            x.split()[-1]
            for x in subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout.splitlines()
            if x.startswith("Pages:")
        )
    )
    assert pages >= 3
    subprocess.run([poppler("pdftoppm"), "-r", "50", "-png", "-f", "1", "-l", "2", str(path), str(tmp_path / "p")])
    for png in sorted(tmp_path.glob("p-*.png")):
        img = Image.open(png)
        assert abs(img.width / img.height - 210 / 297) < 0.01  # A4
        low, high = img.convert("L").getextrema()
        assert high - low > 150
        dark = sum(img.convert("L").histogram()[:128])
        assert dark > 2000, f"{png.name} is nearly empty"


def test_signature_verifies_with_openssl_and_medrisk_verify(demo_ctx, dms_pdf, tmp_path):
    _s, r, path = dms_pdf
    key = tmp_path / "platform-key.pem"
    key.write_bytes(demo_ctx.keys.public_pem())
    openssl = require_tool("openssl")
    base = [openssl, "dgst", "-sm3", "-verify", str(key), "-sigopt", "distid:1234567812345678", "-signature"]
    ok = subprocess.run([*base, str(path) + ".sig", str(path)], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verified OK" in ok.stdout
    cli = [sys.executable, "-m", "medrisk.cli", "verify", str(path), "--public-key", str(key), "--json"]
    res = subprocess.run(cli, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["sm3"] == r.sm3 and out["kid"] == demo_ctx.keys.kid
    bad = tmp_path / "report.pdf"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    bad.write_bytes(bytes(data))
    (tmp_path / "report.pdf.sig").write_bytes((Path(str(path) + ".sig")).read_bytes())
    res = subprocess.run([*cli[:4], str(bad), "--public-key", str(key)], capture_output=True, text=True)
    assert res.returncode == 1 and "INVALID" in res.stdout
    assert subprocess.run([*base, str(path) + ".sig", str(bad)], capture_output=True).returncode != 0
    res = subprocess.run([*cli[:4], str(tmp_path / "nope.pdf"), "--public-key", str(key)], capture_output=True)
    assert res.returncode == 2


def test_a_report_is_rendered_once_and_audited(demo_ctx, dms_pdf):
    s, r, path = dms_pdf
    with demo_ctx.db.session() as db:
        again = pdfmod.scan_report(demo_ctx, db, None, s, "zh", "pdf")
        assert again.id == r.id
        from medrisk.store.models import AuditEntry

        e = db.scalars(select(AuditEntry).where(AuditEntry.target == f"report:{r.id}")).one()
        assert e.action == "report.generated" and e.details["sm3"] == r.sm3
    assert signing.read(demo_ctx, again) == path.read_bytes()


def test_english_html_report_escapes_package_text(demo_ctx, corpus_dir):
    """The HTML report is one offline file; names and strings from the filing are escaped."""
    apk = (corpus_dir / "UnCrackable-Level1.apk").read_bytes()
    facts = versions.inspect_package(apk)
    with demo_ctx.db.session() as db:
        p = _principal(db, "hosp.builder")
        f = filings.create_filing(
            demo_ctx,
            db,
            p,
            {
                "name": "<img src=x onerror=alert(1)>",
                "package": facts.package,
                "platform": "android",
                "app_type": "问诊挂号类",
                "current_version": "1.0",
                "privacy_policy_url": "https://example.org/p",
                "signing_certificates": facts.certificates,
            },
        )
        fid = f.id
    blob = demo_ctx.blobs.put_chunks([apk], len(apk) + 1)
    v = versions.accept_upload(demo_ctx, p, fid, blob, "UnCrackable-Level1.apk")
    with demo_ctx.db.session() as db:
        s = db.scalars(select(Scan).where(Scan.version_id == v.id)).one()
        r = pdfmod.scan_report(demo_ctx, db, p, s, "en", "html")
        db.expunge(r)
    html = signing.read(demo_ctx, r).decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "Mobile medical app security report" in html and "Remediation" in html
    assert demo_ctx.keys.verify(signing.signature_der(r), html.encode())


def test_without_the_cjk_fonts_the_pdf_is_refused_with_the_install_command(monkeypatch, tmp_path):
    """Better no PDF than one with boxes instead of Chinese: fontconfig without any font directory."""
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig></fontconfig>')
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))
    problem = pdfmod._engine_problem.__wrapped__()
    assert problem is not None and "apt-get install fonts-noto-cjk" in problem
    monkeypatch.delenv("FONTCONFIG_FILE")
    assert pdfmod._engine_problem.__wrapped__() is None
