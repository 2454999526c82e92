"""Plain-text report for terminals: facts, grade, breakdown and findings with fixes."""

from __future__ import annotations

from typing import Any

from medrisk.reports import privacy
from medrisk.reports.i18n import pick, sev, t


def render(results: list[dict[str, Any]], lang: str = "zh") -> str:
    return "\n".join(render_one(r, lang) for r in results)


def render_one(r: dict[str, Any], lang: str) -> str:
    if "error" in r:
        return f"{r['file']['name']}: {t('error', lang)}: {r['error']['code']}: {r['error']['message']}\n"
    out: list[str] = []
    app, risk, ind = r["app"], r["risk"], r["indicators"]
    out.append("=" * 78)
    out.append(
        f"{t('app', lang)}: {app['package']}  {t('version', lang)}: {app['version_name']} "
        f"({app['version_code']})  {t('sdk', lang)}: {app['min_sdk']}/{app['target_sdk']}"
    )
    out.append(f"{t('file', lang)}: {r['file']['name']}  sha256: {r['file']['sha256']}")
    capped = f"  ({t('capped', lang, sev=sev(risk['capped_by'], lang))})" if risk["capped_by"] else ""
    out.append(f"{t('score', lang)}: {risk['score']:.1f}/100  {t('grade', lang)}: {risk['grade']}{capped}")
    out.append("")
    out += _facts(ind, lang)
    out.append("")
    out.append(f"{t('breakdown', lang)}:")
    for c in risk["categories"]:
        if c["deduction"]:
            out.append(f"  {pick(c['name'], lang):<28} -{c['deduction']:.1f} / {c['weight']:g}")
    out.append(f"  {t('total', lang):<28} -{risk['deduction']:.1f}")
    out.append("")
    out += privacy.table_lines(r, lang)
    out.append("")
    out.append(f"{t('findings', lang)} ({len(r['findings'])}):")
    for f in r["findings"]:
        mark = f"  [{t('suppressed', lang)}: {f['suppression_reason']}]" if f["suppressed"] else ""
        cost = f"  {t('cost', lang)} {f['cost']:.1f}" if f["cost"] else ""
        if f.get("in_library"):
            cost += f"  [{t('in_library', lang)}]"
        out.append(f"- [{sev(f['severity'], lang)}] {f['rule_id']} {pick(f['title'], lang)}{cost}{mark}")
        out.append(f"    {f['masvs']}  {' '.join(f['cwe'])}")
        for e in f["evidence"][:5]:
            out.append(f"    {t('evidence', lang)}: {_loc(e)}")
        if len(f["evidence"]) > 5:
            out.append(f"    ... +{len(f['evidence']) - 5}")
        out.append(f"    {t('remediation', lang)}: {pick(f['remediation'], lang)}")
    for e in r.get("errors", []):
        out.append(f"! {e}")
    return "\n".join(out) + "\n"


def _loc(e: dict[str, Any]) -> str:
    parts = [p for p in (e.get("file"), e.get("class"), e.get("method")) if p]
    where = " ".join(parts)
    if e.get("line"):
        where += f":{e['line']}"
    value = e.get("value") or ""
    return f"{where}  {value}".strip()


def _facts(ind: dict[str, Any], lang: str) -> list[str]:
    m, s = ind["manifest"], ind["signing"]
    dangerous = [p["name"].rsplit(".", 1)[-1] for p in m["permissions"] if p["protection_level"] == "dangerous"]
    exported = [c for c in m["components"] if c["exported"]]
    certs = s["certificates"]
    schemes = ",".join(k for k, v in s["schemes"].items() if v) or t("none", lang)
    lines = [
        f"{t('facts', lang)}:",
        f"  {t('permissions', lang)}: {len(m['permissions'])} ({t('dangerous', lang)}: "
        f"{', '.join(dangerous) or t('none', lang)})",
        f"  {t('exported', lang)}: {len(exported)} / {len(m['components'])}",
        f"  {t('debuggable', lang)}: {t('yes' if m['debuggable'] else 'no', lang)}   "
        f"{t('allow_backup', lang)}: {t('yes' if m['allow_backup'] else 'no', lang)}",
        f"  {t('signing', lang)}: {schemes}",
    ]
    for c in certs[:2]:
        lines.append(
            f"  {t('certificate', lang)}: {c['subject']}  {c['signature_algorithm']}  "
            f"{c['key_algorithm']}-{c['key_size']}  sha256 {c['sha256'][:16]}…"
        )
    code = ind["code"]
    lines.append(
        f"  {t('dex', lang)}: {len(code['dex'])}  {t('classes', lang)}: {code['classes']}  "
        f"{t('urls', lang)}: {len(ind['strings']['urls'])}"
    )
    libs = ind["native"]["libraries"]
    if libs:
        lines.append(f"  {t('native', lang)}: {len(libs)} ({', '.join(ind['container']['abis'])})")
    return lines
