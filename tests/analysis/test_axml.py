"""Binary XML reader: synthetic evasion cases, whole-corpus agreement with Debian's
``aapt dump xmltree``, and fuzzing.

This module also holds the helpers the other analysis tests import: a small AXML
encoder (``build_axml``) and the cached, thread-pooled ``aapt`` runner.
"""

from __future__ import annotations

import random
import re
import shutil
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medrisk.analysis.axml import (
    ANDROID_ATTR_IDS,
    ANDROID_NS,
    TYPE_INT_BOOLEAN,
    TYPE_INT_DEC,
    TYPE_REFERENCE,
    TYPE_STRING,
    Ref,
    parse_axml,
    to_xml,
)
from medrisk.analysis.errors import AnalysisError
from tests.conftest import corpus_apks, require_tool

# ---------------------------------------------------------------------------
# shared helpers: corpus access and aapt

AAPT = shutil.which("aapt")
APKS = corpus_apks()
APK_IDS = [p.name for p in APKS]


def read_entry(apk: Path, name: str) -> bytes | None:
    """An entry of a corpus APK via the stdlib zip reader (None when absent)."""
    with zipfile.ZipFile(apk) as z:
        try:
            return z.read(name)
        except KeyError:
            return None


@cache
def aapt(*args: str) -> tuple[int, str]:
    """(exit code, stdout) of ``aapt args...``, cached for the test session."""
    proc = subprocess.run([AAPT, *args], capture_output=True, text=True, errors="replace", timeout=120)
    return proc.returncode, proc.stdout


def aapt_all(*args: str) -> dict[str, tuple[int, str]]:
    """``aapt dump ARGS...`` for the whole corpus, in a thread pool; ``{apk}`` in ARGS
    is replaced by the APK path (appended when absent)."""
    require_tool("aapt")
    if "{apk}" not in args:
        args = (*args, "{apk}")

    def run(p: Path) -> tuple[int, str]:
        return aapt("dump", *(str(p) if a == "{apk}" else a for a in args))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = pool.map(run, APKS)
        return dict(zip(APK_IDS, results))


@dataclass
class AaptNode:
    depth: int
    tag: str
    line: int
    attrs: list[tuple[str, int, str]] = field(default_factory=list)  # (name, resid, value text)


_E_RE = re.compile(r"^(\s*)E: (\S*) \(line=(\d+)\)$")
_A_RE = re.compile(r"^(\s*)A: (\S*?)(?:\((0x[0-9a-f]{8})\))?=(.*)$")


