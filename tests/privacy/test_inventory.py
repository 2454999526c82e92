"""Personal-information inventory, app types and the necessity check."""

from __future__ import annotations

import pytest

from medrisk.privacy.inventory import (
    build_inventory,
    flatten,
    load_app_types,
    load_catalog,
    necessity,
    resolve_app_type,
)
from medrisk.privacy.sdks import detect_sdks

from .helpers import doc, loc, perm


def inventory(d, app_type=None):
    return build_inventory(d, detect_sdks(d)["detected"], resolve_app_type(app_type))


def items(inv):
    return {i["id"]: i for i in inv}


def test_permissions_map_to_items_with_pipl_class():
    inv = items(
        inventory(
            doc(
                manifest={
                    "permissions": [
                        perm("android.permission.ACCESS_FINE_LOCATION"),
                        perm("android.permission.READ_CONTACTS"),
                        perm("android.permission.CAMERA"),
                        perm("android.permission.INTERNET", "normal"),
                    ]
                }
            )
        )
    )
    assert set(inv) == {"location", "contacts", "camera"}
    assert inv["location"]["sensitive"] and inv["contacts"]["sensitive"] and not inv["camera"]["sensitive"]
    assert inv["location"]["evidence"] == [
        {"source": "permission", "value": "android.permission.ACCESS_FINE_LOCATION", "location": None, "sdk": None}
    ]
    assert inv["location"]["name"]["zh"] == "位置信息"


def test_health_connect_and_body_sensors_are_sensitive_health_data():
    inv = items(
        inventory(
            doc(
                manifest={
                    "permissions": [
                        perm("android.permission.health.READ_HEART_RATE", "unknown"),
                        perm("android.permission.BODY_SENSORS"),
                    ],
                    "uses_features": ["android.hardware.sensor.heartrate"],
                }
            )
        )
    )
    h = inv["health_data"]
    assert h["sensitive"] is True
    assert [e["source"] for e in h["evidence"]] == ["permission", "permission", "manifest"]


def test_api_calls_carry_location_and_sdk_attribution():
    d = doc(
        code={
            "packages": ["com.igexin.push.core", "com.example"],
            "calls": [
                {
                    "api": "android.telephony.TelephonyManager.getDeviceId",
                    "args": [],
                    "location": loc("com.igexin.push.core.b", "a()V", 7),
                },
                {"api": "android.telephony.TelephonyManager.getImei", "args": [0], "location": loc("com.example.Reg")},
            ],
        }
    )
    imei = items(inventory(d))["imei"]
    apis = [e for e in imei["evidence"] if e["source"] == "api"]
    assert [(e["sdk"], e["location"]["class"]) for e in apis] == [
        ("getui", "com.igexin.push.core.b"),
        (None, "com.example.Reg"),
    ]
    assert any(e["source"] == "sdk" and e["sdk"] == "getui" for e in imei["evidence"])
    assert imei["non_resettable"] is True


def test_settings_secure_only_counts_for_android_id():
    d = doc(
        code={
            "calls": [
                {
                    "api": "android.provider.Settings$Secure.getString",
                    "args": [None, "location_mode"],
                    "location": loc("a.B"),
                },
                {"api": "android.provider.Settings$Secure.getString", "args": [None, None], "location": loc("a.C")},
            ]
        }
    )
    assert "android_id" not in items(inventory(d))
    d["code"]["calls"].append(
        {"api": "android.provider.Settings$Secure.getString", "args": [None, "android_id"], "location": loc("a.D")}
    )
    ev = items(inventory(d))["android_id"]["evidence"]
    assert [e["location"]["class"] for e in ev] == ["a.D"]


def test_content_uri_arguments_select_the_item():
    d = doc(
        code={
            "calls": [
                {
                    "api": "android.content.ContentResolver.query",
                    "args": ["content://sms/inbox", None],
                    "location": loc("a.Sms"),
                },
                {"api": "android.content.ContentResolver.query", "args": [None], "location": loc("a.Unknown")},
                {
                    "api": "android.content.ContentResolver.query",
                    "args": ["content://media/external"],
                    "location": loc("a.M"),
                },
            ]
        }
    )
    inv = items(inventory(d))
    assert set(inv) == {"sms"}
    assert inv["sms"]["evidence"][0]["location"]["class"] == "a.Sms"


