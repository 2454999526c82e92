"""Tests for the Android-like ZIP reader (analysis/container.py)."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zipfile
import zlib
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medrisk.analysis.container import Container, open_container
from medrisk.analysis.container_facts import container_facts, dex_load_order, is_bundle, split_config_name
from medrisk.analysis.errors import AnalysisError, LimitExceeded
from medrisk.analysis.limits import Limits
from tests.conftest import CORPUS, corpus_apks

MiB = 1024 * 1024


# ---------------------------------------------------------------------------
# A tiny ZIP writer that can lie in every field.


@dataclass
class Spec:
    name: str
    data: bytes = b""
    deflate: bool = True  # how the bytes are really encoded
    method: int | None = None  # central-directory method (default: 8 if deflate else 0)
    local_method: int | None = None
    flags: int = 0
    local_name: bytes | None = None
    local_sizes: tuple[int, int] | None = None  # (compressed, uncompressed) in the local header
    declared_size: int | None = None  # uncompressed size in the central directory
    descriptor: bool = False
    bad_descriptor: bool = False
    offset: int | None = None  # force the CD local-header offset
    raw: bytes | None = None  # already-encoded payload (e.g. a bomb stream)
    gap_before: bytes = b""


def build(
    specs: list[Spec],
    *,
    prepend: bytes = b"",
    comment: bytes = b"",
    trailer: bytes = b"",
    count: int | None = None,
    extra_cd: bytes = b"",
    before_cd: bytes = b"",
    zip64: bool = False,
) -> bytes:
    out = bytearray(prepend)
    cd = bytearray()
    for s in specs:
        out += s.gap_before
        payload = s.raw if s.raw is not None else s.data
        if s.raw is None and s.deflate:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = c.compress(s.data) + c.flush()
        method = s.method if s.method is not None else (8 if s.deflate else 0)
        lmethod = s.local_method if s.local_method is not None else method
        crc = zlib.crc32(s.data)
        usize = s.declared_size if s.declared_size is not None else len(s.data)
        csize = len(payload)
        name = s.name.encode("utf-8")
        flags = s.flags | (0x8 if s.descriptor else 0)
        offset = len(out) if s.offset is None else s.offset
        lname = s.local_name if s.local_name is not None else name
        lcs, lus = s.local_sizes if s.local_sizes is not None else (csize, usize)
        lcrc = crc
        if s.descriptor:
            lcs = lus = lcrc = 0
        if s.offset is None:
            out += struct.pack(
                "<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, lmethod, 0, 0x21, lcrc, lcs, lus, len(lname), 0
            )
            out += lname + payload
            if s.descriptor:
                dcrc = crc ^ 1 if s.bad_descriptor else crc
                out += struct.pack("<4sIII", b"PK\x07\x08", dcrc, csize, usize)
        extra = b""
        cd_cs, cd_us, cd_off = csize, usize, offset
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, usize, csize, offset)
            cd_cs = cd_us = cd_off = 0xFFFFFFFF
        cd += struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            0x314,
            20,
            flags,
            method,
            0,
            0x21,
            crc,
            cd_cs,
            cd_us,
            len(name),
            len(extra),
            0,
            0,
            0,
            0,
            cd_off,
        )
        cd += name + extra
    cd += extra_cd
    out += before_cd
    cd_off = len(out)
    out += cd
    n = len(specs) if count is None else count
    if zip64:
        z64 = len(out)
        out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(cd), cd_off)
        out += struct.pack("<4sIQI", b"PK\x06\x07", 0, z64, 1)
        out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment))
    else:
        out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(cd), cd_off, len(comment))
    out += comment + trailer
    return bytes(out)


def kinds(c: Container) -> set[str]:
    return {a.kind for a in c.anomalies}


def anomalies_of(c: Container, kind: str) -> list:
    return [a for a in c.anomalies if a.kind == kind]


SIMPLE = [
    Spec("AndroidManifest.xml", b"<manifest/>" * 50),
    Spec("classes.dex", b"dex\n035\x00" + bytes(200), deflate=False),
    Spec("res/raw/a.txt", b"hello world\n" * 10),
]


# ---------------------------------------------------------------------------
# Well-formed archives


def test_wellformed_archive_matches_zipfile():
    data = build(SIMPLE)
    c = open_container(data)
    z = zipfile.ZipFile(io.BytesIO(data))
    assert c.names() == z.namelist()
    for e, zi in zip(c.entries, z.infolist(), strict=True):
        assert (e.name, e.method, e.compressed_size, e.size, e.crc, e.local_offset, e.flags) == (
            zi.filename,
            zi.compress_type,
            zi.compress_size,
            zi.file_size,
            zi.CRC,
            zi.header_offset,
            zi.flag_bits,
        )
        assert c.read(e.name, verify_crc=True) == z.read(zi)
    assert c.anomalies == []
    assert c.has("classes.dex") and not c.has("classes2.dex")
    assert c.raw is data


def test_read_prefix_and_missing_entry():
    c = open_container(build(SIMPLE))
    assert c.read("res/raw/a.txt", max_bytes=5) == b"hello"
    assert c.read("classes.dex", max_bytes=4) == b"dex\n"
    assert c.read("res/raw/a.txt", max_bytes=0) == b""
    with pytest.raises(AnalysisError) as ei:
        c.read("nope.txt")
    assert ei.value.code == "entry_not_found"


def test_empty_entry_and_directory():
    c = open_container(build([Spec("assets/"), Spec("empty.bin", b""), Spec("x", b"", deflate=False)]))
    assert c.read("empty.bin") == b""
    assert c.read("x") == b""
    assert c.entry("assets/").is_dir


# ---------------------------------------------------------------------------
# Evasion techniques


def test_unknown_compression_method_is_read_as_deflate():
    payload = b"<manifest package='evil'/>" * 20
    data = build([Spec("AndroidManifest.xml", payload, method=0x5A5A), Spec("classes.dex", b"dex\n")])
    c = open_container(data)
    assert c.read("AndroidManifest.xml") == payload
    (a,) = anomalies_of(c, "bad_compression_method")
    assert a.entry == "AndroidManifest.xml" and "23130" in a.detail
    # The reason this matters: zipfile gives up on the same archive.
    with pytest.raises(NotImplementedError):
        zipfile.ZipFile(io.BytesIO(data)).read("AndroidManifest.xml")


def test_central_directory_method_wins_over_local_header():
    payload = b"A" * 300
    # Local header claims "stored", central directory says deflate (data is deflated).
    c = open_container(build([Spec("a.bin", payload, local_method=0)]))
    assert c.read("a.bin") == payload
    assert "method 0 vs 8" in anomalies_of(c, "local_header_mismatch")[0].detail
    # Local header claims deflate, CD says stored: bytes are returned as they are.
    c = open_container(build([Spec("b.bin", payload, deflate=False, local_method=8)]))
    assert c.read("b.bin") == payload
    assert kinds(c) == {"local_header_mismatch"}


def test_bzip2_method_number_is_still_inflated():
    c = open_container(build([Spec("a", b"x" * 100, method=12)]))
    assert c.read("a") == b"x" * 100
    assert "bzip2" in anomalies_of(c, "bad_compression_method")[0].detail


def test_duplicate_entries_first_copy_wins():
    data = build(
        [
            Spec("classes.dex", b"dex\n-first"),
            Spec("AndroidManifest.xml", b"m"),
            Spec("classes.dex", b"dex\n-second"),
        ]
    )
    c = open_container(data)
    assert len(c.entries) == 3
    assert c.names() == ["classes.dex", "AndroidManifest.xml"]
    assert c.read("classes.dex") == b"dex\n-first"
    assert c.read_entry(c.entries[2]) == b"dex\n-second"
    (a,) = anomalies_of(c, "duplicate_entry")
    assert a.entry == "classes.dex" and "records 0 and 2" in a.detail
    # zipfile resolves the name to the *last* copy: tools disagree.
    assert zipfile.ZipFile(io.BytesIO(data)).read("classes.dex") == b"dex\n-second"
    assert container_facts(c).entries == 3


def test_local_header_size_mismatch_trusts_central_directory():
    payload = b"payload" * 40
    c = open_container(build([Spec("a.bin", payload, local_sizes=(1, 99999))]))
    assert c.read("a.bin") == payload
    (a,) = anomalies_of(c, "local_header_mismatch")
    assert a.entry == "a.bin" and "sizes/crc" in a.detail


def test_local_header_name_mismatch():
    c = open_container(build([Spec("classes.dex", b"dex\n", local_name=b"classes.dey")]))
    assert c.read("classes.dex") == b"dex\n"
    assert "name differs" in anomalies_of(c, "local_header_mismatch")[0].detail


def test_local_name_length_locates_the_data():
    # A longer local name shifts the data; Android (and we) follow the local lengths.
    c = open_container(build([Spec("a", b"xyz" * 30, local_name=b"a-much-longer-name")]))
    assert c.read("a") == b"xyz" * 30


def test_missing_local_header_makes_only_that_entry_unreadable():
    data = bytearray(build([Spec("a", b"1" * 50), Spec("b", b"2" * 50)]))
    data[0:4] = b"XXXX"
    c = open_container(bytes(data))
    assert c.read("b") == b"2" * 50
    with pytest.raises(AnalysisError) as ei:
        c.read("a")
    assert ei.value.code == "bad_local_header"
    assert {"local_header_mismatch", "prepended_data"} <= kinds(c)


def test_data_descriptors():
    specs = [Spec("a", b"A" * 100, descriptor=True), Spec("b", b"B" * 100, descriptor=True)]
    data = build(specs)
    c = open_container(data)
    assert c.read("a") == b"A" * 100 and c.read("b") == b"B" * 100
    (a,) = anomalies_of(c, "data_descriptor")
    assert a.entry is None and a.detail.startswith("2 entries")
    assert kinds(c) == {"data_descriptor"}  # descriptors are accounted for, no gaps
    assert zipfile.ZipFile(io.BytesIO(data)).read("b") == b"B" * 100

    c = open_container(build([Spec("a", b"A" * 100, descriptor=True, bad_descriptor=True)]))
    assert "data descriptor disagrees" in anomalies_of(c, "local_header_mismatch")[0].detail


def test_prepended_dex_janus_style():
    dex = b"dex\n035\x00" + bytes(120)
    data = build(SIMPLE, prepend=dex)
    c = open_container(data)
    (a,) = anomalies_of(c, "prepended_data")
    assert a.detail.startswith("128 bytes") and "DEX" in a.detail and "Janus" in a.detail
    assert c.read("AndroidManifest.xml") == SIMPLE[0].data


def test_trailing_data_comment_and_fake_eocd_in_comment():
    c = open_container(build(SIMPLE, trailer=b"GARBAGE" * 3))
    assert "21 bytes after the end of central directory" in anomalies_of(c, "extra_data")[0].detail
    c = open_container(build(SIMPLE, comment=b"hello comment"))
    (a,) = anomalies_of(c, "comment")
    assert a.entry is None and "13-byte archive comment: hello comment" in a.detail
    # A comment holding a bogus EOCD signature (its comment length does not fit).
    c = open_container(build(SIMPLE, comment=b"xx" + b"PK\x05\x06" + b"\xff" * 20))
    assert c.read("res/raw/a.txt") == SIMPLE[2].data
    assert "comment" in kinds(c)


def test_encrypted_flag_is_ignored():
    data = build([Spec("AndroidManifest.xml", b"<m/>" * 10, flags=0x1), Spec("b", b"ok")])
    c = open_container(data)
    assert c.read("AndroidManifest.xml") == b"<m/>" * 10
    assert anomalies_of(c, "encrypted_flag")[0].entry == "AndroidManifest.xml"
    with pytest.raises(RuntimeError):
        zipfile.ZipFile(io.BytesIO(data)).read("AndroidManifest.xml")


@pytest.mark.parametrize(
    "name",
    ["../../data/evil.so", "assets/../../x", "a\\..\\..\\b", "/system/bin/sh", "C:/windows/x", ".."],
)
def test_path_traversal(name):
    c = open_container(build([Spec(name, b"x")]))
    assert [a.entry for a in anomalies_of(c, "path_traversal")] == [name]


def test_dotdot_inside_names_is_fine():
    c = open_container(build([Spec("assets/..hidden/a..b", b"x")]))
    assert "path_traversal" not in kinds(c)


def test_invalid_utf8_name():
    data = bytearray(build([Spec("ab\u00e9", b"x")]))
    i = data.index("ab\u00e9".encode())
    j = data.index("ab\u00e9".encode(), i + 1)
    data[j + 2 : j + 4] = b"\xff\xfe"  # corrupt the central-directory copy
    c = open_container(bytes(data))
    assert "bad_entry_name" in kinds(c)
    assert c.entries[0].name == "ab\u00a0\u25a0"  # cp437 fallback, like zipfile


def test_overlapping_entries():
    body = b"shared" * 50
    data = build([Spec("a.txt", body), Spec("b.txt", body, offset=0)])
    c = open_container(data)
    (a,) = anomalies_of(c, "overlapping_entries")
    assert a.entry in ("a.txt", "b.txt") and "overlaps" in a.detail
    assert "local_header_mismatch" in kinds(c)  # b.txt's local header names a.txt


def test_gaps_hidden_data_vs_zero_padding():
    c = open_container(build([Spec("a", b"1"), Spec("b", b"2", gap_before=b"HIDDEN PAYLOAD")]))
    (a,) = anomalies_of(c, "extra_data")
    assert a.entry == "b" and a.detail.startswith("14 unreferenced bytes")
    c = open_container(build([Spec("a", b"1"), Spec("b", b"2", gap_before=bytes(4000))]))
    assert c.anomalies == []


def test_hidden_central_directory_records():
    hidden = build([Spec("hidden.dex", b"dex\n")])
    cd = hidden[hidden.index(b"PK\x01\x02") : hidden.index(b"PK\x05\x06")]
    c = open_container(build(SIMPLE, extra_cd=cd))
    (a,) = anomalies_of(c, "extra_data")
    assert "1 more record signatures" in a.detail
    assert not c.has("hidden.dex")


def test_apk_signing_block_is_not_extra_data():
    pairs = struct.pack("<QI", 12, 0x7109871A) + b"\x00" * 8
    size = len(pairs) + 8 + 16
    block = struct.pack("<Q", size) + pairs + struct.pack("<Q", size) + b"APK Sig Block 42"
    data = build(SIMPLE, before_cd=block)
    c = open_container(data)
    assert c.anomalies == []
    assert c.signing_block() == block
    assert c.signing_block_offset == data.index(block)
    # Without the magic the same bytes are unexplained.
    c = open_container(build(SIMPLE, before_cd=block[:-1] + b"!"))
    assert "between the last entry and the central directory" in anomalies_of(c, "extra_data")[0].detail


def test_zip64_records():
    data = build(SIMPLE, zip64=True)
    c = open_container(data)
    assert c.zip64
    z = zipfile.ZipFile(io.BytesIO(data))
    assert c.names() == z.namelist()
    for name in c.names():
        assert c.read(name) == z.read(name)


def test_zip64_written_by_zipfile():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("big.bin", "w", force_zip64=True) as f:
            f.write(b"z" * 5000)
        z.writestr("small.txt", "hi")
    c = open_container(buf.getvalue())
    assert c.read("big.bin") == b"z" * 5000 and c.read("small.txt") == b"hi"


# ---------------------------------------------------------------------------
# Broken archives: AnalysisError with a clear code


def test_not_a_zip():
    for data in (b"", b"hello", b"\x7fELF" + bytes(100), b"x" * 70000):
        with pytest.raises(AnalysisError) as ei:
            open_container(data)
        assert ei.value.code == "not_a_zip"


def test_empty_archive():
    with pytest.raises(AnalysisError) as ei:
        open_container(b"PK\x05\x06" + bytes(18))
    assert ei.value.code == "empty_archive"
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    with pytest.raises(AnalysisError) as ei:
        open_container(buf.getvalue())
    assert ei.value.code == "empty_archive"


def test_truncated_at_several_points():
    data = build(SIMPLE, comment=b"c")
    cd = data.index(b"PK\x01\x02")
    for cut in (4, 21, 40, cd // 2, cd, cd + 30, len(data) - 23, len(data) - 2, len(data) - 1):
        with pytest.raises(AnalysisError) as ei:
            open_container(data[:cut])
        assert ei.value.code == "truncated", cut
        assert ei.value.message


def test_entry_data_past_end_of_file():
    data = build([Spec("a", b"x" * 100, deflate=False, local_sizes=(100, 100))])
    # Declare a bigger stored size in the CD than the file can hold.
    cd = data.index(b"PK\x01\x02")
    patched = data[: cd + 24] + struct.pack("<I", 10**6) + data[cd + 28 :]
    patched = patched[: cd + 20] + struct.pack("<I", 10**6) + patched[cd + 24 :]
    c = open_container(patched)
    with pytest.raises(AnalysisError) as ei:
        c.read("a")
    assert ei.value.code == "truncated"


def test_bad_central_directory():
    data = bytearray(build(SIMPLE))
    cd = data.index(b"PK\x01\x02")
    data[cd : cd + 4] = b"PK\x01\x03"
    with pytest.raises(AnalysisError) as ei:
        open_container(bytes(data))
    assert ei.value.code == "bad_central_directory"
    # EOCD claims more entries than the directory holds.
    with pytest.raises(AnalysisError) as ei:
        open_container(build(SIMPLE, count=50))
    assert ei.value.code == "bad_central_directory"


def test_corrupt_deflate_and_crc():
    c = open_container(build([Spec("a", b"q" * 10, raw=b"\xff\xff\xff\xff", deflate=True)]))
    with pytest.raises(AnalysisError) as ei:
        c.read("a")
    assert ei.value.code == "corrupt_entry"
    data = bytearray(build([Spec("s", b"stored-bytes", deflate=False)]))
    data[data.index(b"stored-bytes")] ^= 1
    c = open_container(bytes(data))
    assert c.read("s") != b"stored-bytes"  # no CRC check by default (as Android)
    with pytest.raises(AnalysisError) as ei:
        c.read("s", verify_crc=True)
    assert ei.value.code == "bad_crc"


def test_too_many_entries():
    with pytest.raises(LimitExceeded) as ei:
        open_container(build(SIMPLE), Limits(max_entries=2))
    assert ei.value.code == "too_many_entries"


def test_file_too_large():
    with pytest.raises(LimitExceeded) as ei:
        open_container(build(SIMPLE), Limits(max_file_bytes=100))
    assert ei.value.code == "file_too_large"


# ---------------------------------------------------------------------------
# Zip bombs: refused quickly, without allocating the output


def _zero_stream(mib: int) -> bytes:
    """Raw deflate of ``mib`` MiB of zeros, built from one full-flushed block (cheap)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    return block * mib + c.flush()


