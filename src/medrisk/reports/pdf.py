"""Per-scan reports as HTML and PDF (WeasyPrint), Chinese first, with the Noto CJK fonts embedded.

The HTML is rendered from a Jinja2 template with autoescaping (app names, strings and
evidence come from the package and are attacker-controlled); the PDF is that HTML laid out
by WeasyPrint, which embeds the subset of the fonts it uses (Debian ``fonts-noto-cjk``).
Reports are rendered once per scan, language and format, signed and kept
(``reports.signing.store``).
"""

from __future__ import annotations

import io
import logging
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy.orm import Session

from medrisk.platform.context import Platform
from medrisk.platform.errors import PlatformError
from medrisk.platform.principal import Principal
from medrisk.reports import privacy, signing
from medrisk.reports.i18n import pick, sev
from medrisk.reports.table import _loc
from medrisk.store.models import Filing, Organisation, Report, Scan, utcnow

TEMPLATES = Path(__file__).resolve().parent / "templates"
SEVERITY_ORDER = ["critical", "high", "medium", "low", "info", "secure"]

LABELS: dict[str, dict[str, str]] = {
    "title": {"zh": "移动医疗应用安全检测报告", "en": "Mobile medical app security report"},
    "subtitle": {
        "zh": "MedRisk 移动医疗应用安全风险监测与处置平台",
        "en": "MedRisk security-risk monitoring platform for mobile medical apps",
    },
    "score": {"zh": "安全评分", "en": "Score"},
    "capped": {"zh": "因存在未处理问题封顶：", "en": "capped by an open finding:"},
    "package": {"zh": "包名", "en": "Package"},
    "version": {"zh": "版本", "en": "Version"},
    "institution": {"zh": "备案机构", "en": "Institution"},
    "app_type": {"zh": "应用类型", "en": "App type"},
    "file": {"zh": "文件", "en": "File"},
    "scan": {"zh": "检测编号与时间", "en": "Scan and time"},
    "rules_version": {"zh": "规则库版本", "en": "Rule library"},
    "model_version": {"zh": "风险模型", "en": "risk model"},
    "findings_count": {"zh": "问题统计", "en": "Findings"},
    "report_no": {"zh": "报告编号", "en": "Report no."},
    "generated": {"zh": "生成于", "en": "generated"},
    "result_sm3": {"zh": "检测结果 SM3 摘要", "en": "SM3 of the scan result"},
    "signed": {"zh": "本报告已使用平台 SM2 私钥签名", "en": "This report is signed with the platform's SM2 key"},
    "signed_text": {
        "zh": "签名为独立文件（.sig，DER，SM2-with-SM3，用户标识 1234567812345678），覆盖本文件的全部字节。"
        "从平台 /.well-known/medrisk/platform-key.pem 下载公钥后验证：",
        "en": "The signature is a separate file (.sig, DER, SM2 with SM3, user id 1234567812345678) over every "
        "byte of this file. Download the public key from /.well-known/medrisk/platform-key.pem and run:",
    },
    "key_id": {"zh": "公钥标识 (SM3)", "en": "Key id (SM3)"},
    "breakdown": {"zh": "分类扣分", "en": "Deductions by category"},
    "category": {"zh": "类别", "en": "Category"},
    "deduction": {"zh": "扣分", "en": "Deduction"},
    "subcategories": {"zh": "子类（问题数，扣分）", "en": "Subcategories (findings, deduction)"},
    "findings": {"zh": "发现的问题", "en": "Findings"},
    "evidence": {"zh": "证据", "en": "Evidence"},
    "remediation": {"zh": "修复建议", "en": "Remediation"},
    "suppressed": {"zh": "已抑制", "en": "suppressed"},
    "in_library": {"zh": "仅见于第三方库代码", "en": "only in third-party library code"},
    "no_findings": {"zh": "未发现问题。", "en": "No findings."},
    "privacy": {"zh": "第三方 SDK 与个人信息", "en": "Third-party SDKs and personal information"},
    "other": {"zh": "其他", "en": "Other"},
}


def labels(lang: str) -> dict[str, str]:
    key = "en" if lang == "en" else "zh"
    return {k: v[key] for k, v in LABELS.items()}


@cache
def env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every value is escaped unless marked safe (only our own escaped HTML is)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def css() -> str:
    return (TEMPLATES / "report_base.css").read_text(encoding="utf-8")


