"""Privacy section of the table and HTML reports: SDK table, personal-information inventory
with evidence, and the compliance checklist (item, verdict, evidence, clause).

Both renderers take a scan result (``{"indicators": {...}}``) or a bare indicator document
(``{"sdks": ..., "privacy": ...}``) and default to Chinese. Every value that comes from the
package or the policy text is escaped in HTML.
"""

from __future__ import annotations

from html import escape
from typing import Any

from medrisk.reports.i18n import pick

MAX_ITEM_EVIDENCE = 5

LABELS: dict[str, dict[str, str]] = {
    "section": {"zh": "个人信息保护", "en": "Personal-information protection"},
    "app_type": {"zh": "应用类型", "en": "App type"},
    "undeclared": {"zh": "未声明", "en": "not declared"},
    "sdks": {"zh": "第三方 SDK", "en": "Third-party SDKs"},
    "db_version": {"zh": "签名库版本", "en": "signature database"},
    "name": {"zh": "名称", "en": "Name"},
    "vendor": {"zh": "厂商", "en": "Vendor"},
    "category": {"zh": "类别", "en": "Category"},
    "evidence": {"zh": "证据", "en": "Evidence"},
    "collects": {"zh": "收集的个人信息", "en": "Collects"},
    "domain_only": {"zh": "仅发现域名，未确认 SDK 代码", "en": "domain only, SDK code not found"},
    "inventory": {"zh": "个人信息清单", "en": "Personal-information inventory"},
    "item": {"zh": "个人信息", "en": "Information"},
    "sensitive": {"zh": "敏感", "en": "sensitive"},
    "class": {"zh": "PIPL 分类", "en": "PIPL class"},
    "general": {"zh": "一般", "en": "general"},
    "excess": {"zh": "超出必要范围", "en": "Beyond necessity"},
    "necessary": {"zh": "必要个人信息", "en": "Necessary information"},
    "no_pi": {"zh": "无须个人信息", "en": "no personal information"},
    "policy": {"zh": "隐私政策", "en": "Privacy policy"},
    "not_found": {"zh": "未找到", "en": "not found"},
    "chars": {"zh": "字", "en": "characters"},
    "checklist": {"zh": "合规检查清单", "en": "Compliance checklist"},
    "verdict": {"zh": "结论", "en": "Verdict"},
    "clause": {"zh": "依据", "en": "Clause"},
    "none": {"zh": "无", "en": "none"},
    "pass": {"zh": "通过", "en": "pass"},
    "fail": {"zh": "不通过", "en": "fail"},
    "not_applicable": {"zh": "不适用", "en": "n/a"},
    "sdk_short": {"zh": "SDK", "en": "SDK"},
}
KIND = {
    "package": {"zh": "类", "en": "classes"},
    "manifest_component": {"zh": "组件", "en": "component"},
    "native_lib": {"zh": "原生库", "en": "native library"},
    "domain": {"zh": "域名", "en": "domain"},
}
SOURCE = {
    "permission": {"zh": "权限", "en": "permission"},
    "api": {"zh": "代码", "en": "code"},
    "manifest": {"zh": "清单", "en": "manifest"},
    "sdk": {"zh": "SDK", "en": "SDK"},
    "app_type": {"zh": "应用类型", "en": "app type"},
}
VERDICT_COLOUR = {"pass": "#1b7f3b", "fail": "#b3261e", "not_applicable": "#666"}


def _l(key: str, lang: str) -> str:
    return LABELS[key]["en" if lang == "en" else "zh"]


def _categories() -> dict[str, dict[str, str]]:
    """SDK category names come from the SDK database itself (one source of truth)."""
    from medrisk.privacy.sdks import load_database

    return load_database().categories


def _t(table: dict[str, dict[str, str]], key: str, lang: str) -> str:
    return pick(table.get(key), lang) or key