BOMB = _zero_stream(300)


def _bomb(declared: int) -> bytes:
    return build([Spec("assets/bomb.bin", raw=BOMB, declared_size=declared), Spec("ok", b"fine")])


def _timed(fn):
    tracemalloc.start()
    t = time.perf_counter()
    try:
        return fn()
    finally:
        elapsed = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert elapsed < 1.0, elapsed
        assert peak < 32 * MiB, peak


def test_zip_bomb_honest_size_refused_by_ratio():
    c = open_container(_bomb(300 * MiB))
    with pytest.raises(LimitExceeded) as ei:
        _timed(lambda: c.read("assets/bomb.bin"))
    assert ei.value.code == "zip_bomb" and "ratio" in ei.value.message
    assert c.read("ok") == b"fine"
    assert c.read("assets/bomb.bin", max_bytes=64) == bytes(64)  # prefix reads are harmless


def test_zip_bomb_lying_small_size_stops_at_declared_size():
    c = open_container(_bomb(1000))
    with pytest.raises(AnalysisError) as ei:
        _timed(lambda: c.read("assets/bomb.bin"))
    assert ei.value.code == "corrupt_entry" and "more than its declared" in ei.value.message


def test_zip_bomb_entry_too_large_when_ratio_allowed():
    c = open_container(_bomb(300 * MiB), Limits(max_ratio=1e9, max_entry_bytes=64 * MiB))
    with pytest.raises(LimitExceeded) as ei:
        _timed(lambda: c.read("assets/bomb.bin"))
    assert ei.value.code == "entry_too_large"


