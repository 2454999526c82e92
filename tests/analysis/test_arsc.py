"""resources.arsc reader: synthetic tables (dense / offset16 / sparse / compact entries,
bags, reference chains, configuration preference), whole-corpus agreement with
``aapt dump resources``, and fuzzing."""

from __future__ import annotations

import collections
import re
import struct
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medrisk.analysis.arsc import BAG, ResourceTable, describe_config
from medrisk.analysis.axml import TYPE_INT_BOOLEAN, TYPE_INT_DEC, TYPE_REFERENCE, TYPE_STRING
from medrisk.analysis.errors import AnalysisError
from tests.analysis.test_axml import APK_IDS, APKS, _mutate, aapt_all, read_entry, string_pool

# ---------------------------------------------------------------------------
# a minimal resources.arsc encoder


def config(lang: str = "", sdk: int = 0, density: int = 0) -> bytes:
    c = bytearray(64)
    struct.pack_into("<I", c, 0, 64)
    if lang:
        c[8:10] = lang.encode()[:2]
    struct.pack_into("<H", c, 14, density)
    struct.pack_into("<H", c, 24, sdk)
    return bytes(c)


DEFAULT = config()


def _chunk(ctype: int, header: bytes, body: bytes) -> bytes:
    return struct.pack("<HHI", ctype, 8 + len(header), 8 + len(header) + len(body)) + header + body


