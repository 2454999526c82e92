"""DEX reader: cross-checked against Debian's ``dexdump`` on the real corpus, plus
hand-built files for corruption cases and a fuzz test."""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import subprocess
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medrisk.analysis.dex import (
    DexFile,
    descriptor_to_java,
    java_to_descriptor,
    line_at,
    mutf8_decode,
)
from medrisk.analysis.errors import AnalysisError
from tests.conftest import CORPUS, corpus_apks

DEXDUMP = shutil.which("dexdump") or "/usr/bin/dexdump"
needs_dexdump = pytest.mark.usefixtures("require_dexdump")  # fails with an install hint when missing
needs_corpus = pytest.mark.usefixtures("corpus_dir")  # fails when the corpus is missing


# ======================================================================================
# Helpers: DEX files of the corpus, a tiny DEX builder
# ======================================================================================
def apk_dex(apk: Path) -> list[tuple[str, bytes]]:
    """classes*.dex of an APK in Android load order (classes.dex, classes2.dex, ...)."""
    with zipfile.ZipFile(apk) as z:
        names = [n for n in z.namelist() if re.fullmatch(r"classes\d*\.dex", n)]
        names.sort(key=lambda n: int(n[7:-4] or 1))
        return [(n, z.read(n)) for n in names]


def corpus_dex_files() -> list[tuple[str, str, bytes]]:
    out = []
    for apk in corpus_apks():
        for name, data in apk_dex(apk):
            out.append((apk.name, name, data))
    return out


NO_INDEX = 0xFFFFFFFF