def test_total_inflated_budget():
    specs = [Spec(f"f{i}", bytes(400_000)) for i in range(5)]
    c = open_container(build(specs), Limits(max_total_inflated_bytes=1_000_000))
    c.read("f0")
    c.read("f1")
    with pytest.raises(LimitExceeded) as ei:
        c.read("f2")
    assert ei.value.code == "zip_bomb"
    assert c.inflated_total == 800_000


def test_overlapping_quadratic_bomb_is_flagged():
    stream = _zero_stream(2)
    specs = [Spec(f"k{i}", raw=stream, declared_size=2 * MiB, offset=0 if i else None) for i in range(30)]
    c = open_container(build(specs), Limits(max_total_inflated_bytes=8 * MiB, max_ratio=1e9))
    assert len(anomalies_of(c, "overlapping_entries")) >= 1
    with pytest.raises(LimitExceeded):
        for name in c.names():
            c.read(name)


# ---------------------------------------------------------------------------
# Facts


def test_container_facts():
    specs = [
        Spec("AndroidManifest.xml", b"m"),
        Spec("classes.dex", b"dex\n"),
        Spec("classes2.dex", b"dex\n"),
        Spec("classes4.dex", b"dex\n"),  # gap: never loaded by ART
        Spec("lib/arm64-v8a/libfoo.so", b"\x7fELF"),
        Spec("lib/x86/libfoo.so", b"\x7fELF"),
        Spec("lib/x86/readme.txt", b"x"),
        Spec("assets/payload.bin", b"dex\n035\x00" + bytes(40)),
        Spec("assets/data.dat", b"SQLite format 3\x00" + bytes(40), deflate=False),
        Spec("assets/x.pem", b"-----BEGIN CERTIFICATE-----"),
        Spec("res/raw/trust.bks", b"\x00\x00\x00\x02"),
        Spec("assets/www/index.html", b"<html>"),
        Spec("assets/run", b"#!/system/bin/sh\n"),
        Spec("assets/plugin.jar", b"PK"),
        Spec("assets/inner.apk", b"PK"),
        Spec("assets/app.properties", b"k=v"),
        Spec("google-services.json", b"{}"),
        Spec("res/drawable/icon.png", b"\x89PNG"),
        Spec("META-INF/CERT.RSA", b"0"),
    ]
    facts = container_facts(open_container(build(specs)))
    d = facts.to_dict()
    assert list(d) == [
        "entries",
        "dex_files",
        "native_libs",
        "abis",
        "nested_apks",
        "is_split",
        "split_name",
        "anomalies",
        "assets",
    ]
    assert d["entries"] == len(specs)
    assert d["dex_files"] == ["classes.dex", "classes2.dex"]
    assert d["native_libs"] == ["lib/arm64-v8a/libfoo.so", "lib/x86/libfoo.so"]
    assert d["abis"] == ["arm64-v8a", "x86"]
    assert d["nested_apks"] == ["assets/inner.apk"]
    assert d["is_split"] is False and d["split_name"] is None
    assert d["anomalies"] == []
    assert {a["path"]: a["kind"] for a in d["assets"]} == {
        "classes4.dex": "dex",
        "assets/payload.bin": "dex",
        "assets/data.dat": "database",
        "assets/x.pem": "certificate",
        "res/raw/trust.bks": "keystore",
        "assets/www/index.html": "html",
        "assets/run": "script",
        "assets/plugin.jar": "jar",
        "assets/inner.apk": "apk",
        "assets/app.properties": "config",
        "google-services.json": "config",
    }
    assert [a["path"] for a in d["assets"]] == sorted(a["path"] for a in d["assets"])
    assert all(set(a) == {"path", "size", "kind"} for a in d["assets"])
    facts.is_split, facts.split_name = True, "config.arm64_v8a"
    assert facts.to_dict()["split_name"] == "config.arm64_v8a"