def build_arsc(
    entries: list[tuple[str, str, dict[bytes, object]]], mode: str = "dense", package_id: int = 0x7F
) -> bytes:
    """``entries``: (type, name, {config: value}); value is ``str`` (string), ``bool``,
    ``int``, ``("ref", id)`` or ``"bag"``. ``mode``: dense | offset16 | sparse | compact."""
    values: list[str] = []
    type_names: list[str] = []
    key_names: list[str] = []
    per_type: dict[str, list[tuple[str, dict[bytes, object]]]] = {}
    for tname, key, cfgs in entries:
        if tname not in type_names:
            type_names.append(tname)
        if key not in key_names:
            key_names.append(key)
        per_type.setdefault(tname, []).append((key, cfgs))
        for v in cfgs.values():
            if isinstance(v, str) and v != "bag" and v not in values:
                values.append(v)

    def encode_value(v: object) -> tuple[int, int]:
        if isinstance(v, bool):
            return TYPE_INT_BOOLEAN, 0xFFFFFFFF if v else 0
        if isinstance(v, int):
            return TYPE_INT_DEC, v & 0xFFFFFFFF
        if isinstance(v, tuple):
            return TYPE_REFERENCE, v[1]
        return TYPE_STRING, values.index(v)

    type_chunks = b""
    for t_index, tname in enumerate(type_names):
        tid = t_index + 1
        items = per_type[tname]
        type_chunks += _chunk(0x0202, struct.pack("<BBHI", tid, 0, 0, len(items)), b"\0" * 4 * len(items))
        configs: list[bytes] = []
        for _k, cfgs in items:
            for c in cfgs:
                if c not in configs:
                    configs.append(c)
        for cfg in configs:
            blobs: list[bytes | None] = []
            for key, cfgs in items:
                if cfg not in cfgs:
                    blobs.append(None)
                    continue
                v = cfgs[cfg]
                k = key_names.index(key)
                if v == "bag":
                    blobs.append(
                        struct.pack("<HHIII", 16, 1, k, 0, 1) + struct.pack("<IHBBI", 0x01010000, 8, 0, 0x10, 5)
                    )
                elif mode == "compact":
                    vt, d = encode_value(v)
                    blobs.append(struct.pack("<HHI", k, (vt << 8) | 0x8, d))
                else:
                    vt, d = encode_value(v)
                    blobs.append(struct.pack("<HHI", 8, 0, k) + struct.pack("<HBBI", 8, 0, vt, d))
            data = b""
            offsets: list[int | None] = []
            for b in blobs:
                offsets.append(None if b is None else len(data))
                data += b or b""
            flags = 0
            if mode == "sparse":
                flags = 0x01
                present = [(i, o) for i, o in enumerate(offsets) if o is not None]
                table = b"".join(struct.pack("<HH", i, o // 4) for i, o in present)
                count = len(present)
            elif mode == "offset16":
                flags = 0x02
                table = b"".join(struct.pack("<H", 0xFFFF if o is None else o // 4) for o in offsets)
                table += b"\0" * (len(table) % 4)
                count = len(offsets)
            else:
                table = b"".join(struct.pack("<I", 0xFFFFFFFF if o is None else o) for o in offsets)
                count = len(offsets)
            header_size = 20 + len(cfg)
            header = struct.pack("<BBHII", tid, flags, 0, count, header_size + len(table)) + cfg
            type_chunks += _chunk(0x0201, header, table + data)

    tpool = string_pool(type_names)
    kpool = string_pool(key_names)
    name = "com.example".encode("utf-16-le").ljust(256, b"\0")
    pkg_header_len = 288 - 8
    type_strings_at = 288
    key_strings_at = 288 + len(tpool)
    pkg_header = struct.pack("<I", package_id) + name
    pkg_header += struct.pack("<IIIII", type_strings_at, len(type_names), key_strings_at, len(key_names), 0)
    assert len(pkg_header) == pkg_header_len
    package = _chunk(0x0200, pkg_header, tpool + kpool + type_chunks)
    body = string_pool(values, utf8=False) + package
    return struct.pack("<HHII", 0x0002, 12, 12 + len(body), 1) + body


SAMPLE = [
    ("bool", "debuggable", {DEFAULT: True, config(sdk=21): False}),
    ("bool", "alias", {DEFAULT: ("ref", 0x7F010000)}),
    ("string", "app_name", {config(lang="fr"): "Appli", DEFAULT: "App"}),
    ("string", "only_fr", {config(lang="fr"): "Bonjour"}),
    ("xml", "network_security_config", {DEFAULT: "res/xml/network_security_config.xml"}),
    ("style", "Theme", {DEFAULT: "bag"}),
    ("integer", "loop_a", {DEFAULT: ("ref", 0x7F050001)}),
    ("integer", "loop_b", {DEFAULT: ("ref", 0x7F050000)}),
    ("integer", "answer", {DEFAULT: 42}),
]


@pytest.mark.parametrize("mode", ["dense", "offset16", "sparse", "compact"])
def test_synthetic_table(mode: str) -> None:
    t = ResourceTable(build_arsc(SAMPLE, mode=mode))
    assert t.resolve(0x7F010000) is True  # default config, not v21
    assert t.resolve(0x7F010001) is True  # reference followed
    assert t.name(0x7F010001) == "bool/alias"
    assert t.resolve(0x7F020000) == "App"  # default preferred though "fr" comes first
    assert t.resolve(0x7F020001) == "Bonjour"  # no default: first available
    assert t.resolve(0x7F030000) == "res/xml/network_security_config.xml"
    assert t.name(0x7F030000) == "xml/network_security_config"
    assert t.resolve(0x7F040000) is BAG and t.name(0x7F040000) == "style/Theme"
    assert t.resolve(0x7F050000) is None  # reference loop
    assert t.resolve(0x7F050002) == 42
    assert t.resolve(0x7F050003) is None  # no such entry
    assert t.resolve(0x7F990000) is None and t.resolve(0x01010000) is None
    assert t.find("string", "app_name") == 0x7F020000
    assert t.named_strings() == [("app_name", "App"), ("only_fr", "Bonjour")]
    assert "Appli" in t.strings()
    configs = {c for _rid, _n, c, _v in t.entries()}
    assert configs == {"default", "v21", "fr"}


def test_reference_chain_depth_is_bounded() -> None:
    chain = [("integer", f"r{i}", {DEFAULT: ("ref", 0x7F010000 + i + 1)}) for i in range(40)]
    chain.append(("integer", "end", {DEFAULT: 7}))
    t = ResourceTable(build_arsc(chain))
    assert t.resolve(0x7F010000 + 35) == 7
    assert t.resolve(0x7F010000) is None  # deeper than MAX_REFERENCE_DEPTH


def test_describe_config() -> None:
    assert describe_config(DEFAULT) == "default"
    assert describe_config(config(lang="en", sdk=21)) == "en-v21"
    assert describe_config(config(density=480)) == "xxhdpi"


@pytest.mark.parametrize(
    "data", [b"", b"\x02\x00\x0c\x00", b"\x03\x00\x08\x00\x10\x00\x00\x00" + b"\0" * 8, b"\0" * 64]
)
def test_garbage_raises_corrupt_arsc(data: bytes) -> None:
    with pytest.raises(AnalysisError) as exc:
        ResourceTable(data)
    assert exc.value.code == "corrupt_arsc"


def test_truncated_table_keeps_what_it_can() -> None:
    data = build_arsc(SAMPLE)
    t = ResourceTable(data[: len(data) - 40])
    assert t.anomalies
    assert t.resolve(0x7F020000) in ("App", None)


# ---------------------------------------------------------------------------
# corpus


def test_debuggable_resource_apk() -> None:
    arsc = read_entry(next(p for p in APKS if p.name == "apksig-debuggable-resource.apk"), "resources.arsc")
    t = ResourceTable(arsc)
    assert t.name(0x7F030000) == "bool/debuggable"
    assert t.resolve(0x7F030000) is False
    assert t.resolve(0x7F020000) == "Tiny App for CTS"  # default config, not the pseudo-locales


def test_xml_reference_resolves_to_path() -> None:
    t = ResourceTable(read_entry(next(p for p in APKS if p.name == "AndroGoat.apk"), "resources.arsc"))
    assert t.name(0x7F0E0000) == "xml/network_security_config"
    assert t.resolve(0x7F0E0000) == "res/xml/network_security_config.xml"


@pytest.fixture(scope="module")
def aapt_resources(corpus_dir: Path) -> dict[str, tuple[int, str]]:
    return aapt_all("--values", "resources")


_RES_RE = re.compile(r"^\s+resource (0x[0-9a-f]{8}) [^:]*:(\S+): (?:t=(0x[0-9a-f]+) d=(0x[0-9a-f]+)|(<bag>))")
_STR_RE = re.compile(r'^\s+\(string(?:8|16)\) "(.*)"$')


def _aapt_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@pytest.mark.parametrize("apk", APKS, ids=APK_IDS)
def test_entries_match_aapt(apk: Path, aapt_resources) -> None:
    data = read_entry(apk, "resources.arsc")
    rc, out = aapt_resources[apk.name]
    if data is None:
        assert rc != 0 or "Package" not in out
        return
    t = ResourceTable(data)
    if rc != 0 or "Package Groups (0)" in out:
        count = sum(1 for _ in t.entries())
        if apk.name == "fdroidserver-janus.apk":
            # aapt cannot open the zip (a DEX file is prepended: Janus, CVE-2017-13156);
            # Android's zip reader and ours tolerate it, and we still read the table.
            assert count > 0
        else:
            assert count == 0  # e.g. a test APK whose table has no package at all
        return
    # every (id, type/name, value) of every configuration, as a multiset
    theirs: collections.Counter = collections.Counter()
    default_strings: dict[int, str] = {}
    in_default = False
    last: tuple[int, int] | None = None
    for line in out.splitlines():
        if line.startswith("      config "):
            in_default = line.strip() == "config (default):"
            continue
        m = _RES_RE.match(line)
        if m:
            rid = int(m.group(1), 16)
            value = "bag" if m.group(5) else (int(m.group(3), 16), int(m.group(4), 16))
            theirs[(rid & 0xFFFFFF if rid >> 24 == 0x02 else rid, m.group(2), value)] += 1
            last = (rid, value[0]) if in_default and value != "bag" else None
            continue
        m = _STR_RE.match(line)
        if m and last is not None and last[1] == TYPE_STRING:
            default_strings[last[0]] = m.group(1)
            last = None
    ours: collections.Counter = collections.Counter()
    for rid, name, _cfg, ev in t.entries():
        value = "bag" if ev.value_type is None else (ev.value_type, ev.data)
        ours[(rid & 0xFFFFFF if rid >> 24 == 0 else rid, name, value)] += 1
    assert ours == theirs
    # string values of the default configuration decode identically
    for rid, text in default_strings.items():
        if rid >> 24 == 0x02:
            continue  # shared-library package: aapt renumbers it
        assert _aapt_escape(t.resolve(rid)) == text, hex(rid)


# ---------------------------------------------------------------------------
# fuzzing


SEED_TABLES = [
    d
    for d in (read_entry(p, "resources.arsc") for p in APKS if p.name.startswith(("apksig-", "fdroidserver-info")))
    if d is not None
] + [build_arsc(SAMPLE, mode=m) for m in ("dense", "sparse", "offset16", "compact")]


def _exercise(data: bytes) -> None:
    try:
        t = ResourceTable(data)
    except AnalysisError as e:
        assert e.code == "corrupt_arsc"
        return
    for _ in t.entries():
        pass
    t.strings()
    t.named_strings()
    for rid in (0x7F010000, 0x7F010001, 0x7F020000, 0x7F030000, 0x7F050000, 0x7F040000):
        t.resolve(rid)
        t.name(rid)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEED_TABLES) - 1), st.integers(0, 2**32), st.integers(1, 12))
def test_fuzz_mutated_tables(which: int, seed: int, n: int) -> None:
    _exercise(_mutate(SEED_TABLES[which], seed, n))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(data: bytes) -> None:
    _exercise(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_random_body_with_table_header(body: bytes) -> None:
    _exercise(struct.pack("<HHII", 2, 12, 12 + len(body), 1) + body)


# ---------------------------------------------------------------------------
# resource facts (analysis/resources.py)


def _resource_facts_of(name: str):
    from medrisk.analysis.resources import resource_facts

    apk = next(p for p in APKS if p.name == name)
    with zipfile.ZipFile(apk) as z:
        names = z.namelist()
    return resource_facts(read_entry(apk, "resources.arsc"), names)


def test_resource_facts_firebase_and_secrets() -> None:
    goat = _resource_facts_of("AndroGoat.apk")
    assert goat.firebase_urls == ["https://androgoat-42597.firebaseio.com"]
    assert goat.strings > 50
    injured = {s.name: s.value for s in _resource_facts_of("InjuredAndroid-2020-01.apk").secret_strings}
    assert injured["Access_Key"].startswith("AKIA")
    assert "Secret_Key" in injured
    dvb = _resource_facts_of("DamnVulnerableBank.apk")
    assert dvb.firebase_urls == ["https://damn-vulnerable-bank.firebaseio.com"]
    assert "google_api_key" in {s.name for s in dvb.secret_strings}


@pytest.mark.parametrize("apk", ["ExploitMe-FalseSecureMobile.apk", "InsecureBankv2.apk", "drozer-agent.apk"])
def test_password_labels_are_not_secrets(apk: str) -> None:
    # e.g. loginscreen_password="Password:", ssl_keystore_password="Keystore Password"
    assert _resource_facts_of(apk).secret_strings == []


def test_keystores_by_name() -> None:
    f = _resource_facts_of("drozer-agent.apk")
    assert f.keystores == ["res/raw/agent.bks", "res/raw/ca.bks"]
    assert f.to_dict()["keystores"] == f.keystores


def test_resource_facts_synthetic() -> None:
    from medrisk.analysis.resources import looks_like_credential, name_suggests_secret, resource_facts

    arsc = build_arsc(
        [
            ("string", "app_name", {DEFAULT: "MedTrack"}),
            ("string", "stripe_secret_key", {DEFAULT: "sk_live_51Habcdefghij0123456789"}),
            ("string", "password_hint", {DEFAULT: "At least 8 characters1"}),
            ("string", "db_password", {DEFAULT: "Password"}),
            ("string", "clientSecret", {DEFAULT: "q8Zr3LmP0vX2"}),
            ("string", "api_key_ref", {DEFAULT: "@string/other"}),
            ("string", "fb", {DEFAULT: "see https://medtrack-prod.europe-west1.firebasedatabase.app/x"}),
            ("string", "alias", {DEFAULT: ("ref", 0x7F010000), config(lang="de"): "Ignored"}),
            ("string", "framework_ref", {DEFAULT: ("ref", 0x0104000A), config(lang="de"): "OK"}),
        ]
    )
    f = resource_facts(arsc, ["assets/server.crt", "META-INF/CERT.RSA", "assets/keys.p12"])
    assert [s.name for s in f.secret_strings] == ["clientSecret", "stripe_secret_key"]
    assert f.firebase_urls == ["https://medtrack-prod.europe-west1.firebasedatabase.app"]
    assert f.strings == 9
    named = dict(ResourceTable(arsc).named_strings())
    assert named["alias"] == "MedTrack"  # default config's reference followed
    assert named["framework_ref"] == "OK"  # unresolvable default: first config with text
    assert f.certificates == ["assets/server.crt"] and f.keystores == ["assets/keys.p12"]
    assert list(f.to_dict()) == [
        "strings",
        "firebase_urls",
        "secret_strings",
        "string_secrets",
        "layouts",
        "file_provider_paths",
        "certificates",
        "keystores",
    ]
    assert resource_facts(None).to_dict() == {
        "strings": 0,
        "firebase_urls": [],
        "secret_strings": [],
        "string_secrets": [],
        "layouts": [],
        "file_provider_paths": [],
        "certificates": [],
        "keystores": [],
    }
    assert name_suggests_secret("googleApiKey") and name_suggests_secret("AWS_SECRET")
    assert not name_suggests_secret("password_toggle_content_description")
    assert not looks_like_credential("Password") and looks_like_credential("hunter2hunter2")
