"""Entry point: the ``sdks`` and ``privacy`` roots of the indicator document.

Pure: indicator document and texts in, facts out (no network, no database). The scan
pipeline calls :func:`analyse_privacy` after the APK analysers and merges the result into
the document before the rules run. See docs/privacy.md for the shape.
"""

from __future__ import annotations

from typing import Any

from medrisk.privacy import inventory as inv
from medrisk.privacy import policy as pol
from medrisk.privacy.sdks import detect_sdks, load_database

BACKGROUND_LOCATION = "android.permission.ACCESS_BACKGROUND_LOCATION"


def analyse_privacy(
    doc: dict[str, Any],
    *,
    policy_text: str | None = None,
    policy_source: str | None = None,
    app_type: str | None = None,
    asset_texts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Return ``{"sdks": ..., "privacy": ...}`` for an indicator document.

    ``policy_text`` (from ``--privacy-policy FILE``) wins over bundled ``asset_texts``
    ({path: text}); ``app_type`` is a type of 《必要个人信息范围规定》 (name, number or alias;
    an unknown name raises ValueError listing the valid ones).
    """
    db = load_database()
    atype = inv.resolve_app_type(app_type)
    sdks = detect_sdks(doc, db)
    items = inv.build_inventory(doc, sdks["detected"], atype, db)
    excess = inv.necessity(items, atype)

    if policy_text is not None and policy_text.strip():
        text, source = policy_text, policy_source or "--privacy-policy"
    else:
        chosen = pol.choose_policy(asset_texts)
        text, source = (chosen[1], chosen[0]) if chosen else (None, None)
    manifest = doc.get("manifest") or {}
    dangerous = {
        p.get("name", "")
        for p in manifest.get("permissions") or []
        if p.get("protection_level") == "dangerous" or str(p.get("name", "")).startswith("android.permission.health.")
    }
    policy = pol.analyse_policy(text, source, items, sdks["detected"], dangerous_permissions=dangerous, db=db)
    health_context = atype is None or atype.health

    privacy = {
        "app_type": atype.id if atype else None,
        "health_context": health_context,
        "inventory": items,
        "evidence": inv.flatten(items),
        "excess": excess,
        "policy": policy,
        "checklist": [],
    }
    privacy["checklist"] = policy["checks"] + technical_checks(privacy, sdks, manifest, atype)
    return {"sdks": sdks, "privacy": privacy}


def _item(cid: str, zh: str, en: str, clause: str, rule: str | None) -> dict[str, Any]:
    return {
        "id": cid,
        "title": {"zh": zh, "en": en},
        "verdict": "pass",
        "evidence": None,
        "detail": None,
        "clause": clause,
        "rule": rule,
    }


def _where(e: dict[str, Any]) -> str:
    loc = e.get("location") or {}
    where = " ".join(p for p in (loc.get("class"), loc.get("method")) if p)
    sdk = f" [SDK {e['sdk']}]" if e.get("sdk") else ""
    return f"{e['value']}{' @ ' + where if where else ''}{sdk}"


def technical_checks(
    privacy: dict[str, Any], sdks: dict[str, Any], manifest: dict[str, Any], atype: inv.AppType | None
) -> list[dict[str, Any]]:
    """Checklist items decided from code and manifest facts (each mirrors a PRIV rule)."""
    out = []
    evidence = privacy["evidence"]

    c = _item(
        "necessity",
        "仅收集应用类型所需的必要个人信息",
        "Collects only the information the app type needs",
        "《常见类型移动互联网应用程序必要个人信息范围规定》第四条、第五条；《App违法违规收集使用个人信息行为认定方法》四.1",
        "PRIV-011",
    )
    if atype is None:
        c["verdict"] = "not_applicable"
        c["detail"] = {"zh": "未声明应用类型（--app-type）", "en": "no app type declared (--app-type)"}
    elif privacy["excess"]:
        c["verdict"] = "fail"
        c["detail"] = {
            "zh": f"超出{atype.id}必要范围：" + "、".join(x["name"]["zh"] for x in privacy["excess"]),
            "en": "beyond necessity: " + ", ".join(x["id"] for x in privacy["excess"]),
        }
    out.append(c)

    c = _item(
        "device_identifiers",
        "不读取不可变更的设备标识符（IMEI、IMSI、序列号、MAC、Android ID）",
        "Does not read persistent device identifiers (IMEI, IMSI, serial, MAC, Android ID)",
        "GB/T 41391-2022 附录F；工信部信管函〔2019〕337号；《个人信息保护法》第六条",
        "PRIV-012",
    )
    reads = [e for e in evidence if e["source"] == "api" and e["item"] in inv.DEVICE_ID_ITEMS]
    if reads:
        c["verdict"], c["evidence"] = "fail", _where(reads[0])
        c["detail"] = {"zh": f"{len(reads)} 处读取", "en": f"{len(reads)} read site(s)"}
    out.append(c)

    c = _item(
        "installed_apps",
        "不获取已安装应用列表",
        "Does not read the list of installed apps",
        "工信部信管函〔2019〕337号；《App违法违规收集使用个人信息行为认定方法》四.1",
        "PRIV-013",
    )
    apps = [e for e in evidence if e["item"] == "installed_apps" and e["source"] in ("api", "permission")]
    apps.sort(key=lambda e: e["source"] != "api")  # a call site is stronger evidence than the permission
    if apps:
        c["verdict"], c["evidence"] = "fail", _where(apps[0])
    out.append(c)

    c = _item(
        "background_location",
        "不在后台持续获取位置",
        "Does not request background location",
        "《App违法违规收集使用个人信息行为认定方法》四.4；《个人信息保护法》第二十八条",
        "PRIV-017",
    )
    perms = {p.get("name") for p in manifest.get("permissions") or []}
    if BACKGROUND_LOCATION in perms:
        c["verdict"], c["evidence"] = "fail", BACKGROUND_LOCATION
    elif not any(i["id"] == "location" for i in privacy["inventory"]):
        c["verdict"] = "not_applicable"
    out.append(c)

    c = _item(
        "ads_sdk",
        "医疗健康类应用不嵌入广告 SDK",
        "No advertising SDK in a medical or health app",
        "《个人信息保护法》第二十三条、第二十八条；《App违法违规收集使用个人信息行为认定方法》五.1",
        "PRIV-016",
    )
    ads = [s for s in sdks["detected"] if s["category"] == "ads" and s.get("confirmed", True)]
    if not privacy["health_context"]:
        c["verdict"] = "not_applicable"
    elif ads:
        c["verdict"], c["evidence"] = "fail", "、".join(s["name"] for s in ads)
    out.append(c)
    return out


__all__ = ["analyse_privacy", "technical_checks"]