def test_bundle_with_split_configs():
    specs = [
        Spec("base.apk", b"PK"),
        Spec("split_config.arm64_v8a.apk", b"PK"),
        Spec("split_config.xxhdpi.apk", b"PK"),
        Spec("toc.pb", b""),
    ]
    c = open_container(build(specs))
    assert is_bundle(c)
    assert container_facts(c).nested_apks == [
        "base.apk",
        "split_config.arm64_v8a.apk",
        "split_config.xxhdpi.apk",
    ]
    assert split_config_name("split_config.arm64_v8a.apk") == "config.arm64_v8a"
    assert split_config_name("splits/split_feature_maps.apk") == "feature_maps"
    assert split_config_name("base.apk") is None
    assert not is_bundle(open_container(build(SIMPLE)))


def test_dex_load_order_contiguous():
    assert dex_load_order(["classes2.dex"]) == []
    assert dex_load_order(["classes3.dex", "classes.dex", "classes2.dex"]) == [
        "classes.dex",
        "classes2.dex",
        "classes3.dex",
    ]
    assert dex_load_order(["classes.dex", "classes1.dex", "classes3.dex"]) == ["classes.dex"]


def test_anomaly_list_is_capped():
    specs = [Spec(f"../x{i}", b"") for i in range(120)]
    c = open_container(build(specs))
    trav = anomalies_of(c, "path_traversal")
    assert len(trav) == 51 and trav[-1].entry is None and "70 more" in trav[-1].detail