def parse_xmltree(text: str) -> list[AaptNode]:
    """Elements of ``aapt dump xmltree`` output in document order (depth 0 = root)."""
    nodes: list[AaptNode] = []
    for ln in text.splitlines():
        m = _E_RE.match(ln)
        if m:
            nodes.append(AaptNode(len(m.group(1)) // 2, m.group(2).rsplit(":", 1)[-1], int(m.group(3))))
            continue
        m = _A_RE.match(ln)
        if m and nodes:
            value = re.sub(r' \(Raw: ".*"\)$', "", m.group(4))
            rid = int(m.group(3), 16) if m.group(3) else 0
            nodes[-1].attrs.append((m.group(2).rsplit(":", 1)[-1], rid, value))
    if nodes:
        base = min(n.depth for n in nodes)
        for n in nodes:
            n.depth -= base
    return nodes


# ---------------------------------------------------------------------------
# shared helpers: a minimal AXML encoder for synthetic inputs


@dataclass
class A:
    """An attribute to encode. ``resid`` defaults to the framework id for android names."""

    name: str
    value: object
    ns: str | None = ANDROID_NS
    resid: int | None = None
    raw: str | None = None  # rawValue string (defaults to the value for strings)
    vtype: int | None = None


@dataclass
class E:
    tag: str
    attrs: list[A] = field(default_factory=list)
    children: list[E] = field(default_factory=list)
    text: str | None = None
    line: int = 1


def _chunk(ctype: int, header: bytes, body: bytes) -> bytes:
    return struct.pack("<HHI", ctype, 8 + len(header), 8 + len(header) + len(body)) + header + body


def string_pool(strings: list[str], utf8: bool = True) -> bytes:
    data = b""
    offsets = []
    for s in strings:
        offsets.append(len(data))
        if utf8:
            b = s.encode("utf-8")
            n16 = len(s.encode("utf-16-le")) // 2

            def ln(n: int) -> bytes:
                return bytes([n]) if n < 0x80 else bytes([0x80 | (n >> 8), n & 0xFF])

            data += ln(n16) + ln(len(b)) + b + b"\0"
        else:
            b = s.encode("utf-16-le")
            n = len(b) // 2
            data += struct.pack("<H", n) if n < 0x8000 else struct.pack("<HH", 0x8000 | (n >> 16), n & 0xFFFF)
            data += b + b"\0\0"
    while len(data) % 4:
        data += b"\0"
    header = struct.pack("<IIIII", len(strings), 0, 0x100 if utf8 else 0, 28 + 4 * len(strings), 0)
    return _chunk(0x0001, header, struct.pack(f"<{len(strings)}I", *offsets) + data)


def build_axml(root: E, utf8: bool = True, extra_chunks: bytes = b"") -> bytes:
    """Encode ``root`` as binary XML (string pool, resource map, android namespace)."""
    # attribute names that carry a resource id must come first in the pool
    with_id: list[tuple[str, int]] = []
    stack = [root]
    while stack:
        el = stack.pop()
        for a in el.attrs:
            rid = a.resid if a.resid is not None else (ANDROID_ATTR_IDS.get(a.name, 0) if a.ns == ANDROID_NS else 0)
            if rid and (a.name, rid) not in with_id:
                with_id.append((a.name, rid))
        stack.extend(el.children)
    strings: list[str] = [n for n, _ in with_id]
    index: dict[str, int] = {}

    def idx(s: str | None) -> int:
        if s is None:
            return 0xFFFFFFFF
        if s not in index:
            index[s] = len(strings)
            strings.append(s)
        return index[s]

    id_index = {key: i for i, key in enumerate(with_id)}
    nodes: list[bytes] = []
    ns_prefix, ns_uri = idx("android"), idx(ANDROID_NS)
    nodes.append(_chunk(0x0100, struct.pack("<II", 1, 0xFFFFFFFF), struct.pack("<II", ns_prefix, ns_uri)))
    work: list[tuple[E, bool]] = [(root, False)]
    while work:
        el, closing = work.pop()
        hdr = struct.pack("<II", el.line, 0xFFFFFFFF)
        if closing:
            nodes.append(_chunk(0x0103, hdr, struct.pack("<II", 0xFFFFFFFF, idx(el.tag))))
            continue
        attrs = b""
        for a in el.attrs:
            rid = a.resid if a.resid is not None else (ANDROID_ATTR_IDS.get(a.name, 0) if a.ns == ANDROID_NS else 0)
            name_i = id_index[(a.name, rid)] if rid else idx(a.name)
            v = a.value
            raw = a.raw
            if isinstance(v, bool):
                vtype, data = TYPE_INT_BOOLEAN, 0xFFFFFFFF if v else 0
            elif isinstance(v, int):
                vtype, data = TYPE_INT_DEC, v & 0xFFFFFFFF
            elif isinstance(v, Ref):
                vtype, data = TYPE_REFERENCE, v.id
            else:
                vtype, data = TYPE_STRING, idx(str(v))
                raw = str(v) if raw is None else raw
            if a.vtype is not None:
                vtype = a.vtype
            ns_i = idx(a.ns) if a.ns else 0xFFFFFFFF
            attrs += struct.pack("<IIIHBBI", ns_i, name_i, idx(raw), 8, 0, vtype, data)
        ext = struct.pack("<IIHHHHHH", 0xFFFFFFFF, idx(el.tag), 20, 20, len(el.attrs), 0, 0, 0)
        nodes.append(_chunk(0x0102, hdr, ext + attrs))
        if el.text is not None:
            nodes.append(_chunk(0x0104, hdr, struct.pack("<IHBBI", idx(el.text), 8, 0, 0, 0)))
        work.append((el, True))
        for c in reversed(el.children):
            work.append((c, False))
    nodes.append(_chunk(0x0101, struct.pack("<II", 1, 0xFFFFFFFF), struct.pack("<II", ns_prefix, ns_uri)))
    pool = string_pool(strings, utf8)
    resmap = _chunk(0x0180, b"", struct.pack(f"<{len(with_id)}I", *(r for _, r in with_id)))
    body = pool + resmap + extra_chunks + b"".join(nodes)
    return struct.pack("<HHI", 0x0003, 8, 8 + len(body)) + body


def top_chunks(data: bytes) -> list[tuple[int, int, int]]:
    """(type, offset, size) of the top-level chunks of a well-formed file."""
    out = []
    pos = 8
    while pos + 8 <= len(data):
        t, _h, size = struct.unpack_from("<HHI", data, pos)
        out.append((t, pos, size))
        pos += size
    return out


def sample_manifest() -> E:
    return E(
        "manifest",
        [A("versionCode", 7), A("versionName", "1.2"), A("package", "com.example.app", ns=None)],
        [
            E("uses-sdk", [A("minSdkVersion", 21), A("targetSdkVersion", 30)], line=2),
            E("uses-permission", [A("name", "android.permission.INTERNET")], line=3),
            E(
                "application",
                [A("debuggable", True), A("allowBackup", False), A("label", Ref(0x7F010000))],
                [E("activity", [A("name", ".Main"), A("exported", True)], line=5)],
                line=4,
            ),
        ],
    )


# ---------------------------------------------------------------------------
# synthetic cases


@pytest.mark.parametrize("utf8", [True, False])
def test_roundtrip(utf8: bool) -> None:
    doc = parse_axml(build_axml(sample_manifest(), utf8=utf8))
    root = doc.root
    assert root.tag == "manifest" and doc.anomalies == []
    assert root.get("package", None).text == "com.example.app"
    assert root.value("versionCode") == 7
    assert root.get("versionName").value == "1.2"
    app = root.find("application")
    assert app is not None and app.line == 4
    assert app.value("debuggable") is True and app.value("allowBackup") is False
    assert app.value("label") == Ref(0x7F010000)
    act = app.find("activity")
    assert act.value("name") == ".Main" and act.line == 5
    assert [e.tag for e in root.iter()] == ["manifest", "uses-sdk", "uses-permission", "application", "activity"]
    assert doc.namespaces == {ANDROID_NS: "android"}


def test_long_and_non_ascii_strings() -> None:
    long = "x" * 30000  # UTF-8 pool lengths are 15-bit
    for utf8 in (True, False):
        root = E("manifest", [A("package", "com.ex", ns=None), A("label", long), A("description", "Ärztin 病歴 🩺")])
        doc = parse_axml(build_axml(root, utf8=utf8))
        assert doc.root.value("label") == long
        assert doc.root.value("description") == "Ärztin 病歴 🩺"


def test_attribute_identity_comes_from_resource_id() -> None:
    # The name string is empty / misleading, but the resource id says "debuggable".
    root = E("manifest", [], [E("application", [A("", True, resid=0x0101000F), A("label", False, resid=0x01010280)])])
    doc = parse_axml(build_axml(root))
    app = doc.root.find("application")
    assert app.value("debuggable") is True
    assert app.value("allowBackup") is False  # named "label" in the pool, id of allowBackup
    assert app.get("label") is None
    assert any("0x0101000f" in a for a in doc.anomalies)


def test_android_name_without_resource_id_is_ignored() -> None:
    # Android's TypedArray never sees an attribute without a resource id.
    root = E("manifest", [], [E("application", [A("debuggable", True, resid=0)])])
    doc = parse_axml(build_axml(root))
    app = doc.root.find("application")
    assert app.get("debuggable") is None
    assert any("without resource id" in a for a in doc.anomalies)


def test_unknown_framework_id_keeps_pool_name() -> None:
    root = E("manifest", [], [E("application", [A("futureFlag", True, resid=0x0101FFFF)])])
    app = parse_axml(build_axml(root)).root.find("application")
    assert app.get("futureFlag").resource_id == 0x0101FFFF
    assert app.get("futureFlag").namespace == ANDROID_NS


def test_unknown_chunks_are_skipped() -> None:
    junk = _chunk(0x0777, b"", b"\x01" * 16) + _chunk(0x0200, b"", b"\0" * 8)
    doc = parse_axml(build_axml(sample_manifest(), extra_chunks=junk))
    assert doc.root.find("application").value("debuggable") is True
    assert any("unknown chunk" in a for a in doc.anomalies)


def test_lying_file_header() -> None:
    data = bytearray(build_axml(sample_manifest()))
    struct.pack_into("<HHI", data, 0, 0x0000, 8, len(data) + 5000)  # wrong type, oversize
    doc = parse_axml(bytes(data))
    assert doc.root.value("versionCode") == 7
    assert len(doc.anomalies) == 2


def test_trailing_garbage_after_declared_size_is_ignored() -> None:
    data = build_axml(sample_manifest()) + b"\xff" * 100
    assert parse_axml(data).root.value("versionCode") == 7


def test_string_offset_out_of_range_gives_none() -> None:
    data = bytearray(build_axml(sample_manifest()))
    _t, pool_at, _size = top_chunks(bytes(data))[0]
    # string 0 is the first attribute-name string ("versionCode"); point it far away
    struct.pack_into("<I", data, pool_at + 28, 0x00FFFFFF)
    doc = parse_axml(bytes(data))
    assert doc.strings.get(0) is None
    assert doc.root.value("versionCode") == 7  # identity by resource id still works


def test_wide_attribute_records_and_header_sizes() -> None:
    """attributeSize 24 and a 20-byte node header: honoured as written, as Android does."""
    data = build_axml(E("manifest", [A("versionCode", 3), A("package", "p.q", ns=None)]))
    out = bytearray()
    for t, off, size in top_chunks(data):
        chunk = data[off : off + size]
        if t == 0x0102:
            ns, name, _start, _asz, count, i1, i2, i3 = struct.unpack_from("<IIHHHHHH", chunk, 16)
            attrs = b"".join(chunk[36 + 20 * k : 56 + 20 * k] + b"\xee" * 4 for k in range(count))
            ext = struct.pack("<IIHHHHHH", ns, name, 20, 24, count, i1, i2, i3)
            hdr = chunk[8:16] + b"\0" * 4
            chunk = struct.pack("<HHI", 0x0102, 20, 20 + len(ext) + len(attrs)) + hdr + ext + attrs
        out += chunk
    data = struct.pack("<HHI", 3, 8, 8 + len(out)) + bytes(out)
    doc = parse_axml(data)
    assert doc.root.value("versionCode") == 3
    assert doc.root.get("package", None).text == "p.q"


def test_mismatched_and_extra_end_tags() -> None:
    data = build_axml(sample_manifest())
    # append stray END_ELEMENT chunks after the document: no crash, tree unchanged
    stray = _chunk(0x0103, struct.pack("<II", 9, 0xFFFFFFFF), struct.pack("<II", 0xFFFFFFFF, 12345))
    body = data[8:] + stray * 3
    doc = parse_axml(struct.pack("<HHI", 3, 8, 8 + len(body)) + body)
    assert doc.root.tag == "manifest" and len(doc.root.children) == 3
    assert any("end element without start" in a for a in doc.anomalies)


def test_cdata_text() -> None:
    root = E("network-security-config", [], [E("domain-config", [], [E("domain", [], text="example.com")])])
    doc = parse_axml(build_axml(root))
    assert doc.root.find("domain-config").find("domain").text == "example.com"


def test_deep_nesting_does_not_recurse() -> None:
    depth = 20000
    el = E("x")
    root = el
    for _ in range(depth):
        child = E("x")
        el.children.append(child)
        el = child
    doc = parse_axml(build_axml(E("manifest", [], [root])))
    assert sum(1 for _ in doc.root.iter()) == depth + 2
    assert to_xml(doc).count("<x") == depth + 1


@pytest.mark.parametrize(
    "data",
    [b"", b"\x03\x00\x08\x00", b"<?xml version='1.0'?><manifest/>", b"\x03\x00\x08\x00\x08\x00\x00\x00", b"\0" * 64],
)
def test_garbage_raises_analysis_error(data: bytes) -> None:
    with pytest.raises(AnalysisError) as exc:
        parse_axml(data)
    assert exc.value.code == "corrupt_axml"
    assert "\n" not in exc.value.message


def test_to_xml_is_well_formed() -> None:
    text = to_xml(parse_axml(build_axml(sample_manifest())), resolve_name=lambda i: "string/app_name")
    root = ET.fromstring(text.encode())
    assert root.tag == "manifest"
    app = root.find("application")
    assert app.get(f"{{{ANDROID_NS}}}label") == "@string/app_name"
    assert app.get(f"{{{ANDROID_NS}}}debuggable") == "true"


def test_speed_on_large_manifest() -> None:
    children = [
        E(
            "activity",
            [A("name", f".A{i}"), A("exported", bool(i % 2))],
            [E("intent-filter", [], [E("action", [A("name", "x.y")])])],
        )
        for i in range(1500)
    ]
    data = build_axml(E("manifest", [A("package", "com.big", ns=None)], [E("application", [], children)]))
    assert len(data) > 100_000
    t = time.perf_counter()
    doc = parse_axml(data)
    elapsed = time.perf_counter() - t
    assert len(doc.root.find("application").children) == 1500
    assert elapsed < 0.5  # a few tens of ms in practice


# ---------------------------------------------------------------------------
# whole corpus against aapt


@pytest.fixture(scope="module")
def aapt_xmltree(corpus_dir: Path) -> dict[str, tuple[int, str]]:
    return aapt_all("xmltree", "{apk}", "AndroidManifest.xml")


def _aapt_value(a) -> str:
    v = a.value
    if isinstance(v, Ref):
        return str(v)
    if a.value_type == TYPE_STRING:
        s = "" if v is None else str(v)
        return '"' + s.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') + '"'
    return f"(type 0x{a.value_type:x})0x{a.data:x}"


def _same_ref(theirs: str, ours: str) -> bool:
    # aapt rewrites dynamic references (package 0x00, shared libraries) to the
    # runtime package id it assigns; compare type and entry only in that case
    m1, m2 = re.match(r"([@?])0x([0-9a-f]{8})$", theirs), re.match(r"([@?])0x([0-9a-f]{8})$", ours)
    return bool(m1 and m2 and m1.group(1) == m2.group(1) and ours[3:5] == "00" and theirs[-6:] == ours[-6:])


@pytest.mark.parametrize("apk", APKS, ids=APK_IDS)
def test_tree_matches_aapt(apk: Path, aapt_xmltree) -> None:
    data = read_entry(apk, "AndroidManifest.xml")
    assert data is not None
    doc = parse_axml(data)
    rc, out = aapt_xmltree[apk.name]
    if rc != 0:
        # aapt cannot open fdroidserver-janus.apk: a DEX file is prepended to the zip
        # (Janus, CVE-2017-13156), which Android's zip reader and ours tolerate.
        assert apk.name == "fdroidserver-janus.apk", out[:200]
        assert doc.root.tag == "manifest"
        return
    theirs = parse_xmltree(out)
    ours = []
    stack = [(doc.root, 0)]
    while stack:
        el, depth = stack.pop()
        ours.append((depth, el))
        stack.extend((c, depth + 1) for c in reversed(el.children))
    assert len(ours) == len(theirs)
    for (depth, el), node in zip(ours, theirs):
        assert (depth, el.tag, el.line) == (node.depth, node.tag, node.line)
        assert len(el.attributes) == len(node.attrs), (el.tag, el.line)
        for a, (name, rid, value) in zip(el.attributes, node.attrs):
            assert a.resource_id == rid
            if rid == 0 or a.raw_name == name:
                assert a.name == name
            mine = _aapt_value(a)
            assert mine == value or _same_ref(value, mine), (el.tag, el.line, name, value, mine)


@pytest.mark.parametrize("apk", APKS, ids=APK_IDS)
def test_to_xml_corpus(apk: Path) -> None:
    text = to_xml(parse_axml(read_entry(apk, "AndroidManifest.xml")))
    assert ET.fromstring(text.encode()).tag == "manifest"


def test_corpus_parse_speed() -> None:
    blobs = [read_entry(p, "AndroidManifest.xml") for p in APKS]
    t = time.perf_counter()
    for b in blobs:
        parse_axml(b)
    assert time.perf_counter() - t < 1.0  # ~15 ms for all 70 in practice


# ---------------------------------------------------------------------------
# fuzzing: only AnalysisError, never another exception


SEED_MANIFESTS = [
    d
    for d in (
        read_entry(p, "AndroidManifest.xml")
        for p in APKS
        if p.name in ("InsecureBankv2.apk", "apksig-debuggable-resource.apk", "AndroGoat.apk", "diva-beta.apk")
    )
    if d is not None
] or [build_axml(sample_manifest())]


def _mutate(data: bytes, seed: int, n: int) -> bytes:
    rnd = random.Random(seed)
    b = bytearray(data)
    for _ in range(n):
        op = rnd.randrange(5)
        i = rnd.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[i] = rnd.randrange(256)
        elif op == 1 and len(b) > 4:
            struct.pack_into(
                "<I", b, min(i, len(b) - 4) & ~3, rnd.choice([0, 1, 0xFFFF, 0xFFFFFFFF, rnd.getrandbits(32)])
            )
        elif op == 2:
            del b[i : i + rnd.randrange(1, 64)]
        elif op == 3:
            b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 32)))
        else:
            j = rnd.randrange(len(b)) if b else 0
            b[i:i] = b[j : j + rnd.randrange(1, 200)]
    return bytes(b)