def test_field_reads_and_manifest_receivers():
    d = doc(
        code={"field_reads": [{"field": "android.os.Build.SERIAL", "location": loc("a.Id")}]},
        manifest={
            "components": [
                {
                    "type": "receiver",
                    "name": "com.example.SmsReceiver",
                    "intent_filters": [{"actions": ["android.provider.Telephony.SMS_RECEIVED"]}],
                }
            ]
        },
    )
    inv = items(inventory(d))
    assert inv["serial_number"]["evidence"][0]["value"] == "android.os.Build.SERIAL"
    assert inv["sms"]["evidence"][0]["source"] == "manifest"
    assert "SMS_RECEIVED" in inv["sms"]["evidence"][0]["value"]


def test_domain_only_sdk_adds_nothing():
    d = doc(strings={"domains": ["api.growingio.com"]})
    assert detect_sdks(d)["detected"][0]["confirmed"] is False
    assert inventory(d) == []


def test_api_evidence_is_capped_per_item():
    calls = [
        {"api": "android.hardware.SensorManager.registerListener", "args": [], "location": loc(f"a.C{i}")}
        for i in range(50)
    ]
    ev = items(inventory(doc(code={"calls": calls})))["motion_sensors"]["evidence"]
    assert len(ev) == 20


def test_app_type_adds_what_the_function_processes():
    inv = items(inventory(doc(), "问诊挂号类"))
    assert set(inv) == {"health_data", "id_card"}
    assert inv["health_data"]["evidence"] == [
        {"source": "app_type", "value": "问诊挂号类", "location": None, "sdk": None}
    ]


def test_flatten_gives_one_row_per_evidence():
    inv = inventory(doc(manifest={"permissions": [perm("android.permission.READ_PHONE_STATE")]}))
    rows = flatten(inv)
    assert {(r["item"], r["source"]) for r in rows} == {("imei", "permission"), ("imsi", "permission")}
    assert all(set(r) == {"item", "sensitive", "source", "value", "location", "sdk"} for r in rows)


# --------------------------------------------------------------------------- app types and necessity


def test_app_type_table_has_39_types_with_source():
    t = load_app_types()
    assert len(t.types) == 39 and [x.number for x in t.types] == list(range(1, 40))
    assert "国信办秘字〔2021〕14号" in t.source["ref"] and t.source["url"].startswith("https://www.cac.gov.cn/")
    catalog = {i.id for i in load_catalog().items}
    for x in t.types:
        assert set(x.allows) <= catalog and set(x.processes) <= catalog, x.id
        assert x.confidence in ("V-secondary", "MEM")


@pytest.mark.parametrize(
    "name", ["问诊挂号类", "问诊挂号", "15", "consultation", "Online consultation and appointment registration"]
)
def test_resolve_app_type_accepts_names_numbers_aliases(name):
    assert resolve_app_type(name).id == "问诊挂号类"


def test_resolve_app_type_rejects_unknown_names():
    assert resolve_app_type(None) is None and resolve_app_type("  ") is None
    with pytest.raises(ValueError, match="问诊挂号类"):
        resolve_app_type("诊所类")


def test_necessity_for_consultation_app():
    d = doc(
        manifest={
            "permissions": [
                perm("android.permission.READ_CONTACTS"),
                perm("android.permission.READ_PHONE_NUMBERS"),
                perm("android.permission.CAMERA"),
            ]
        }
    )
    atype = resolve_app_type("问诊挂号类")
    excess = necessity(inventory(d, "问诊挂号类"), atype)
    assert {x["id"] for x in excess} == {"contacts", "camera"}  # phone number, health data and ID are necessary
    x = next(x for x in excess if x["id"] == "contacts")
    assert x["sources"] == ["permission"] and "问诊挂号类" in x["reason"]["zh"] and x["sensitive"]


def test_necessity_womens_health_needs_nothing_but_app_type_items_are_not_flagged():
    d = doc(manifest={"permissions": [perm("android.permission.ACCESS_COARSE_LOCATION")]})
    excess = necessity(inventory(d, "女性健康类"), resolve_app_type("女性健康类"))
    assert [x["id"] for x in excess] == ["location"]  # health_data comes only from the app type


def test_necessity_needs_a_declared_type():
    d = doc(manifest={"permissions": [perm("android.permission.READ_CONTACTS")]})
    assert necessity(inventory(d), None) == []


def test_pharmacy_alias_is_online_shopping():
    t = resolve_app_type("pharmacy")
    assert t.id == "网上购物类" and t.health and "payment_info" in t.allows