# ---------------------------------------------------------------------------
# Real corpus


APKS = corpus_apks()
APK_IDS = [p.name for p in APKS]


def _zipfile_view(data: bytes):
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        return z, {i.filename: z.read(i) for i in z.infolist()}
    except Exception:  # noqa: BLE001 - zipfile may refuse what Android accepts
        return None, None


@pytest.mark.parametrize("path", APKS, ids=APK_IDS)
def test_corpus_matches_zipfile(path, corpus_dir):
    data = path.read_bytes()
    c = open_container(data)
    facts = container_facts(c)
    assert facts.entries == len(c.entries) > 0
    assert facts.dex_files[:1] == ["classes.dex"]
    z, contents = _zipfile_view(data)
    # Every corpus archive is readable by the stdlib reader; an APK built to defeat it needs its own test.
    assert z is not None, f"zipfile cannot read {path.name}; give this evasive archive a dedicated test"
    infos = z.infolist()
    assert [e.name for e in c.entries] == [i.filename for i in infos]
    for e, i in zip(c.entries, infos, strict=True):
        assert (e.method, e.compressed_size, e.size, e.crc, e.local_offset, e.flags) == (
            i.compress_type,
            i.compress_size,
            i.file_size,
            i.CRC,
            i.header_offset,
            i.flag_bits,
        ), e.name
        assert c.read_entry(e, verify_crc=True) == contents[e.name], e.name
    kinds_seen = kinds(c) - {"data_descriptor"}
    if path.name != "fdroidserver-janus.apk":
        assert kinds_seen == set(), c.anomalies