def _roots(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    ind = result.get("indicators", result) if isinstance(result, dict) else {}
    privacy = ind.get("privacy") if isinstance(ind, dict) else None
    if not isinstance(privacy, dict):
        return None
    return ind.get("sdks") or {"database_version": "", "detected": []}, privacy


def _names(privacy: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {i["id"]: i.get("name") or {} for i in privacy.get("inventory") or []}


def _collects(ids: list[str], names: dict[str, dict[str, str]], lang: str) -> str:
    if not ids:
        return _l("none", lang)
    from medrisk.privacy.inventory import load_catalog

    catalog = {i.id: i.name() for i in load_catalog().items}
    sep = ", " if lang == "en" else "、"
    return sep.join(pick(names.get(i) or catalog.get(i), lang) or i for i in ids)


def _sdk_evidence(s: dict[str, Any], lang: str) -> list[str]:
    return [f"{_t(KIND, e.get('kind', ''), lang)} {e.get('value', '')}" for e in s.get("evidence") or []]


def _item_evidence(e: dict[str, Any], lang: str) -> str:
    loc = e.get("location") or {}
    where = " ".join(str(p) for p in (loc.get("class"), loc.get("method")) if p)
    if loc.get("line"):
        where += f":{loc['line']}"
    text = f"{_t(SOURCE, e.get('source', ''), lang)}: {e.get('value', '')}"
    if where:
        text += f" @ {where}"
    if e.get("sdk") and e.get("source") != "sdk":
        text += f" [{_l('sdk_short', lang)} {e['sdk']}]"
    return text


def _necessary(privacy: dict[str, Any], lang: str) -> str:
    """What the declared type needs, from the 必要个人信息范围规定 table."""
    from medrisk.privacy.inventory import resolve_app_type

    try:
        atype = resolve_app_type(privacy.get("app_type"))
    except ValueError:
        atype = None
    if atype is None:
        return ""
    sep = "; " if lang == "en" else "；"
    needed = sep.join(atype.necessary) or _l("no_pi", lang)
    return f"{_l('necessary', lang)} ({atype.id} {atype.number}): {needed}"


def _check_text(c: dict[str, Any], lang: str) -> str:
    parts = [p for p in (pick(c.get("detail"), lang), c.get("evidence")) if p]
    return " — ".join(parts)


# --------------------------------------------------------------------------- plain text


def table_lines(result: dict[str, Any], lang: str = "zh") -> list[str]:
    roots = _roots(result)
    if roots is None:
        return []
    sdks, privacy = roots
    names = _names(privacy)
    atype = privacy.get("app_type") or _l("undeclared", lang)
    out = [f"{_l('section', lang)} ({_l('app_type', lang)}: {atype})"]

    detected = sdks.get("detected") or []
    out.append(f"  {_l('sdks', lang)} ({_l('db_version', lang)} {sdks.get('database_version', '')}): {len(detected)}")
    for s in detected:
        name = s.get("name") if lang != "en" else s.get("name_en") or s.get("name")
        weak = "" if s.get("confirmed", True) else f"  ({_l('domain_only', lang)})"
        out.append(f"  - {name} [{_t(_categories(), s.get('category', ''), lang)}] {s.get('vendor', '')}{weak}")
        out.append(f"      {_l('evidence', lang)}: " + "; ".join(_sdk_evidence(s, lang)))
        out.append(f"      {_l('collects', lang)}: {_collects(s.get('collects') or [], names, lang)}")

    inventory = privacy.get("inventory") or []
    out.append(f"  {_l('inventory', lang)}: {len(inventory)}")
    for i in inventory:
        cls = _l("sensitive", lang) if i.get("sensitive") else _l("general", lang)
        out.append(f"  - {pick(i.get('name'), lang) or i.get('id')} [{cls}]")
        ev = i.get("evidence") or []
        for e in ev[:MAX_ITEM_EVIDENCE]:
            out.append(f"      {_item_evidence(e, lang)}")
        if len(ev) > MAX_ITEM_EVIDENCE:
            out.append(f"      ... +{len(ev) - MAX_ITEM_EVIDENCE}")

    excess = privacy.get("excess") or []
    if excess:
        out.append(f"  {_l('excess', lang)}: {len(excess)}  ({_necessary(privacy, lang)})")
        for x in excess:
            out.append(f"  - {pick(x.get('name'), lang) or x.get('id')}: {pick(x.get('reason'), lang)}")

    pol = privacy.get("policy") or {}
    if pol.get("present"):
        desc = f"{pol.get('source')} ({pol.get('language')}, {pol.get('characters', 0)} {_l('chars', lang)})"
    else:
        desc = _l("not_found", lang)
    out.append(f"  {_l('policy', lang)}: {desc}")

    checklist = privacy.get("checklist") or []
    out.append(f"  {_l('checklist', lang)}:")
    for c in checklist:
        verdict = _l(c.get("verdict", "not_applicable"), lang)
        rule = f" {c['rule']}" if c.get("rule") else ""
        out.append(f"  [{verdict}] {pick(c.get('title'), lang)}{rule}")
        text = _check_text(c, lang)
        if text:
            out.append(f"      {_l('evidence', lang)}: {text}")
        out.append(f"      {_l('clause', lang)}: {c.get('clause', '')}")
    return out


# --------------------------------------------------------------------------- HTML


def html_section(result: dict[str, Any], lang: str = "zh") -> str:
    roots = _roots(result)
    if roots is None:
        return ""
    e = escape
    sdks, privacy = roots
    names = _names(privacy)
    atype = privacy.get("app_type") or _l("undeclared", lang)
    parts = [
        f"<section class='privacy'><h3>{e(_l('section', lang))}</h3>",
        f"<p>{e(_l('app_type', lang))}: <b>{e(str(atype))}</b></p>",
    ]

    detected = sdks.get("detected") or []
    parts.append(
        f"<h4>{e(_l('sdks', lang))} ({len(detected)}) <small>{e(_l('db_version', lang))} "
        f"{e(str(sdks.get('database_version', '')))}</small></h4>"
    )
    if detected:
        parts.append(
            "<table><tr>"
            + "".join(f"<th>{e(_l(k, lang))}</th>" for k in ("name", "vendor", "category", "evidence", "collects"))
            + "</tr>"
        )
        for s in detected:
            name = s.get("name") if lang != "en" else s.get("name_en") or s.get("name")
            weak = "" if s.get("confirmed", True) else f"<br><i>{e(_l('domain_only', lang))}</i>"
            ev = "<br>".join(f"<code>{e(x)}</code>" for x in _sdk_evidence(s, lang))
            parts.append(
                f"<tr><td>{e(str(name))}{weak}</td><td>{e(str(s.get('vendor', '')))}</td>"
                f"<td>{e(_t(_categories(), s.get('category', ''), lang))}</td><td>{ev}</td>"
                f"<td>{e(_collects(s.get('collects') or [], names, lang))}</td></tr>"
            )
        parts.append("</table>")

    inventory = privacy.get("inventory") or []
    parts.append(f"<h4>{e(_l('inventory', lang))} ({len(inventory)})</h4>")
    if inventory:
        parts.append(
            f"<table><tr><th>{e(_l('item', lang))}</th><th>{e(_l('class', lang))}</th>"
            f"<th>{e(_l('evidence', lang))}</th></tr>"
        )
        for i in inventory:
            cls = _l("sensitive", lang) if i.get("sensitive") else _l("general", lang)
            ev = i.get("evidence") or []
            rows = [f"<code>{e(_item_evidence(x, lang))}</code>" for x in ev[:MAX_ITEM_EVIDENCE]]
            if len(ev) > MAX_ITEM_EVIDENCE:
                rows.append(f"… +{len(ev) - MAX_ITEM_EVIDENCE}")
            bold = " style='font-weight:700'" if i.get("sensitive") else ""
            parts.append(
                f"<tr><td>{e(pick(i.get('name'), lang) or str(i.get('id')))}</td><td{bold}>{e(cls)}</td>"
                f"<td>{'<br>'.join(rows)}</td></tr>"
            )
        parts.append("</table>")

    excess = privacy.get("excess") or []
    if excess:
        parts.append(f"<h4>{e(_l('excess', lang))} ({len(excess)})</h4><p>{e(_necessary(privacy, lang))}</p><ul>")
        for x in excess:
            parts.append(
                f"<li><b>{e(pick(x.get('name'), lang) or str(x.get('id')))}</b>: {e(pick(x.get('reason'), lang))}</li>"
            )
        parts.append("</ul>")

    pol = privacy.get("policy") or {}
    if pol.get("present"):
        desc = f"{pol.get('source')} ({pol.get('language')}, {pol.get('characters', 0)} {_l('chars', lang)})"
    else:
        desc = _l("not_found", lang)
    parts.append(f"<p>{e(_l('policy', lang))}: <code>{e(str(desc))}</code></p>")

    checklist = privacy.get("checklist") or []
    parts.append(
        f"<h4>{e(_l('checklist', lang))}</h4><table><tr><th>{e(_l('item', lang))}</th>"
        f"<th>{e(_l('verdict', lang))}</th><th>{e(_l('evidence', lang))}</th><th>{e(_l('clause', lang))}</th></tr>"
    )
    for c in checklist:
        v = c.get("verdict", "not_applicable")
        colour = VERDICT_COLOUR.get(v, "#666")
        rule = f" <small>{e(c['rule'])}</small>" if c.get("rule") else ""
        parts.append(
            f"<tr><td>{e(pick(c.get('title'), lang))}{rule}</td>"
            f"<td style='color:{colour};font-weight:700;white-space:nowrap'>{e(_l(v, lang) if v in LABELS else v)}</td>"
            f"<td>{e(_check_text(c, lang))}</td><td>{e(str(c.get('clause', '')))}</td></tr>"
        )
    parts.append("</table></section>")
    return "".join(parts)