def group_findings(result: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """Findings grouped by top-level risk category (the model's order), worst first inside a group."""
    names = {c["id"]: pick(c["name"], lang) for c in result.get("risk", {}).get("categories", [])}
    order = list(names)
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in result.get("findings") or []:
        cat = str(f.get("category") or "").split(".")[0]
        groups.setdefault(cat if cat in names else "", []).append(f)
    out = []
    for cat in [*order, ""]:
        items = groups.get(cat)
        if not items:
            continue
        items.sort(key=lambda f: (bool(f.get("suppressed")), SEVERITY_ORDER.index(f.get("severity", "info"))))
        out.append({"id": cat, "name": names.get(cat) or labels(lang)["other"], "findings": items})
    return out


def scan_report_html(result: dict[str, Any], meta: dict[str, Any], lang: str = "zh") -> str:
    risk = result["risk"]
    counts = Counter(f["severity"] for f in result.get("findings") or [] if not f.get("suppressed"))
    tpl = env().get_template("scan_report.html")
    return tpl.render(
        lang=lang,
        L=labels(lang),
        css=css(),
        app={
            "name": meta.get("app_name") or result["app"].get("package"),
            "package": result["app"].get("package"),
            "version": result["app"].get("version_name"),
            "version_code": result["app"].get("version_code"),
        },
        risk=risk,
        file=result["file"],
        rules_version=result.get("rules_version", ""),
        meta=meta,
        severity_counts=[(s, counts[s]) for s in SEVERITY_ORDER if counts.get(s)],
        groups=group_findings(result, lang),
        open_count=sum(1 for f in result.get("findings") or [] if not f.get("suppressed")),
        privacy_html=privacy.html_section(result, lang),
        pick=lambda t: pick(t, lang),
        sev=lambda s: sev(s, lang),
        loc=_loc,
    )


class PdfUnavailable(PlatformError):
    """The machine lacks what a correct PDF needs: say what to install instead of printing tofu."""

    status = 503
    code = "pdf_unavailable"


@cache
def _engine_problem() -> str | None:
    try:
        import weasyprint  # noqa: F401 - loads Pango through cffi
    except (ImportError, OSError) as exc:
        return f"PDF reports need WeasyPrint and Pango: apt-get install libpangoft2-1.0-0 ({type(exc).__name__})"
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", "Noto Sans CJK SC"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        found = ""
    if "NotoSansCJK" not in found:
        return "PDF reports need the Chinese fonts: apt-get install fonts-noto-cjk (the HTML report works without)"
    return None


def html_to_pdf(html: str) -> bytes:
    """Lay out the HTML with WeasyPrint (fonts embedded as subsets)."""
    problem = _engine_problem()
    if problem:
        raise PdfUnavailable(problem)
    for name in ("weasyprint", "fontTools"):  # its layout warnings are noise in the service log
        logging.getLogger(name).setLevel(logging.ERROR)
    import weasyprint

    buf = io.BytesIO()
    weasyprint.HTML(string=html, base_url=str(TEMPLATES)).write_pdf(buf)
    return buf.getvalue()


def scan_meta(ctx: Platform, db: Session, scan: Scan, report_no: str) -> dict[str, Any]:
    f = db.get(Filing, scan.filing_id)
    org = db.get(Organisation, scan.org_id)
    return {
        "app_name": f.name if f else "",
        "institution": org.name if org else "",
        "app_type": f.app_type if f else "",
        "scan_id": scan.id,
        "filing_id": scan.filing_id,
        "finished_at": scan.finished_at.strftime("%Y-%m-%d %H:%M UTC") if scan.finished_at else "",
        "result_sm3": scan.result_sm3 or "",
        "report_no": report_no,
        "generated_at": utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "kid": ctx.keys.kid,
        "openssl": signing.openssl_command(f"medrisk-scan-{scan.id}.pdf"),
    }


def scan_report(ctx: Platform, db: Session, p: Principal | None, scan: Scan, lang: str, fmt: str) -> Report:
    """The signed report of a finished scan (rendered on first request, then the stored copy).

    The caller has already checked that ``p`` may see the scan (``platform.versions.get_scan``).
    """
    subject = f"scan:{scan.id}"
    existing = signing.find(db, "scan", subject, lang, fmt)
    if existing is not None:
        return existing
    if scan.status != "done" or not scan.result:
        from medrisk.platform.errors import Conflict

        raise Conflict(f"scan {scan.id} is {scan.status}: a report needs a finished scan")
    report_no = f"MR-S{scan.id:06d}-{lang.upper()}-{utcnow():%Y%m%d%H%M%S}"
    meta = scan_meta(ctx, db, scan, report_no)
    if fmt == "html":
        meta["openssl"] = signing.openssl_command(f"medrisk-scan-{scan.id}.html")
    html = scan_report_html(scan.result, meta, lang)
    data = html.encode("utf-8") if fmt == "html" else html_to_pdf(html)
    return signing.store(
        ctx,
        db,
        kind="scan",
        subject=subject,
        org_id=scan.org_id,
        lang=lang,
        fmt=fmt,
        data=data,
        meta={"report_no": report_no, "scan_id": scan.id, "filing_id": scan.filing_id, "result_sm3": scan.result_sm3},
        actor=p,
    )