def _parse_only_analysis_error(data: bytes) -> None:
    t = time.perf_counter()
    try:
        doc = parse_axml(data)
        to_xml(doc)
    except AnalysisError as e:
        assert e.code and "\n" not in e.message
    assert time.perf_counter() - t < 2.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEED_MANIFESTS) - 1), st.integers(0, 2**32), st.integers(1, 12))
def test_fuzz_mutated_manifests(which: int, seed: int, n: int) -> None:
    _parse_only_analysis_error(_mutate(SEED_MANIFESTS[which], seed, n))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(data: bytes) -> None:
    _parse_only_analysis_error(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=2048))
def test_fuzz_random_bytes_with_valid_header(body: bytes) -> None:
    _parse_only_analysis_error(struct.pack("<HHI", 3, 8, 8 + len(body)) + body)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))


@pytest.mark.parametrize("utf8", [True, False])
def test_pool_may_contain_agrees_with_decoded_strings(utf8: bool) -> None:
    from medrisk.analysis.axml import StringPool

    cases = [
        (["app_name", "https://demo-123.FireBaseIO.com", "x"], True),
        (["病历", "Fİrebase", "fire base"], False),  # U+0130 lowers to i + combining dot
        (["FIREBASE"], True),
        ([], False),
    ]
    for strings, expected in cases:
        pool = StringPool(string_pool(strings, utf8), 0, 1 << 20)
        decoded = any("firebase" in s.lower() for s in pool.strings())
        assert decoded == expected
        assert pool.may_contain("firebase") == expected  # never a miss (nor, here, a false alarm)
