"""Self-contained HTML report (one file, inline CSS, no scripts, readable offline).

Every value from the package is escaped: app names, strings and URLs are
attacker-controlled.
"""

from __future__ import annotations

from html import escape
from typing import Any

from medrisk.reports import privacy
from medrisk.reports.i18n import pick, sev, t
from medrisk.reports.table import _loc

CSS = """
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;margin:2em auto;
max-width:1000px;color:#1a1a1a;line-height:1.5;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
.grade{display:inline-block;font-size:2.2em;font-weight:700;width:1.6em;text-align:center;border-radius:.2em;
color:#fff}.gA{background:#1b7f3b}.gB{background:#b36b00}.gC{background:#b3261e}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;
vertical-align:top}th{background:#f3f3f3}
.sev{font-weight:700;padding:0 .4em;border-radius:.2em;color:#fff;white-space:nowrap}
.critical{background:#7a0010}.high{background:#b3261e}.medium{background:#b36b00}.low{background:#3d6fb3}
.info{background:#666}.secure{background:#1b7f3b}.supp{opacity:.6}code{font-size:.9em;word-break:break-all}
"""


def render(results: list[dict[str, Any]], lang: str = "zh") -> str:
    body = "".join(_one(r, lang) for r in results)
    title = escape(t("report_title", lang))
    return (
        f'<!DOCTYPE html><html lang="{"en" if lang == "en" else "zh-CN"}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style></head><body><h1>{title}</h1>{body}</body></html>\n"
    )


def _one(r: dict[str, Any], lang: str) -> str:
    e = escape
    if "error" in r:
        return (
            f"<section><h2>{e(r['file']['name'])}</h2><p>{e(t('error', lang))}: "
            f"<code>{e(r['error']['code'])}</code> {e(r['error']['message'])}</p></section>"
        )
    app, risk, ind = r["app"], r["risk"], r["indicators"]
    capped = f" ({e(t('capped', lang, sev=sev(risk['capped_by'], lang)))})" if risk["capped_by"] else ""
    parts = [
        f"<section><h2>{e(app['package'])} {e(str(app['version_name']))}</h2>",
        f"<p><span class='grade g{e(risk['grade'])}'>{e(risk['grade'])}</span> "
        f"{e(t('score', lang))}: <b>{risk['score']:.1f}</b>/100{capped}</p>",
        "<table>",
        f"<tr><th>{e(t('file', lang))}</th><td><code>{e(r['file']['name'])}</code> sha256 "
        f"<code>{e(r['file']['sha256'])}</code></td></tr>",
        f"<tr><th>{e(t('version', lang))}</th><td>{e(str(app['version_name']))} ({e(str(app['version_code']))})"
        f"</td></tr>",
        f"<tr><th>{e(t('sdk', lang))}</th><td>{e(str(app['min_sdk']))} / {e(str(app['target_sdk']))}</td></tr>",
        f"<tr><th>{e(t('rules_version', lang))}</th><td>{e(r['rules_version'])}</td></tr>",
        f"<tr><th>{e(t('model_version', lang))}</th><td>{e(risk['model_version'])}</td></tr>",
        f"<tr><th>{e(t('permissions', lang))}</th><td>"
        + ", ".join(e(p["name"]) for p in ind["manifest"]["permissions"])
        + "</td></tr>",
        "</table>",
        f"<h3>{e(t('breakdown', lang))}</h3><table><tr><th></th><th>{e(t('cost', lang))}</th></tr>",
    ]
    for c in risk["categories"]:
        parts.append(f"<tr><td>{e(pick(c['name'], lang))}</td><td>-{c['deduction']:.1f} / {c['weight']:g}</td></tr>")
    parts.append("</table>")
    parts.append(privacy.html_section(r, lang))
    parts.append(f"<h3>{e(t('findings', lang))} ({len(r['findings'])})</h3><table>")
    for f in r["findings"]:
        cls = " class='supp'" if f["suppressed"] else ""
        supp = f"<br><i>{e(t('suppressed', lang))}: {e(f['suppression_reason'] or '')}</i>" if f["suppressed"] else ""
        ev = "<br>".join(f"<code>{e(_loc(x))}</code>" for x in f["evidence"][:10])
        parts.append(
            f"<tr{cls}><td><span class='sev {e(f['severity'])}'>{e(sev(f['severity'], lang))}</span></td>"
            f"<td><b>{e(f['rule_id'])}</b> {e(pick(f['title'], lang))}{supp}<br><small>{e(f['masvs'])} "
            f"{e(' '.join(f['cwe']))} · {e(t('cost', lang))} {f['cost']:.1f}</small><br>{ev}"
            f"<br><b>{e(t('remediation', lang))}</b>: {e(pick(f['remediation'], lang))}</td></tr>"
        )
    parts.append("</table></section>")
    return "".join(parts)
