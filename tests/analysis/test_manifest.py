"""Manifest facts: whole-corpus agreement with ``aapt dump badging`` / ``xmltree``,
known vulnerable apps, Android defaults on synthetic manifests, and fuzzing."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medrisk.analysis.axml import Ref
from medrisk.analysis.errors import AnalysisError
from medrisk.analysis.manifest import (
    expand_class_name,
    framework_protection_level,
    manifest_facts,
    protection_level_name,
)
from tests.analysis.test_arsc import DEFAULT, build_arsc
from tests.analysis.test_axml import APK_IDS, APKS, A, E, _mutate, aapt_all, build_axml, parse_xmltree, read_entry

COMPONENT_TAGS = {"activity", "activity-alias", "service", "receiver", "provider"}


def facts_of(name: str):
    apk = next(p for p in APKS if p.name == name)
    return manifest_facts(read_entry(apk, "AndroidManifest.xml"), read_entry(apk, "resources.arsc"))


# ---------------------------------------------------------------------------
# whole corpus against aapt


@pytest.fixture(scope="module")
def aapt_dumps(corpus_dir: Path) -> dict[str, tuple[tuple[int, str], tuple[int, str]]]:
    badging = aapt_all("badging")
    xmltree = aapt_all("xmltree", "{apk}", "AndroidManifest.xml")
    return {k: (badging[k], xmltree[k]) for k in badging}


def _quoted(value: str) -> str | None:
    m = re.match(r'^"(.*)"$', value)
    return m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m else None


@pytest.mark.parametrize("apk", APKS, ids=APK_IDS)
def test_manifest_matches_aapt(apk: Path, aapt_dumps) -> None:
    facts = manifest_facts(read_entry(apk, "AndroidManifest.xml"), read_entry(apk, "resources.arsc"))
    json.dumps(facts.to_dict())
    (brc, badging), (xrc, xmltree) = aapt_dumps[apk.name]
    if brc != 0 or xrc != 0:
        # Only fdroidserver-janus.apk: aapt refuses the zip because a DEX file is
        # prepended to it (Janus, CVE-2017-13156). Android's zip reader (central
        # directory first) and Python's both read it, so we still parse the manifest.
        assert apk.name == "fdroidserver-janus.apk"
        assert facts.package == "com.example" and facts.components
        return
    m = re.search(r"^package: name='([^']*)' versionCode='([^']*)' versionName='([^']*)'", badging, re.M)
    assert m, badging[:300]
    assert facts.package == m.group(1)
    assert (str(facts.version_code) if facts.version_code is not None else "") == m.group(2)
    assert (facts.version_name or "") == m.group(3)
    sdk = re.search(r"^sdkVersion:'([^']*)'", badging, re.M)
    assert (str(facts.min_sdk) if facts.min_sdk is not None else None) == (sdk.group(1) if sdk else None)
    target = re.search(r"^targetSdkVersion:'([^']*)'", badging, re.M)
    assert (str(facts.target_sdk) if facts.target_sdk is not None else None) == (target.group(1) if target else None)
    assert facts.debuggable == bool(re.search(r"^application-debuggable$", badging, re.M))

    # permissions and components from the xmltree dump
    nodes = parse_xmltree(xmltree)
    perms: set[str] = set()
    components: list[tuple[str, str]] = []
    in_app = False
    for node in nodes:
        if node.depth == 1:
            in_app = node.tag == "application"
        name = next((_quoted(v) for _n, rid, v in node.attrs if rid == 0x01010003), None)
        if node.depth == 1 and node.tag.startswith("uses-permission") and name:
            perms.add(name)
        if node.depth == 2 and in_app and node.tag in COMPONENT_TAGS and name:
            components.append((node.tag, expand_class_name(facts.package, name)))
    assert {p.name for p in facts.permissions} == perms
    assert sorted((c.type, c.name) for c in facts.components) == sorted(components)
    # badging's uses-permission lines = ours + the ones aapt infers itself
    implied = set(re.findall(r"^uses-implied-permission: name='([^']*)'", badging, re.M))
    listed = set(re.findall(r"^uses-permission(?:-sdk-23)?: name='([^']*)'", badging, re.M))
    assert perms <= listed and listed - perms <= implied
    launchable = re.findall(r"^launchable-activity: name='([^']*)'", badging, re.M)
    names = {c.name for c in facts.components}
    assert all(a in names for a in launchable)


def test_corpus_speed() -> None:
    blobs = [(read_entry(p, "AndroidManifest.xml"), read_entry(p, "resources.arsc")) for p in APKS]
    t = time.perf_counter()
    for man, arsc in blobs:
        manifest_facts(man, arsc)
    assert time.perf_counter() - t < 2.0  # ~50 ms for the 70 APKs (incl. resources.arsc)


# ---------------------------------------------------------------------------
# known apps


def test_insecurebankv2() -> None:
    f = facts_of("InsecureBankv2.apk")
    assert f.package == "com.android.insecurebankv2"
    assert f.debuggable is True
    assert f.allow_backup is True and f.allow_backup_explicit is True
    exported = {c.name.rsplit(".", 1)[1] for c in f.components if c.exported}
    assert exported == {
        "ChangePassword",
        "DoTransfer",
        "LoginActivity",
        "MyBroadCastReceiver",
        "PostLogin",
        "TrackUserContentProvider",
        "ViewStatement",
    }
    login = next(c for c in f.components if c.name.endswith(".LoginActivity"))
    assert login.exported_explicit is False and login.intent_filters  # implicit via filter, target 22
    provider = next(c for c in f.components if c.type == "provider")
    assert provider.authorities == ["com.android.insecurebankv2.TrackUserContentProvider"]
    assert provider.to_dict()["location"] == {
        "file": "AndroidManifest.xml",
        "class": provider.name,
        "method": None,
        "line": provider.line,
    }
    assert provider.line and provider.line > 1
    perms = {p.name: p for p in f.permissions}
    assert perms["android.permission.SEND_SMS"].protection_level == "dangerous"
    assert perms["android.permission.INTERNET"].protection_level == "normal"
    assert perms["android.permission.READ_EXTERNAL_STORAGE"].max_sdk == 18


def test_debuggable_via_resource() -> None:
    # android:debuggable="@bool/debuggable" (0x7f030000) and the resource is false
    f = facts_of("apksig-debuggable-resource.apk")
    assert f.document.root.find("application").value("debuggable") == Ref(0x7F030000)
    assert f.debuggable is False
    assert facts_of("apksig-debuggable-boolean.apk").debuggable is True


def test_network_security_config_reference() -> None:
    f = facts_of("AndroGoat.apk")
    assert f.network_security_config == "res/xml/network_security_config.xml"
    assert f.debuggable is True
    dvb = facts_of("DamnVulnerableBank.apk")
    assert dvb.network_security_config == "res/xml/network_security_config.xml"
    assert dvb.uses_cleartext_traffic is True


def test_deep_links_in_corpus() -> None:
    links = facts_of("InsecureShop.apk").deep_links
    assert [(d.scheme, d.host, d.browsable) for d in links] == [("insecureshop", "com.insecureshop", True)]
    assert links[0].component == "com.insecureshop.WebViewActivity"
    ovaa = facts_of("ovaa.apk").deep_links
    assert ("oversecured", "ovaa") in {(d.scheme, d.host) for d in ovaa}
    # AndroGoat: a VIEW filter with a scheme but no BROWSABLE category
    goat = facts_of("AndroGoat.apk").deep_links
    assert [(d.scheme, d.host, d.browsable) for d in goat] == [("androgoat", "vulnapp", False)]


def test_defined_permission_levels_in_corpus() -> None:
    f = facts_of("exodus-instapaper.apk")
    assert [(p.name, p.protection_level) for p in f.defined_permissions] == [
        ("com.olivierpayen.leaninstapaper.permission.C2D_MESSAGE", "signature")
    ]
    perms = {p.name: p.protection_level for p in f.permissions}
    assert perms["com.olivierpayen.leaninstapaper.permission.C2D_MESSAGE"] == "signature"
    receiver = next(c for c in f.components if c.permission == "com.google.android.c2dm.permission.SEND")
    assert receiver.permission_level == "signature"


def test_duplicate_permissions_apk() -> None:
    f = facts_of("androguard-duplicate.permissions.apk")
    names = [p.name for p in f.permissions]
    assert names == sorted(set(names))  # INTERNET listed twice in the file, once here
    perms = {p.name: p for p in f.permissions}
    assert perms["android.permission.REQUEST_IGNORE_BATTERY_OPTIMIZATIONS"].max_sdk == 27  # -sdk-23 form
    assert perms["android.permission.WRITE_EXTERNAL_STORAGE"].max_sdk == 18
    assert f.debuggable is True


# ---------------------------------------------------------------------------
# synthetic manifests: Android defaults and resolution rules


def manifest(app_attrs=(), components=(), target=30, extra=(), min_sdk=21, package="com.ex") -> bytes:
    sdk = [A("minSdkVersion", min_sdk)] + ([A("targetSdkVersion", target)] if target is not None else [])
    return build_axml(
        E(
            "manifest",
            [A("versionCode", 1), A("package", package, ns=None)],
            [E("uses-sdk", sdk, line=2), *extra, E("application", list(app_attrs), list(components), line=10)],
        )
    )


def comp(tag: str, name: str, *attrs: A, filters: int = 0, line: int = 20) -> E:
    children = [
        E("intent-filter", [], [E("action", [A("name", "android.intent.action.MAIN")])]) for _ in range(filters)
    ]
    return E(tag, [A("name", name), *attrs], children, line=line)


@pytest.mark.parametrize(
    ("tag", "target", "filters", "expected"),
    [
        ("activity", 30, 1, True),
        ("activity", 30, 0, False),
        ("activity", 31, 1, False),
        ("service", 22, 1, True),
        ("receiver", 33, 1, False),
        ("provider", 16, 0, True),
        ("provider", 17, 0, False),
        ("provider", 30, 1, False),
        ("activity", None, 1, True),  # target defaults to minSdk (21)
    ],
)
def test_exported_defaults(tag: str, target, filters: int, expected: bool) -> None:
    f = manifest_facts(manifest(components=[comp(tag, ".C", filters=filters)], target=target))
    (c,) = f.components
    assert c.exported is expected and c.exported_explicit is False


def test_explicit_exported_and_names() -> None:
    f = manifest_facts(
        manifest(
            components=[
                comp("activity", ".Dot", A("exported", False), filters=1),
                comp("service", "Bare", A("exported", True)),
                comp("receiver", "org.other.Full", A("exported", "true")),  # string value, as TypedArray
            ]
        )
    )
    by = {c.name: c for c in f.components}
    assert set(by) == {"com.ex.Dot", "com.ex.Bare", "org.other.Full"}
    assert by["com.ex.Dot"].exported is False and by["com.ex.Dot"].exported_explicit is True
    assert by["com.ex.Bare"].exported is True
    assert by["org.other.Full"].exported is True
    assert [c.name for c in f.components] == sorted(c.name for c in f.components)


def test_resource_referenced_values() -> None:
    arsc = build_arsc(
        [
            ("bool", "dbg", {DEFAULT: True}),
            ("bool", "exp", {DEFAULT: ("ref", 0x7F010000)}),
            ("string", "vname", {DEFAULT: "2.0-res"}),
            ("xml", "nsc", {DEFAULT: "res/xml/nsc.xml"}),
            ("xml", "backup", {DEFAULT: "res/xml/backup_rules.xml"}),
        ]
    )
    data = build_axml(
        E(
            "manifest",
            [A("versionName", Ref(0x7F020000)), A("package", "com.ex", ns=None)],
            [
                E(
                    "application",
                    [
                        A("debuggable", Ref(0x7F010000)),
                        A("networkSecurityConfig", Ref(0x7F030000)),
                        A("fullBackupContent", Ref(0x7F030001)),
                        A("dataExtractionRules", Ref(0x7F030001)),
                    ],
                    [comp("activity", ".X", A("exported", Ref(0x7F010001)))],
                )
            ],
        )
    )
    f = manifest_facts(data, arsc)
    assert f.debuggable is True
    assert f.version_name == "2.0-res"
    assert f.network_security_config == "res/xml/nsc.xml"
    assert f.full_backup_content == f.data_extraction_rules == "res/xml/backup_rules.xml"
    assert f.components[0].exported is True and f.components[0].exported_explicit
    # without resources.arsc the reference cannot be resolved: default applies, noted
    g = manifest_facts(data)
    assert g.debuggable is False
    assert g.network_security_config == "@0x7f030000"


def test_application_attributes() -> None:
    f = manifest_facts(
        manifest(
            app_attrs=[
                A("name", ".App"),
                A("allowBackup", False),
                A("testOnly", True),
                A("usesCleartextTraffic", True),
                A("taskAffinity", ""),
                A("fullBackupContent", False),
            ],
            extra=[
                E("uses-feature", [A("name", "android.hardware.camera")]),
                E("uses-feature", [A("glEsVersion", 0x20000)]),
            ],
        )
    )
    assert f.application_class == "com.ex.App"
    assert f.allow_backup is False and f.allow_backup_explicit is True
    assert f.test_only is True and f.uses_cleartext_traffic is True
    assert f.task_affinity == ""
    assert f.full_backup_content == "false"
    assert f.uses_features == ["android.hardware.camera"]
    assert f.split is None
    assert manifest_facts(manifest(package="com.ex", extra=[])).split is None
    split = build_axml(E("manifest", [A("package", "com.ex", ns=None), A("split", "config.arm64_v8a", ns=None)]))
    assert manifest_facts(split).split == "config.arm64_v8a"
    d = manifest_facts(manifest())
    assert d.allow_backup is True and d.allow_backup_explicit is False
    assert d.uses_cleartext_traffic is None and d.debuggable is False


def test_permissions_and_protection() -> None:
    extra = [
        E("uses-permission", [A("name", "android.permission.CAMERA")]),
        E("uses-permission", [A("name", "android.permission.CAMERA"), A("maxSdkVersion", 28)]),
        E("uses-permission-sdk-23", [A("name", "android.permission.health.READ_HEART_RATE")]),
        E("uses-permission", [A("name", "com.vendor.SECRET")]),
        E("uses-permission", [A("name", "com.ex.OWN")]),
        E("permission", [A("name", "com.ex.OWN"), A("protectionLevel", 0x2, vtype=0x11)]),
        E("permission", [A("name", "com.ex.PRIV"), A("protectionLevel", 0x12, vtype=0x11)]),
        E("permission", [A("name", "com.ex.WEAK")]),
        E("queries", [], [E("package", [A("name", "com.bank.app")]), E("intent", [])]),
    ]
    provider = comp(
        "provider",
        ".Prov",
        A("authorities", "a.one; a.two"),
        A("readPermission", "com.ex.OWN"),
        A("grantUriPermissions", True),
    )
    activity = comp("activity", ".Act", A("launchMode", 2), A("taskAffinity", "evil.task"))
    f = manifest_facts(
        manifest(app_attrs=[A("permission", "com.ex.WEAK")], components=[provider, activity], extra=extra)
    )
    perms = {p.name: (p.protection_level, p.max_sdk) for p in f.permissions}
    assert perms == {
        "android.permission.CAMERA": ("dangerous", None),  # unbounded request wins over maxSdk
        "android.permission.health.READ_HEART_RATE": ("dangerous", None),
        "com.vendor.SECRET": ("unknown", None),
        "com.ex.OWN": ("signature", None),
    }
    defined = {p.name: p.protection_level for p in f.defined_permissions}
    assert defined == {"com.ex.OWN": "signature", "com.ex.PRIV": "signatureOrSystem", "com.ex.WEAK": "normal"}
    assert f.queries_packages == ["com.bank.app"]
    by = {c.name: c for c in f.components}
    prov = by["com.ex.Prov"]
    assert prov.authorities == ["a.one", "a.two"]
    assert prov.permission == "com.ex.WEAK" and prov.permission_level == "normal"  # inherited from <application>
    assert prov.read_permission == "com.ex.OWN" and prov.write_permission == "com.ex.WEAK"
    assert prov.grant_uri_permissions is True
    act = by["com.ex.Act"]
    assert act.launch_mode == "singleTask" and act.task_affinity == "evil.task"


def test_protection_level_helpers() -> None:
    assert protection_level_name(0) == "normal"
    assert protection_level_name(1) == "dangerous"
    assert protection_level_name(0x2 | 0x10) == "signatureOrSystem"
    assert protection_level_name(0x2 | 0x1000000) == "signature"
    assert protection_level_name("signature|privileged") == "signatureOrSystem"
    assert protection_level_name("dangerous") == "dangerous"
    assert protection_level_name(None) == "normal"
    assert framework_protection_level("android.permission.READ_SMS") == "dangerous"
    assert framework_protection_level("android.permission.BIND_ACCESSIBILITY_SERVICE") == "signature"
    assert framework_protection_level("android.permission.INSTALL_PACKAGES") == "signatureOrSystem"
    assert framework_protection_level("com.unknown.X") == "unknown"


def test_intent_filters_and_deep_links() -> None:
    browsable = E(
        "intent-filter",
        [A("autoVerify", True), A("priority", 999)],
        [
            E("action", [A("name", "android.intent.action.VIEW")]),
            E("category", [A("name", "android.intent.category.DEFAULT")]),
            E("category", [A("name", "android.intent.category.BROWSABLE")]),
            E("data", [A("scheme", "https"), A("host", "med.example.com"), A("pathPrefix", "/rx")]),
            E("data", [A("scheme", "medapp")]),
        ],
    )
    no_scheme = E(
        "intent-filter",
        [],
        [E("action", [A("name", "android.intent.action.SEND")]), E("data", [A("mimeType", "text/plain")])],
    )
    act = E("activity", [A("name", ".Link"), A("exported", True)], [browsable, no_scheme], line=30)
    f = manifest_facts(manifest(components=[act]))
    (c,) = f.components
    assert c.intent_filters[0].auto_verify is True and c.intent_filters[0].priority == 999
    assert c.intent_filters[1].data[0].mime_type == "text/plain"
    assert c.to_dict()["intent_filters"][0]["data"][0] == {
        "scheme": "https",
        "host": "med.example.com",
        "port": None,
        "path": None,
        "path_prefix": "/rx",
        "path_pattern": None,
        "mime_type": None,
    }
    # data elements of one filter combine: 2 schemes x 1 host x 1 path
    assert [(d.scheme, d.host, d.path, d.auto_verify, d.browsable) for d in f.deep_links] == [
        ("https", "med.example.com", "/rx", True, True),
        ("medapp", "med.example.com", "/rx", True, True),
    ]
    assert c.line == 30


def test_to_dict_shape() -> None:
    d = manifest_facts(manifest(components=[comp("activity", ".A", filters=1)])).to_dict()
    assert list(d) == [
        "package",
        "version_code",
        "version_name",
        "min_sdk",
        "target_sdk",
        "max_sdk",
        "compile_sdk",
        "application_class",
        "debuggable",
        "test_only",
        "allow_backup",
        "allow_backup_explicit",
        "full_backup_content",
        "data_extraction_rules",
        "uses_cleartext_traffic",
        "network_security_config",
        "shared_user_id",
        "task_affinity",
        "permissions",
        "defined_permissions",
        "components",
        "deep_links",
        "uses_features",
        "queries_packages",
    ]
    assert set(d["components"][0]) == {
        "defined",
        "type",
        "name",
        "exported",
        "exported_explicit",
        "enabled",
        "permission",
        "read_permission",
        "write_permission",
        "permission_level",
        "authorities",
        "grant_uri_permissions",
        "launch_mode",
        "task_affinity",
        "intent_filters",
        "location",
    }
    assert json.loads(json.dumps(d)) == d


def test_errors() -> None:
    for data in (None, b""):
        with pytest.raises(AnalysisError) as exc:
            manifest_facts(data)
        assert exc.value.code == "no_manifest"
    with pytest.raises(AnalysisError) as exc:
        manifest_facts(build_axml(E("resources")))
    assert exc.value.code == "corrupt_manifest"
    with pytest.raises(AnalysisError) as exc:
        manifest_facts(b"\x03\x00\x08\x00garbage-garbage")
    assert exc.value.code == "corrupt_axml"
    # a broken resources.arsc does not stop the manifest
    f = manifest_facts(manifest(), b"\x02\x00\x0c\x00junk")
    assert any("resources.arsc" in a for a in f.anomalies)


def test_hostile_attribute_names_use_resource_ids() -> None:
    # pool names swapped/blank: the ids decide (debuggable true, exported true)
    data = build_axml(
        E(
            "manifest",
            [A("package", "com.ex", ns=None)],
            [
                E(
                    "application",
                    [A("label", True, resid=0x0101000F), A("debuggable", False, resid=0x01010001)],
                    [E("activity", [A("", ".Hidden", resid=0x01010003), A("x", True, resid=0x01010010)])],
                )
            ],
        )
    )
    f = manifest_facts(data)
    assert f.debuggable is True
    assert [(c.name, c.exported) for c in f.components] == [("com.ex.Hidden", True)]
    assert f.anomalies


# ---------------------------------------------------------------------------
# fuzzing


SEEDS = [
    (read_entry(p, "AndroidManifest.xml"), read_entry(p, "resources.arsc"))
    for p in APKS
    if p.name in ("InsecureBankv2.apk", "apksig-debuggable-resource.apk", "AndroGoat.apk", "ovaa.apk")
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEEDS) - 1), st.integers(0, 2**32), st.integers(1, 16), st.booleans())
def test_fuzz_mutated_manifests(which: int, seed: int, n: int, mutate_arsc: bool) -> None:
    man, arsc = SEEDS[which]
    man = _mutate(man, seed, n)
    if mutate_arsc and arsc:
        arsc = _mutate(arsc, seed + 1, n)
    t = time.perf_counter()
    try:
        json.dumps(manifest_facts(man, arsc).to_dict())
    except AnalysisError as e:
        assert e.code in ("corrupt_axml", "corrupt_manifest", "no_manifest")
    assert time.perf_counter() - t < 2.0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        manifest_facts(data)
    except AnalysisError:
        pass


# ---------------------------------------------------------------------------
# JSON contract: every corpus APK's facts validate against the scan-result schema


def test_facts_match_scan_result_schema() -> None:
    import jsonschema

    from medrisk.analysis.netconfig import netconfig_facts
    from medrisk.analysis.resources import resource_facts

    root = Path(__file__).resolve().parents[2]
    schema = json.loads((root / "src/medrisk/schema/scan-result.schema.json").read_text())
    indicators = schema["$defs"]["scan"]["properties"]["indicators"]["properties"]
    validators = {
        key: jsonschema.Draft202012Validator(indicators[key])
        for key in ("manifest", "network_security_config", "resources")
    }
    for apk in APKS:
        arsc = read_entry(apk, "resources.arsc")
        m = manifest_facts(read_entry(apk, "AndroidManifest.xml"), arsc)
        path = m.network_security_config
        n = netconfig_facts(read_entry(apk, path) if path else None, path, arsc)
        r = resource_facts(arsc)
        for key, facts in (("manifest", m), ("network_security_config", n), ("resources", r)):
            errors = [e.message for e in validators[key].iter_errors(facts.to_dict())]
            assert not errors, (apk.name, key, errors[:3])