def _uleb(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _shorty(t: str) -> str:
    return "L" if t[0] in "L[" else t


class Resolver:
    """Index lookups handed to instruction builders (collect pass, then final pass)."""

    def __init__(self, b: DexBuilder, final: bool) -> None:
        self.b = b
        self.final = final

    def s(self, text: str) -> int:
        self.b.strings.add(text)
        return self.b.string_index[text] if self.final else 0

    def t(self, desc: str) -> int:
        self.b.add_type(desc)
        return self.b.type_index[desc] if self.final else 0

    def m(self, cls: str, name: str, ret: str, params: tuple[str, ...] = ()) -> int:
        key = self.b.add_method(cls, name, ret, tuple(params))
        return self.b.method_index[key] if self.final else 0

    def f(self, cls: str, name: str, typ: str) -> int:
        key = (cls, name, typ)
        self.b.fields.add(key)
        self.b.add_type(cls)
        self.b.add_type(typ)
        self.b.strings.add(name)
        return self.b.field_index[key] if self.final else 0


InsnsFn = Callable[[Resolver], list[int]]


class DexBuilder:
    """Writes small but valid DEX files (dexdump accepts them): classes with methods whose
    code is given as 16-bit code units built from a Resolver."""

    def __init__(self) -> None:
        self.strings: set[str] = set()
        self.types: set[str] = set()
        self.protos: set[tuple[str, tuple[str, ...]]] = set()
        self.fields: set[tuple[str, str, str]] = set()
        self.methods: set[tuple[str, str, str, tuple[str, ...]]] = set()
        self.classes: list[dict] = []

    def add_type(self, desc: str) -> None:
        self.types.add(desc)
        self.strings.add(desc)

    def add_method(self, cls: str, name: str, ret: str, params: tuple[str, ...]) -> tuple:
        self.add_type(cls)
        self.add_type(ret)
        for p in params:
            self.add_type(p)
        self.strings.add(name)
        self.strings.add("".join(_shorty(t) for t in (ret, *params)))
        self.protos.add((ret, params))
        key = (cls, name, ret, params)
        self.methods.add(key)
        return key

    def add_class(
        self,
        desc: str,
        superclass: str | None = "Ljava/lang/Object;",
        interfaces: tuple[str, ...] = (),
        methods: list[tuple] = (),
        fields: list[tuple[str, str, int]] = (),
        access: int = 1,
    ) -> None:
        """methods: (name, ret, params, access, registers, insns_fn or None)."""
        self.add_type(desc)
        if superclass:
            self.add_type(superclass)
        for i in interfaces:
            self.add_type(i)
        for name, ret, params, *_rest in methods:
            self.add_method(desc, name, ret, tuple(params))
        for name, typ, _acc in fields:
            self.fields.add((desc, name, typ))
            self.add_type(typ)
            self.strings.add(name)
        self.classes.append(
            {
                "desc": desc,
                "super": superclass,
                "ifaces": tuple(interfaces),
                "methods": methods,
                "fields": fields,
                "access": access,
            }
        )

    @staticmethod
    def _key16(s: str) -> list[int]:
        return list(s.encode("utf-16-be"))

    def build(self) -> bytes:
        collect = Resolver(self, final=False)
        for c in self.classes:
            for m in c["methods"]:
                if m[5] is not None:
                    m[5](collect)
        strings = sorted(self.strings, key=lambda s: s.encode("utf-16-be"))
        self.string_index = {s: i for i, s in enumerate(strings)}
        types = sorted(self.types, key=lambda t: self.string_index[t])
        self.type_index = {t: i for i, t in enumerate(types)}
        protos = sorted(self.protos, key=lambda p: (self.type_index[p[0]], [self.type_index[x] for x in p[1]]))
        proto_index = {p: i for i, p in enumerate(protos)}
        fields = sorted(
            self.fields, key=lambda f: (self.type_index[f[0]], self.string_index[f[1]], self.type_index[f[2]])
        )
        self.field_index = {f: i for i, f in enumerate(fields)}
        methods = sorted(
            self.methods,
            key=lambda m: (self.type_index[m[0]], self.string_index[m[1]], proto_index[(m[2], m[3])]),
        )
        self.method_index = {m: i for i, m in enumerate(methods)}
        final = Resolver(self, final=True)

        n_ids = 0x70 + 4 * len(strings) + 4 * len(types) + 12 * len(protos) + 8 * len(fields) + 8 * len(methods)
        class_defs_off = n_ids
        data_off = class_defs_off + 32 * len(self.classes)
        data = bytearray()
        map_items: list[tuple[int, int, int]] = []

        def align4() -> None:
            while (data_off + len(data)) % 4:
                data.append(0)

        # type lists (proto parameters, interfaces)
        align4()
        type_list_offs: dict[tuple[str, ...], int] = {}
        lists = {p[1] for p in protos if p[1]} | {c["ifaces"] for c in self.classes if c["ifaces"]}
        first = data_off + len(data)
        for lst in sorted(lists):
            align4()
            type_list_offs[lst] = data_off + len(data)
            data += struct.pack("<I", len(lst)) + b"".join(struct.pack("<H", self.type_index[t]) for t in lst)
        if lists:
            map_items.append((0x1001, len(lists), first))
        # code items
        align4()
        first = data_off + len(data)
        code_offs: dict[tuple, int] = {}
        ncode = 0
        for c in self.classes:
            for name, ret, params, _acc, regs, fn in c["methods"]:
                if fn is None:
                    continue
                align4()
                insns = fn(final)
                ins = len(params) + (0 if _acc & 0x8 else 1) + sum(1 for p in params if p in ("J", "D"))
                code_offs[(c["desc"], name, ret, tuple(params))] = data_off + len(data)
                data += struct.pack("<HHHHII", max(regs, ins), ins, 5, 0, 0, len(insns))
                data += b"".join(struct.pack("<H", u & 0xFFFF) for u in insns)
                ncode += 1
        if ncode:
            map_items.append((0x2001, ncode, first))
        # string data
        first = data_off + len(data)
        string_offs = []
        for s in strings:
            string_offs.append(data_off + len(data))
            enc = s.encode("utf-8").replace(b"\x00", b"\xc0\x80")
            data += _uleb(len(s.encode("utf-16-le")) // 2) + enc + b"\x00"
        map_items.append((0x2002, len(strings), first))
        # class data
        first = data_off + len(data)
        class_data_offs = []
        for c in self.classes:
            class_data_offs.append(data_off + len(data))
            static_f = sorted((self.field_index[(c["desc"], n, t)], a) for n, t, a in c["fields"] if a & 8)
            inst_f = sorted((self.field_index[(c["desc"], n, t)], a) for n, t, a in c["fields"] if not a & 8)
            direct, virtual = [], []
            for name, ret, params, acc, _regs, _fn in c["methods"]:
                key = (c["desc"], name, ret, tuple(params))
                item = (self.method_index[key], acc, code_offs.get(key, 0))
                (direct if acc & (0x8 | 0x2 | 0x10000) or name == "<init>" else virtual).append(item)
            direct.sort()
            virtual.sort()
            data += _uleb(len(static_f)) + _uleb(len(inst_f)) + _uleb(len(direct)) + _uleb(len(virtual))
            for group in (static_f, inst_f):
                prev = 0
                for idx, acc in group:
                    data += _uleb(idx - prev) + _uleb(acc)
                    prev = idx
            for group in (direct, virtual):
                prev = 0
                for idx, acc, off in group:
                    data += _uleb(idx - prev) + _uleb(acc) + _uleb(off)
                    prev = idx
        if self.classes:
            map_items.append((0x2000, len(self.classes), first))
        # map list
        align4()
        map_off = data_off + len(data)
        items = [
            (0x0000, 1, 0),
            (0x0001, len(strings), 0x70),
            (0x0002, len(types), 0x70 + 4 * len(strings)),
            (0x0003, len(protos), 0x70 + 4 * len(strings) + 4 * len(types)),
        ]
        off = 0x70 + 4 * len(strings) + 4 * len(types) + 12 * len(protos)
        if fields:
            items.append((0x0004, len(fields), off))
        off += 8 * len(fields)
        if methods:
            items.append((0x0005, len(methods), off))
        if self.classes:
            items.append((0x0006, len(self.classes), class_defs_off))
        items += sorted(map_items, key=lambda x: x[2])
        items.append((0x1000, 1, map_off))
        data += struct.pack("<I", len(items)) + b"".join(struct.pack("<HHII", t, 0, n, o) for t, n, o in items)

        out = bytearray(0x70)
        out += b"".join(struct.pack("<I", o) for o in string_offs)
        out += b"".join(struct.pack("<I", self.string_index[t]) for t in types)
        for ret, params in protos:
            shorty = "".join(_shorty(t) for t in (ret, *params))
            out += struct.pack("<III", self.string_index[shorty], self.type_index[ret], type_list_offs.get(params, 0))
        for cls, name, typ in fields:
            out += struct.pack("<HHI", self.type_index[cls], self.type_index[typ], self.string_index[name])
        for cls, name, ret, params in methods:
            out += struct.pack("<HHI", self.type_index[cls], proto_index[(ret, params)], self.string_index[name])
        assert len(out) == class_defs_off
        for c, cd_off in zip(self.classes, class_data_offs):
            out += struct.pack(
                "<8I",
                self.type_index[c["desc"]],
                c["access"],
                self.type_index[c["super"]] if c["super"] else NO_INDEX,
                type_list_offs.get(c["ifaces"], 0),
                NO_INDEX,
                0,
                cd_off,
                0,
            )
        assert len(out) == data_off
        out += data
        header = struct.pack(
            "<8sI20s20I",
            b"dex\n035\x00",
            0,
            b"\x00" * 20,
            len(out),
            0x70,
            0x12345678,
            0,
            0,
            map_off,
            len(strings),
            0x70 if strings else 0,
            len(types),
            0x70 + 4 * len(strings) if types else 0,
            len(protos),
            0x70 + 4 * len(strings) + 4 * len(types) if protos else 0,
            len(fields),
            0x70 + 4 * len(strings) + 4 * len(types) + 12 * len(protos) if fields else 0,
            len(methods),
            0x70 + 4 * len(strings) + 4 * len(types) + 12 * len(protos) + 8 * len(fields) if methods else 0,
            len(self.classes),
            class_defs_off if self.classes else 0,
            len(out) - data_off,
            data_off,
        )
        out[: len(header)] = header
        out[12:32] = hashlib.sha1(bytes(out[32:])).digest()
        out[8:12] = struct.pack("<I", zlib.adler32(bytes(out[12:])))
        return bytes(out)


# instruction encoders (16-bit code units)
def const4(a: int, v: int) -> list[int]:
    return [0x12 | a << 8 | (v & 0xF) << 12]


def const16(a: int, v: int) -> list[int]:
    return [0x13 | a << 8, v & 0xFFFF]


def const_string(a: int, s: int) -> list[int]:
    return [0x1A | a << 8, s]


def const_string_jumbo(a: int, s: int) -> list[int]:
    return [0x1B | a << 8, s & 0xFFFF, s >> 16]


def invoke(op: int, regs: list[int], m: int) -> list[int]:
    r = [*regs, 0, 0, 0, 0, 0][:5]
    return [op | r[4] << 8 | len(regs) << 12, m, r[0] | r[1] << 4 | r[2] << 8 | r[3] << 12]


def invoke_range(op: int, first: int, count: int, m: int) -> list[int]:
    return [op | count << 8, m, first]


def move_result_object(a: int) -> list[int]:
    return [0x0C | a << 8]


def move_object(a: int, b: int) -> list[int]:
    return [0x07 | a << 8 | b << 12]


def new_instance(a: int, t: int) -> list[int]:
    return [0x22 | a << 8, t]


def new_array(a: int, size_reg: int, t: int) -> list[int]:
    return [0x23 | a << 8 | size_reg << 12, t]


def fill_array_data(a: int, offset: int) -> list[int]:
    return [0x26 | a << 8, offset & 0xFFFF, (offset >> 16) & 0xFFFF]


def array_payload(values: bytes) -> list[int]:
    body = values + (b"\x00" if len(values) % 2 else b"")
    return [0x0300, 1, len(values) & 0xFFFF, len(values) >> 16] + list(struct.unpack(f"<{len(body) // 2}H", body))


def sget_object(a: int, f: int) -> list[int]:
    return [0x62 | a << 8, f]


def iput_object(a: int, b: int, f: int) -> list[int]:
    return [0x5B | a << 8 | b << 12, f]


RETURN_VOID = [0x0E]


def ret(a: int) -> list[int]:
    return [0x0F | a << 8]


INVOKE_VIRTUAL, INVOKE_SUPER, INVOKE_DIRECT, INVOKE_STATIC, INVOKE_INTERFACE = 0x6E, 0x6F, 0x70, 0x71, 0x72
INVOKE_STATIC_RANGE = 0x77


def simple_dex() -> bytes:
    b = DexBuilder()

    def body(r: Resolver) -> list[int]:
        return [
            *const_string(0, r.s("AES/ECB/PKCS5Padding")),
            *invoke(
                INVOKE_STATIC,
                [0],
                r.m("Ljavax/crypto/Cipher;", "getInstance", "Ljavax/crypto/Cipher;", ("Ljava/lang/String;",)),
            ),
            *move_result_object(0),
            *RETURN_VOID,
        ]

    b.add_class(
        "Lcom/example/Main;",
        "Landroid/app/Activity;",
        ("Ljava/lang/Runnable;",),
        methods=[
            (
                "<init>",
                "V",
                (),
                0x10001,
                1,
                lambda r: [*invoke(INVOKE_DIRECT, [0], r.m("Landroid/app/Activity;", "<init>", "V")), *RETURN_VOID],
            ),
            ("run", "V", (), 0x1, 2, body),
            ("abstractish", "V", ("I",), 0x401, 0, None),
        ],
        fields=[("counter", "I", 0x8)],
    )
    return b.build()


# ======================================================================================
# Basic decoding
# ======================================================================================
def test_descriptor_conversions() -> None:
    assert descriptor_to_java("Lcom/a/B$C;") == "com.a.B$C"
    assert descriptor_to_java("[[I") == "int[][]"
    assert descriptor_to_java("V") == "void"
    for name in ("com.a.B", "int[]", "java.lang.String[][]", "boolean"):
        assert descriptor_to_java(java_to_descriptor(name)) == name


def test_mutf8() -> None:
    assert mutf8_decode(b"abc") == "abc"
    assert mutf8_decode(b"a\xc0\x80b") == "a\x00b"
    # U+1F600 as a CESU-8 surrogate pair
    assert mutf8_decode(b"\xed\xa0\xbd\xed\xb8\x80") == "\U0001f600"
    assert mutf8_decode(b"\xff\xfe") == "\ufffd\ufffd"  # never raises


def test_simple_built_dex() -> None:
    data = simple_dex()
    d = DexFile(data, "classes.dex")
    assert d.version == "035"
    assert d.class_defs_size == 1
    (cls,) = d.classes()
    assert cls.descriptor == "Lcom/example/Main;"
    assert cls.superclass == "Landroid/app/Activity;"
    assert cls.interfaces == ("Ljava/lang/Runnable;",)
    cd = d.class_data(cls.class_data_off)
    assert len(cd.static_fields) == 1 and d.field_ref(cd.static_fields[0][0])[1] == "counter"
    names = sorted(d.method_ref(m)[1] for m, _a, _o in cd.direct_methods + cd.virtual_methods)
    assert names == ["<init>", "abstractish", "run"]
    assert d.find_string("AES/ECB/PKCS5Padding") is not None
    assert d.find_string("not there") is None
    t = d.find_type("Ljavax/crypto/Cipher;")
    lo, hi = d.method_range(t)
    assert [d.method_java(m) for m in range(lo, hi)] == [
        ("javax.crypto.Cipher", "getInstance", "(Ljava/lang/String;)Ljavax/crypto/Cipher;")
    ]
    # the full index and the lazy per-class lookup agree
    run = next(o for m, _a, o in cd.virtual_methods if d.method_ref(m)[1] == "run")
    ins = d.instructions(run)
    assert [op for _pc, op, _n in ins] == [0x1A, 0x71, 0x0C, 0x0E]
    hit = d.method_at(run + 16 + 4)
    assert hit is not None and hit[0] == run
    assert d.method_at(run + 8) is None  # the code item header is not code
    assert len(d.code_index()) == 2


@needs_dexdump
def test_built_dex_is_valid_for_dexdump(tmp_path: Path) -> None:
    p = tmp_path / "classes.dex"
    p.write_bytes(simple_dex())
    out = subprocess.run([DEXDUMP, "-d", str(p)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Lcom/example/Main;" in out.stdout
    assert 'const-string v0, "AES/ECB/PKCS5Padding"' in out.stdout


# ======================================================================================
# Corruption: every out-of-range offset is an AnalysisError("corrupt_dex") naming the section
# ======================================================================================
HEADER_FIELDS = {  # header offset of (size, off) -> section name
    "string_ids": 0x38,
    "type_ids": 0x40,
    "proto_ids": 0x48,
    "field_ids": 0x50,
    "method_ids": 0x58,
    "class_defs": 0x60,
    "data": 0x68,
}


@pytest.mark.parametrize("section", sorted(HEADER_FIELDS))
def test_section_out_of_range(section: str) -> None:
    data = bytearray(simple_dex())
    pos = HEADER_FIELDS[section]
    struct.pack_into("<I", data, pos + 4, len(data) - 2)  # offset near the end: items overflow
    if struct.unpack_from("<I", data, pos)[0] == 0:
        struct.pack_into("<I", data, pos, 3)
    with pytest.raises(AnalysisError) as exc:
        DexFile(bytes(data), "classes2.dex")
    assert exc.value.code == "corrupt_dex"
    assert "classes2.dex" in exc.value.message and section in exc.value.message


def test_huge_count_out_of_range() -> None:
    data = bytearray(simple_dex())
    struct.pack_into("<I", data, 0x58, 0x7FFFFFFF)  # method_ids_size
    with pytest.raises(AnalysisError, match="method_ids"):
        DexFile(bytes(data))


@pytest.mark.parametrize(
    "mutate, section",
    [
        (lambda d: d.__setitem__(slice(0, 8), b"dey\n035\x00"), "header"),
        (lambda d: d.__setitem__(slice(0, 8), b"dex\n0a5\x00"), "header"),
        (lambda d: struct.pack_into("<I", d, 0x28, 0x87654321), "header"),  # endian tag
        (lambda d: struct.pack_into("<I", d, 0x20, len(d) + 100), "header"),  # file_size
        (lambda d: struct.pack_into("<I", d, 0x34, len(d) + 4), "map_list"),
    ],
)
def test_header_corruption(mutate, section: str) -> None:
    data = bytearray(simple_dex())
    mutate(data)
    with pytest.raises(AnalysisError) as exc:
        DexFile(bytes(data))
    assert exc.value.code == "corrupt_dex" and section in exc.value.message


def test_truncated_file() -> None:
    with pytest.raises(AnalysisError, match="header"):
        DexFile(simple_dex()[:100])
    with pytest.raises(AnalysisError, match="corrupt_dex"):
        DexFile(simple_dex()[:300])


def test_lazy_items_out_of_range() -> None:
    """Offsets that are only read on demand are checked when they are read."""
    data = bytearray(simple_dex())
    d = DexFile(bytes(data))
    cls_off = struct.unpack_from("<I", data, 0x64)[0]
    # class_data_off beyond the file
    bad = bytearray(data)
    struct.pack_into("<I", bad, cls_off + 24, len(bad) + 1000)
    with pytest.raises(AnalysisError, match="class_data"):
        DexFile(bytes(bad)).class_def(0)
    with pytest.raises(AnalysisError, match="class_data"):
        DexFile(bytes(bad)).code_index()
    # a string offset beyond the file
    bad = bytearray(data)
    struct.pack_into("<I", bad, 0x70, len(bad) + 10)
    with pytest.raises(AnalysisError, match="string"):
        DexFile(bytes(bad)).string(0)
    # interfaces type_list beyond the file
    bad = bytearray(data)
    struct.pack_into("<I", bad, cls_off + 12, len(bad) + 4)
    with pytest.raises(AnalysisError, match="type_list"):
        DexFile(bytes(bad)).class_def(0)
    # out-of-range indices passed in
    with pytest.raises(AnalysisError, match="method_ids"):
        d.method_ref(10_000)
    with pytest.raises(AnalysisError, match="type_ids"):
        d.type_descriptor(10_000)
    with pytest.raises(AnalysisError, match="code_item"):
        d.code_item(len(data) - 4)


# ======================================================================================
# The corpus against dexdump
# ======================================================================================
_HDR = re.compile(r"^(\w+_size)\s+:\s+(\d+)", re.M)
_CLASS = re.compile(
    r"^Class #\d+\s+-\n\s+Class descriptor\s+: '([^']*)'\n\s+Access flags\s+: (0x[0-9a-f]+).*?\n"
    r"\s+Superclass\s+: '?([^'\n]*)'?\n\s+Interfaces\s+-\n((?:\s+#\d+\s+: '[^']*'\n)*)",
    re.M,
)


def _dexdump_f(path: Path) -> str:
    out = subprocess.run([DEXDUMP, "-f", str(path)], capture_output=True, text=True, errors="replace", timeout=300)
    assert out.returncode == 0, out.stderr[:500]
    return out.stdout


@needs_dexdump
@needs_corpus
@pytest.mark.parametrize("apk", corpus_apks(), ids=lambda p: p.name)
def test_corpus_against_dexdump(apk: Path, tmp_path: Path) -> None:
    for name, data in apk_dex(apk):
        d = DexFile(data, name)
        p = tmp_path / name
        p.write_bytes(data)
        text = _dexdump_f(p)
        hdr = dict((k, int(v)) for k, v in _HDR.findall(text))
        assert hdr["string_ids_size"] == d.string_ids_size
        assert hdr["type_ids_size"] == d.type_ids_size
        assert hdr["method_ids_size"] == d.method_ids_size
        assert hdr["field_ids_size"] == d.field_ids_size
        assert hdr["class_defs_size"] == d.class_defs_size
        # class hierarchy: descriptor, access, superclass, interfaces of every class
        dumped = [
            (desc, int(acc, 16), sup or None, tuple(re.findall(r"'([^']*)'", ifaces)))
            for desc, acc, sup, ifaces in _CLASS.findall(text)
        ]
        ours = [(c.descriptor, c.access, c.superclass, c.interfaces) for c in d.classes()]
        assert len(dumped) == d.class_defs_size
        assert ours == dumped
        # method bodies: one per "code -" section in dexdump
        assert len(d.code_index()) == text.count("      code          -\n")
        # every string decodes
        strings = d.strings()
        assert len(strings) == d.string_ids_size


@needs_corpus
def test_all_corpus_strings_match_sorted_lookup() -> None:
    """find_string (binary search on raw bytes) finds every type descriptor."""
    for _apk, name, data in corpus_dex_files()[:20]:
        d = DexFile(data, name)
        for t, desc in enumerate(d.type_descriptors()):
            assert d.find_type(desc) == t


@needs_dexdump
@needs_corpus
@pytest.mark.parametrize(
    "apk",
    [
        "UnCrackable-Level1.apk",
        "JustTrustMe.apk",
        "ExploitMe-FalseSecureMobile.apk",
        "fdroidserver-souch.smsbypass_9.apk",
    ],
)
def test_instruction_boundaries_against_dexdump(apk: str, tmp_path: Path) -> None:
    """The opcode length table (including switch and array payloads) reproduces dexdump's
    disassembly instruction by instruction, for every method of these apps."""
    ((name, data),) = apk_dex(CORPUS / apk)
    p = tmp_path / name
    p.write_bytes(data)
    out = subprocess.run([DEXDUMP, "-d", str(p)], capture_output=True, text=True, errors="replace", timeout=300)
    expected: dict[int, list[int]] = {}
    current = None
    for line in out.stdout.splitlines():
        m = re.match(r"^([0-9a-f]{6}):\s+\|\[([0-9a-f]{6})\]", line)
        if m:
            current = int(m.group(2), 16)
            expected[current] = []
            continue
        m = re.match(r"^[0-9a-f]{6}: [0-9a-f ]+(?:\.\.\.)?\s*\|([0-9a-f]{4}): (\S+)", line)
        if m and current is not None:
            expected[current].append(int(m.group(1), 16))
    d = DexFile(data, name)
    offs = [k >> 40 for k in d.code_index()]
    assert sorted(offs) == sorted(expected)
    for off in offs:
        assert [pc for pc, _op, _n in d.instructions(off)] == expected[off], hex(off)


@needs_corpus
def test_line_numbers() -> None:
    ((name, data),) = apk_dex(CORPUS / "InsecureBankv2.apk")
    d = DexFile(data, name)
    t = d.find_type("Lcom/android/insecurebankv2/CryptoClass;")
    ci = list(d.class_type_indices()).index(t)
    cd = d.class_data(d.class_def(ci).class_data_off)
    lines = {}
    for m, _a, off in cd.direct_methods + cd.virtual_methods:
        item = d.code_item(off)
        lines[d.method_ref(m)[1]] = line_at(d.positions(item.debug_info_off), 0)
    assert lines["aes256encrypt"] == 52  # `new IvParameterSpec(ivBytes)` (dexdump -d positions)


# ======================================================================================
# Fuzzing: mutated DEX files only ever raise AnalysisError, and never hang
# ======================================================================================
def _seed_dex() -> bytes:
    if (CORPUS / "UnCrackable-Level1.apk").exists():
        return apk_dex(CORPUS / "UnCrackable-Level1.apk")[0][1]
    return simple_dex()


SEED = _seed_dex()


def _exercise(data: bytes) -> None:
    from medrisk.analysis.code import code_facts

    start = time.monotonic()
    try:
        d = DexFile(data)
        d.strings()
        for c in d.classes():
            cd = d.class_data(c.class_data_off)
            for _m, _a, off in cd.direct_methods + cd.virtual_methods:
                if off:
                    d.instructions(off)
                    d.positions(d.code_item(off).debug_info_off)
        for key in d.code_index()[:50]:
            d.method_at((key >> 40) + 18)
        for i in range(min(d.method_ids_size, 50)):
            d.method_java(i)
    except AnalysisError:
        pass
    facts, _strings = code_facts([("classes.dex", data)])  # never raises for bad DEX content
    assert isinstance(facts.errors, list)
    assert time.monotonic() - start < 10


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=len(SEED)))
def test_fuzz_truncation(cut: int) -> None:
    _exercise(SEED[:cut])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(
        st.tuples(st.integers(min_value=8, max_value=min(len(SEED), 2048) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    )
)
def test_fuzz_header_and_ids(flips: list[tuple[int, int]]) -> None:
    data = bytearray(SEED)
    for pos, value in flips:
        data[pos] = value
    _exercise(bytes(data))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(SEED) - 1), st.integers(0, 255)), min_size=1, max_size=16
    )
)
def test_fuzz_anywhere(flips: list[tuple[int, int]]) -> None:
    data = bytearray(SEED)
    for pos, value in flips:
        data[pos] = value
    _exercise(bytes(data))