def _corpus(name: str) -> bytes:
    p = next((p for p in APKS if p.name == name), None)
    assert p is not None, f"{name} missing from the corpus at {CORPUS}"
    return p.read_bytes()


def test_corpus_janus():
    data = _corpus("fdroidserver-janus.apk")
    assert data.startswith(b"dex\n035\x00")
    c = open_container(data)
    (a,) = c.anomalies
    assert a.kind == "prepended_data" and a.detail.startswith("1032 bytes") and "DEX file" in a.detail
    assert min(e.local_offset for e in c.entries) == 1032
    assert container_facts(c).dex_files == ["classes.dex"]
    assert c.read("classes.dex").startswith(b"dex\n")
    assert c.signing_block_offset is None  # v1 (JAR) signed only


@pytest.mark.parametrize(
    ("name", "n_entries", "sig_block"),
    [
        ("fdroidserver-issue-1128-poc1.apk", 4, True),
        ("fdroidserver-issue-1128-poc2.apk", 3, True),
        ("fdroidserver-issue-1128-poc3a.apk", 9, False),
    ],
)
def test_corpus_issue_1128_pocs(name, n_entries, sig_block):
    c = open_container(_corpus(name))
    assert len(c.entries) == n_entries
    # Signer confusion lives in the signing block, not in the ZIP structure: the only
    # container anomaly is the data descriptors on deflated entries (local sizes are 0).
    assert [a.kind for a in c.anomalies] == ["data_descriptor"]
    assert all(c.read_entry(e, verify_crc=True) is not None for e in c.entries)
    assert (c.signing_block_offset is not None) == sig_block
    if sig_block:
        blk = c.signing_block()
        assert blk.endswith(b"APK Sig Block 42") and len(blk) == c.cd_offset - c.signing_block_offset
    facts = container_facts(c)
    if name.endswith("poc3a.apk"):
        assert facts.native_libs == ["lib/armeabi/fake.so"] and facts.abis == ["armeabi"]


