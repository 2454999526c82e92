"""Matching rules (pure): each verdict fires on its case and not on its neighbour."""

from __future__ import annotations

import random

from medrisk.channels import icons, names
from medrisk.channels.match import FiledApp, ListingFacts, Matcher, is_medical
from medrisk.platform.versioning import major_drift

F = FiledApp(
    filing_id=1,
    org_id=7,
    package="cn.hospital.app",
    name="平安好医生",
    version="1.3",
    institution="上海市第一人民医院",
    signers=frozenset({"aa" * 32}),
    version_code=13,
    grade="B",
    severe_rules=frozenset(),
    icon_hash="f0f0f0f0f0f0f0f0",
)


def judge(**kw):
    return Matcher([F]).judge([ListingFacts(ref=1, **kw)])


def kinds(drafts):
    return sorted(d.kind for d in drafts)


def test_names_are_chinese_and_pinyin_aware():
    assert names.similarity("平安好医生", "平安好醫生") == 1.0  # traditional characters, same pinyin
    assert names.similarity("健康云", "jiankangyun") == 1.0
    assert names.similarity("平安好医生", "好大夫在线") < 0.5
    assert names.similarity("A", "A") == 0.0  # too short to mean anything


def test_same_package_other_signer_is_tampered_same_signer_is_not():
    d = judge(package=F.package, app_name="平安好医生", version_name="1.3", signers=["bb" * 32])
    assert kinds(d) == ["tampered"] and d[0].severity == "critical"
    assert judge(package=F.package, version_name="1.3", signers=["aa" * 32]) == []
    assert judge(package=F.package, version_name="1.3", signers=[]) == []  # unknown yet: no verdict


def test_drift_major_and_minor():
    assert major_drift("2.0", "1.3") and major_drift("1.4.0", "1.3") and not major_drift("1.3.7", "1.3")
    major = judge(package=F.package, version_name="2.0", version_code=20, signers=["aa" * 32])
    assert kinds(major) == ["drift"] and major[0].evidence["class"] == "major" and major[0].severity == "high"
    minor = judge(package=F.package, version_name="1.3.1", version_code=14, signers=["aa" * 32])
    assert minor[0].evidence["class"] == "minor" and minor[0].severity == "low"


def test_stale_vulnerable_only_when_older_and_fixed():
    old = dict(package=F.package, version_name="1.1", version_code=11, signers=["aa" * 32], grade="C")
    d = judge(**old, severe_rules=["NET-001"])
    assert kinds(d) == ["drift", "stale_vulnerable"]
    stale = [x for x in d if x.kind == "stale_vulnerable"][0]
    assert stale.evidence["fixed_findings"] == ["NET-001"] and stale.evidence["fixed_version"] == "1.3"
    assert kinds(judge(**old, severe_rules=[])) == ["drift"]  # nothing severe: just drift
    newer = dict(old, version_name="1.5", version_code=15)
    assert "stale_vulnerable" not in kinds(judge(**newer, severe_rules=["NET-001"]))


def test_lookalike_by_name_icon_or_developer_with_evidence():
    by_name = judge(package="cn.fake.app", app_name="平安好醫生")
    assert kinds(by_name) == ["lookalike"] and by_name[0].evidence["fired"][0]["by"] == "name"
    assert by_name[0].threshold == 0.85
    by_icon = judge(package="cn.fake.app", app_name="完全不同", icon_hash="f0f0f0f0f0f0f0f1")
    assert [r["by"] for r in by_icon[0].evidence["fired"]] == ["icon"]
    assert by_icon[0].evidence["fired"][0]["distance"] == 1
    assert judge(package="cn.fake.app", app_name="完全不同", icon_hash="0f0f0f0f0f0f0f0f") == []
    by_dev = judge(package="cn.fake.app", app_name="预约挂号", developer="上海市第一人民医院(官方)")
    assert "developer" in [r["by"] for r in by_dev[0].evidence["fired"]]
    contained = judge(package="cn.fake.app", app_name="平安好医生Plus版")
    assert kinds(contained) == ["lookalike"]


def test_unfiled_medical_inventory():
    assert kinds(judge(package="cn.other", app_name="某某诊所挂号")) == ["unfiled"]
    assert kinds(judge(package="cn.other", app_name="Notes", categories=["Medical"])) == ["unfiled"]
    assert judge(package="cn.other", app_name="Calculator", categories=["Tools"]) == []
    assert is_medical(ListingFacts(ref=0, package="x", app_name="Blood sugar diary"))


def test_icon_index_finds_exactly_what_brute_force_finds():
    rnd = random.Random(7)
    filed = [FiledApp(i, 1, f"p{i}", f"app{i}", "1.0", icon_hash=f"{rnd.getrandbits(64):016x}") for i in range(500)]
    m = Matcher(filed)
    for _ in range(300):
        base = int(filed[rnd.randrange(500)].icon_hash, 16)
        for bit in rnd.sample(range(64), rnd.randrange(0, 10)):
            base ^= 1 << bit
        h = f"{base:016x}"
        want = {i for i, f in enumerate(filed) if icons.distance(h, f.icon_hash) <= m.icon_th}
        got = set(m._icon_hits(ListingFacts(ref=0, package="q", icon_hash=h)))
        assert got == want


def test_dhash_of_real_icons_and_garbage(apks):
    from medrisk.channels.apkinfo import apk_identity

    a = icons.dhash(apk_identity(apks.official.read_bytes()).icon)
    b = icons.dhash(apk_identity(apks.lookalike.read_bytes()).icon)
    assert a is not None and a == b
    assert icons.dhash(b"\x89PNG\r\n\x1a\n garbage") is None
    assert icons.dhash(b"") is None
