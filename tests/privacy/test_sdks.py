"""SDK detection: evidence kinds, package boundaries, exclusions and the database itself."""

from __future__ import annotations

import re

import pytest

from medrisk.privacy.inventory import load_catalog
from medrisk.privacy.sdks import detect_sdks, load_database, sdk_of_class

from .helpers import doc

DB = load_database()


def ids(result):
    return {s["id"] for s in result["detected"]}


def by_id(result):
    return {s["id"]: s for s in result["detected"]}


def test_package_evidence_is_confirmed_and_reports_topmost_package():
    r = detect_sdks(doc(code={"packages": ["com.umeng.analytics", "com.umeng.analytics.pro", "com.example"]}))
    assert r["database_version"] == DB.version and r["database_version"]
    s = by_id(r)["umeng_analytics"]
    assert s["confirmed"] is True
    assert s["evidence"] == [{"kind": "package", "value": "com.umeng.analytics"}]
    assert s["vendor"] and s["category"] == "analytics" and "android_id" in s["collects"]


def test_package_prefix_respects_dot_boundaries():
    r = detect_sdks(doc(code={"packages": ["com.umengx.analytics", "com.flurryish", "io.sentryx"]}))
    assert ids(r) == set()


def test_advertising_id_client_is_not_admob():
    r = detect_sdks(doc(code={"packages": ["com.google.android.gms.ads.identifier"]}))
    assert "google_ads" not in ids(r)
    r = detect_sdks(
        doc(code={"packages": ["com.google.android.gms.ads.identifier", "com.google.android.gms.ads.internal"]})
    )
    ev = by_id(r)["google_ads"]["evidence"]
    assert ev == [{"kind": "package", "value": "com.google.android.gms.ads.internal"}]


def test_jpush_excludes_sibling_jiguang_products():
    r = detect_sdks(doc(code={"packages": ["cn.jiguang.verifysdk.api"]}))
    assert ids(r) == {"jverification"}
    r = detect_sdks(doc(code={"packages": ["cn.jpush.android.api", "cn.jiguang.verifysdk.api"]}))
    assert ids(r) == {"jpush", "jverification"}


def test_manifest_component_and_application_class():
    r = detect_sdks(
        doc(
            manifest={
                "application_class": "com.stub.StubApp",
                "components": [{"type": "service", "name": "com.igexin.sdk.PushService"}],
            }
        )
    )
    got = by_id(r)
    assert got["jiagu_360"]["evidence"] == [{"kind": "manifest_component", "value": "com.stub.StubApp"}]
    assert got["getui"]["confirmed"] is True
    assert got["getui"]["evidence"][0]["kind"] == "manifest_component"


def test_native_library_of_a_hardening_shell():
    r = detect_sdks(
        doc(container={"native_libs": ["lib/arm64-v8a/libjiagu_a64.so", "lib/armeabi-v7a/libshella-2.10.so"]})
    )
    got = by_id(r)
    assert got["jiagu_360"]["category"] == "hardening" and got["jiagu_360"]["confirmed"]
    assert got["tencent_legu"]["evidence"] == [{"kind": "native_lib", "value": "lib/armeabi-v7a/libshella-2.10.so"}]


def test_domain_only_is_not_confirmed():
    r = detect_sdks(
        doc(
            strings={
                "domains": ["a.tiles.mapbox.com"],
                "urls": [{"value": "https://x.umeng.com/a", "host": "x.umeng.com"}],
            }
        )
    )
    got = by_id(r)
    assert got["mapbox"]["confirmed"] is False
    assert got["mapbox"]["evidence"] == [{"kind": "domain", "value": "a.tiles.mapbox.com"}]
    assert {s for s in got if got[s]["confirmed"]} == set()
    assert "umeng_analytics" in got  # host from a URL


def test_domain_matching_is_suffix_on_label_boundary():
    r = detect_sdks(doc(strings={"domains": ["notumeng.com", "umeng.com.evil.cn"]}))
    assert ids(r) == set()


def test_sdk_of_class_picks_most_specific_detected_sdk():
    detected = {"jpush", "jverification"}
    assert sdk_of_class("cn.jiguang.verifysdk.a.b", detected) == "jverification"
    assert sdk_of_class("cn.jpush.android.service.PushService$1", detected) == "jpush"
    assert sdk_of_class("com.example.Main", detected) is None
    assert sdk_of_class("com.umeng.analytics.A", detected) is None  # not detected in this app


def test_deterministic_order():
    packages = ["com.tencent.bugly", "com.amap.api.location", "com.alipay.sdk.app", "io.sentry"]
    a = detect_sdks(doc(code={"packages": packages}))
    b = detect_sdks(doc(code={"packages": list(reversed(packages))}))
    assert a == b
    assert [s["id"] for s in a["detected"]] == sorted(s["id"] for s in a["detected"])


# --------------------------------------------------------------------------- the database


def test_database_integrity():
    catalog = {i.id for i in load_catalog().items}
    seen = set()
    for s in DB.sdks:
        assert re.fullmatch(r"[a-z0-9_]+", s.id), s.id
        assert s.id not in seen, s.id
        seen.add(s.id)
        assert s.category in DB.categories, s.id
        assert s.name and s.vendor, s.id
        assert s.packages or s.native_libs, f"{s.id}: needs a code or library signature"
        assert set(s.collects) <= catalog, f"{s.id}: unknown personal-information ids {set(s.collects) - catalog}"
        assert s.confidence in ("high", "medium"), s.id
        for p in s.packages:
            assert re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", p), (s.id, p)
        for d in s.domains:
            assert re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", d), (s.id, d)
    assert len(DB.sdks) >= 100


REQUIRED = {
    # Chinese SDKs the issue names
    "umeng_analytics", "jpush", "getui", "xiaomi_push", "huawei_push", "oppo_push", "vivo_push", "meizu_push",
    "tencent_bugly", "wechat_opensdk", "qq_connect", "weibo_sdk", "alipay_sdk", "amap_location", "baidu_location",
    "baidu_map", "pangle", "tencent_gdt", "kuaishou_ads", "tinker", "sophix", "robust", "jiagu_360", "bangcle",
    "ijiami", "tencent_legu", "baidu_jiagu", "netease_yunxin", "netease_qiyu", "rongcloud", "agora", "tencent_im",
    "tencent_trtc", "shanyan", "shumei", "sensors_data", "growingio", "talkingdata", "zhuge", "alibaba_ut",
    # international trackers
    "firebase_analytics", "firebase_messaging", "firebase_crashlytics", "google_analytics", "google_ads",
    "facebook_analytics", "facebook_ads", "appsflyer", "adjust", "branch", "sentry", "mapbox", "onesignal", "flurry",
    "mixpanel", "amplitude",
}  # fmt: skip


def test_database_covers_the_required_sdks():
    assert REQUIRED <= {s.id for s in DB.sdks}


@pytest.mark.parametrize(
    "category",
    ["analytics", "ads", "push", "payment", "location", "social_login", "crash_reporting", "hot_fix", "hardening",
     "im_rtc", "device_fingerprint"],
)  # fmt: skip
def test_every_issue_category_has_entries(category):
    assert any(s.category == category for s in DB.sdks)


def test_no_two_sdks_share_a_package_signature():
    owners: dict[str, str] = {}
    for s in DB.sdks:
        for p in s.packages:
            assert p not in owners, f"{p} in {owners.get(p)} and {s.id}"
            owners[p] = s.id