def test_corpus_is_fast():
    assert APKS, "empty corpus"
    datas = [p.read_bytes() for p in APKS]
    t = time.perf_counter()
    for d in datas:
        container_facts(open_container(d))
    per_apk = (time.perf_counter() - t) / len(datas)
    assert per_apk < 0.02, per_apk


# ---------------------------------------------------------------------------
# Fuzzing: only AnalysisError may escape, and quickly


FUZZ_LIMITS = Limits(max_entry_bytes=4 * MiB, max_total_inflated_bytes=16 * MiB)


def _seeds() -> list[bytes]:
    seeds = [
        build(SIMPLE),
        build(SIMPLE, zip64=True),
        build([Spec("a", b"A" * 100, descriptor=True), Spec("b", b"x", method=99)], comment=b"hi"),
    ]
    small = [p for p in APKS if p.stat().st_size < 12_000][:3]
    seeds += [p.read_bytes() for p in small]
    return seeds


SEEDS = _seeds()


def _exercise(data: bytes) -> None:
    t = time.perf_counter()
    try:
        c = open_container(data, FUZZ_LIMITS)
    except AnalysisError as exc:
        assert exc.code and exc.message and "\n" not in exc.message
        return
    facts = container_facts(c)
    facts.to_dict()
    for e in c.entries:
        try:
            c.read_entry(e)
        except AnalysisError as exc:
            assert exc.code and exc.message
    assert time.perf_counter() - t < 2.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data):
    _exercise(data)
    _exercise(b"PK\x03\x04" + data)
    _exercise(data + b"PK\x05\x06" + data[:18])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=12),
    cut=st.one_of(st.none(), st.floats(0, 1)),
    tail_bias=st.booleans(),
)
def test_fuzz_mutated_zips(seed, edits, cut, tail_bias):
    data = bytearray(SEEDS[seed])
    n = len(data)
    cd = bytes(data).rfind(b"PK\x01\x02")
    for pos, val in edits:
        # Bias half of the edits towards the central directory and EOCD, where parsing happens.
        i = int(cd + pos * (n - cd - 1)) if tail_bias and cd > 0 else int(pos * (n - 1))
        data[i] = val
    if cut is not None:
        data = data[: int(cut * n)]
    _exercise(bytes(data))
