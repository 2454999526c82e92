"""analyse_privacy end to end, and the checklist agreeing with the PRIV rules."""

from __future__ import annotations

import copy
import json

import pytest

from medrisk.analysis import skeleton
from medrisk.privacy.analyse import analyse_privacy
from medrisk.rules.engine import Engine
from medrisk.rules.loader import load_library

from .helpers import consultation_app, doc, loc, perm, read

PRIV_RULES = [r for r in load_library() if r.family == "PRIV"]
ENGINE = Engine(PRIV_RULES)


def merged(d, **kw):
    out = copy.deepcopy(d)
    out.update(analyse_privacy(d, **kw))
    return out


def fired(d):
    ev = ENGINE.evaluate(d)
    assert ev.errors == []
    return {f.rule.id: f for f in ev.findings}


def test_result_shape_matches_the_skeleton():
    r = analyse_privacy(consultation_app(), policy_text=read("policy_complete.html"), app_type="15")
    assert set(r) == {"sdks", "privacy"}
    assert set(r["privacy"]) == set(skeleton.DEFAULT_DOCUMENT["privacy"])
    assert set(r["privacy"]["policy"]) == set(skeleton.DEFAULT_DOCUMENT["privacy"]["policy"])
    for path, rows in (
        ("privacy.inventory", r["privacy"]["inventory"]),
        ("privacy.evidence", r["privacy"]["evidence"]),
        ("privacy.checklist", r["privacy"]["checklist"]),
        ("privacy.policy.checks", r["privacy"]["policy"]["checks"]),
        ("privacy.policy.disclosures", r["privacy"]["policy"]["disclosures"]),
        ("privacy.policy.sdk_disclosures", r["privacy"]["policy"]["sdk_disclosures"]),
        ("sdks.detected", r["sdks"]["detected"]),
    ):
        assert rows, path
        for row in rows:
            assert set(row) == set(skeleton.ITEM_DEFAULTS[path]), path
    json.dumps(r, ensure_ascii=False)  # JSON-ready
    assert r["privacy"]["app_type"] == "问诊挂号类" and r["privacy"]["health_context"] is True


def test_policy_file_wins_over_bundled_assets():
    assets = {"assets/privacy.html": read("policy_english.html")}
    r = analyse_privacy(
        consultation_app(), policy_text=read("policy_complete.html"), policy_source="p.html", asset_texts=assets
    )
    assert r["privacy"]["policy"]["source"] == "p.html" and r["privacy"]["policy"]["language"] == "zh"
    r = analyse_privacy(consultation_app(), policy_text="  ", asset_texts=assets)
    assert r["privacy"]["policy"]["source"] == "assets/privacy.html" and r["privacy"]["policy"]["language"] == "en"


def test_unknown_app_type_is_an_error():
    with pytest.raises(ValueError):
        analyse_privacy(doc(), app_type="不存在类")


def test_non_health_type_is_not_a_health_context():
    r = analyse_privacy(doc(code={"packages": ["com.qq.e.ads"]}), app_type="新闻资讯类")
    assert r["privacy"]["health_context"] is False
    c = {x["id"]: x for x in r["privacy"]["checklist"]}
    assert c["ads_sdk"]["verdict"] == "not_applicable"


def test_empty_document_is_quiet():
    r = analyse_privacy(skeleton.default_document())
    assert r["sdks"]["detected"] == [] and r["privacy"]["inventory"] == []
    assert fired(merged(skeleton.default_document())) == {}


# --------------------------------------------------------------------------- scenarios through the rules


def risky_app():
    """A consultation app with an ad SDK, device-id reads, app enumeration and background location."""
    d = consultation_app()
    d["code"]["packages"] += ["com.bytedance.sdk.openadsdk.core", "com.umeng.analytics"]
    d["code"]["calls"] += [
        {
            "api": "android.telephony.TelephonyManager.getDeviceId",
            "args": [],
            "location": loc("cn.example.ankang.Reg", "r()V", 5),
        },
        {
            "api": "android.content.pm.PackageManager.getInstalledPackages",
            "args": [0],
            "location": loc("cn.example.ankang.Env"),
        },
    ]
    d["manifest"]["permissions"] += [
        perm("android.permission.ACCESS_BACKGROUND_LOCATION"),
        perm("android.permission.READ_CONTACTS"),
    ]
    return d


# The consultation app reads ANDROID_ID (PRIV-012) and can locate, which 问诊挂号类 does not need (PRIV-011).
BASE = {"PRIV-011", "PRIV-012"}
RISKY = {"PRIV-005", "PRIV-013", "PRIV-014", "PRIV-016", "PRIV-017", "PRIV-020"}
NO_DELETION = {"PRIV-005", "PRIV-007", "PRIV-014", "PRIV-020"}
SCENARIOS = {
    "complete": (consultation_app, "policy_complete.html", BASE),
    "no_policy": (consultation_app, None, BASE | {"PRIV-001"}),
    "no_sdk_list": (consultation_app, "policy_no_sdk_list.txt", BASE | {"PRIV-004", "PRIV-014", "PRIV-020"}),
    "no_deletion": (consultation_app, "policy_no_deletion.txt", BASE | NO_DELETION),
    "english": (consultation_app, "policy_english.html", BASE | {"PRIV-003", "PRIV-020"}),
    # Pangle also collects sensor data, which the policy never mentions (PRIV-020)
    "risky": (risky_app, "policy_complete.html", BASE | RISKY),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_findings(name):
    build, policy, expected = SCENARIOS[name]
    d = merged(build(), policy_text=read(policy) if policy else None, app_type="问诊挂号类")
    assert set(fired(d)) == expected


def test_checklist_agrees_with_rules():
    """Every failing checklist item is reported by its rule and every passing one is not,
    except where another rule owns the case (documented in docs/privacy.md)."""
    for name, (build, policy, _) in SCENARIOS.items():
        d = merged(build(), policy_text=read(policy) if policy else None, app_type="问诊挂号类")
        found = fired(d)
        checks = {c["id"]: c for c in d["privacy"]["checklist"]}
        for c in d["privacy"]["checklist"]:
            rule = c["rule"]
            if rule is None:
                continue
            if c["verdict"] != "fail":
                assert rule not in found or rule in ("PRIV-007",), (name, c["id"], rule)
                continue
            if c["id"] == "sdks_disclosed" and checks["sdk_list"]["verdict"] == "fail":
                assert "PRIV-004" in found, name  # no list at all: PRIV-004 names every SDK
            elif c["id"] == "installed_apps" and not any(
                e["item"] == "installed_apps" and e["source"] == "api" for e in d["privacy"]["evidence"]
            ):
                pass  # only the QUERY_ALL_PACKAGES permission: MAN-030 reports it
            else:
                assert rule in found, (name, c["id"], rule)


def test_findings_carry_locations_and_sdk_names():
    d = merged(risky_app(), policy_text=read("policy_complete.html"), app_type="问诊挂号类")
    f = fired(d)
    ids = [(e.cls, e.value) for e in f["PRIV-012"].evidence]
    assert ("cn.example.ankang.Reg", "imei: android.telephony.TelephonyManager.getDeviceId") in ids
    assert [e.value for e in f["PRIV-016"].evidence] == ["Pangle (Bytedance ads) (北京巨量引擎网络技术有限公司)"]
    assert any("umeng" in (e.value or "").lower() or "友盟" in (e.value or "") for e in f["PRIV-005"].evidence)
    assert {e.value for e in f["PRIV-011"].evidence} >= {"contacts", "imei", "installed_apps"}
