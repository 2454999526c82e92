"""Tests for the ELF hardening reader (analysis/native.py), checked against readelf."""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medrisk.analysis.container import open_container
from medrisk.analysis.native import analyse_elf, native_facts
from tests.conftest import corpus_apks, require_tool

READELF = shutil.which("readelf")
needs_readelf = pytest.mark.usefixtures("require_readelf")  # fails with an install hint when missing

# ---------------------------------------------------------------------------
# A small ELF writer (shared objects with a dynamic section)

DT = {"NULL": 0, "HASH": 4, "STRTAB": 5, "SYMTAB": 6, "STRSZ": 10, "SYMENT": 11, "RPATH": 15}
DT.update({"BIND_NOW": 24, "RUNPATH": 29, "FLAGS": 30, "GNU_HASH": 0x6FFFFEF5, "FLAGS_1": 0x6FFFFFFB})


def _align(n: int, a: int = 8) -> int:
    return (n + a - 1) // a * a


def make_elf(
    *,
    bits: int = 64,
    endian: str = "<",
    machine: int = 183,
    etype: int = 3,
    stack_flags: int | None = 6,  # PF_R|PF_W; None = no PT_GNU_STACK
    relro: bool = True,
    bind_now: bool = False,
    dt_flags: int | None = None,
    dt_flags_1: int | None = None,
    imports: tuple[str, ...] = ("__stack_chk_fail", "strlen"),
    exports: tuple[str, ...] = ("Java_com_x_Foo_bar",),
    symtab: bool = False,
    sections: bool = True,
    hash_style: str = "sysv",
    rpath: str | None = None,
    runpath: str | None = None,
) -> bytes:
    is64 = bits == 64
    e = endian
    ehsize, phent, shent = (64, 56, 64) if is64 else (52, 32, 40)
    sym_st = struct.Struct(f"{e}IBBHQQ" if is64 else f"{e}IIIBBH")
    dyn_st = struct.Struct(f"{e}qQ" if is64 else f"{e}iI")

    names = list(imports) + list(exports)
    dynstr = bytearray(b"\x00")
    name_off = {}
    for nm in names + [x for x in (rpath, runpath) if x]:
        name_off[nm] = len(dynstr)
        dynstr += nm.encode() + b"\x00"

    def sym(name: str | None, defined: bool) -> bytes:
        n = name_off[name] if name else 0
        info = 0x12 if name else 0  # GLOBAL FUNC
        shndx = 1 if defined else 0
        value = 0x100 if defined else 0
        if is64:
            return sym_st.pack(n, info, 0, shndx, value, 0)
        return sym_st.pack(n, value, 0, info, 0, shndx)

    dynsym = sym(None, False) + b"".join(sym(n, False) for n in imports)
    dynsym += b"".join(sym(n, True) for n in exports)
    nsyms = 1 + len(names)

    if hash_style == "sysv":
        hash_tab = (
            struct.pack(f"{e}II", 1, nsyms) + struct.pack(f"{e}I", 0) + struct.pack(f"{e}{nsyms}I", *([0] * nsyms))
        )
    else:
        symoffset = 1 + len(imports)
        word = 8 if is64 else 4
        chains = [2] * (len(exports) - 1) + [3] if exports else []
        hash_tab = struct.pack(f"{e}IIII", 1, symoffset, 1, 6) + bytes(word)
        hash_tab += struct.pack(f"{e}I", symoffset if exports else 0)
        hash_tab += struct.pack(f"{e}{len(chains)}I", *chains)

    dyn_entries: list[tuple[int, int]] = []
    ph_types = [1, 2] + ([0x6474E551] if stack_flags is not None else []) + ([0x6474E552] if relro else [])
    off = ehsize + phent * len(ph_types)
    dynstr_off = _align(off)
    dynsym_off = _align(dynstr_off + len(dynstr))
    hash_off = _align(dynsym_off + len(dynsym))
    dynamic_off = _align(hash_off + len(hash_tab))
    dyn_entries = [
        (DT["HASH" if hash_style == "sysv" else "GNU_HASH"], hash_off),
        (DT["STRTAB"], dynstr_off),
        (DT["SYMTAB"], dynsym_off),
        (DT["STRSZ"], len(dynstr)),
        (DT["SYMENT"], sym_st.size),
    ]
    if rpath:
        dyn_entries.append((DT["RPATH"], name_off[rpath]))
    if runpath:
        dyn_entries.append((DT["RUNPATH"], name_off[runpath]))
    if bind_now:
        dyn_entries.append((DT["BIND_NOW"], 0))
    if dt_flags is not None:
        dyn_entries.append((DT["FLAGS"], dt_flags))
    if dt_flags_1 is not None:
        dyn_entries.append((DT["FLAGS_1"], dt_flags_1))
    dyn_entries.append((0, 0))
    dynamic = b"".join(dyn_st.pack(t, v) for t, v in dyn_entries)
    end = dynamic_off + len(dynamic)

    extra = bytearray()
    strtab_off = symtab_off = 0
    strtab = b"\x00local_helper\x00"
    if symtab:
        strtab_off = end
        symtab_off = _align(strtab_off + len(strtab))
        local = sym_st.pack(1, 0x02, 0, 1, 0x100, 4) if is64 else sym_st.pack(1, 0x100, 4, 0x02, 0, 1)
        symtab_data = sym_st.pack(*([0] * 6)) + local
        extra += strtab + bytes(symtab_off - strtab_off - len(strtab)) + symtab_data
        end = symtab_off + len(symtab_data)

    shnames = [b"", b".dynsym", b".dynstr", b".dynamic", b".hash"]
    if symtab:
        shnames += [b".symtab", b".strtab"]
    shnames.append(b".shstrtab")
    shstr = bytearray()
    shname_off = []
    for nm in shnames:
        shname_off.append(len(shstr))
        shstr += nm + b"\x00"
    shstr_off = end
    end += len(shstr)
    sh_off = _align(end)

    if is64:
        sh_st = struct.Struct(f"{e}IIQQQQIIQQ")
    else:
        sh_st = struct.Struct(f"{e}IIIIIIIIII")
    shdrs = [sh_st.pack(*([0] * 10))]
    shdrs.append(sh_st.pack(shname_off[1], 11, 2, dynsym_off, dynsym_off, len(dynsym), 2, 1, 8, sym_st.size))
    shdrs.append(sh_st.pack(shname_off[2], 3, 2, dynstr_off, dynstr_off, len(dynstr), 0, 0, 1, 0))
    shdrs.append(sh_st.pack(shname_off[3], 6, 3, dynamic_off, dynamic_off, len(dynamic), 2, 0, 8, dyn_st.size))
    hash_type = 5 if hash_style == "sysv" else 0x6FFFFFF6
    shdrs.append(sh_st.pack(shname_off[4], hash_type, 2, hash_off, hash_off, len(hash_tab), 1, 0, 8, 4))
    if symtab:
        shdrs.append(sh_st.pack(shname_off[5], 2, 0, 0, symtab_off, sym_st.size * 2, 6, 1, 8, sym_st.size))
        shdrs.append(sh_st.pack(shname_off[6], 3, 0, 0, strtab_off, len(strtab), 0, 0, 1, 0))
    shdrs.append(sh_st.pack(shname_off[-1], 3, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0))
    total = sh_off + shent * len(shdrs) if sections else sh_off

    phdrs = []
    for t in ph_types:
        if t == 1:
            o, sz, fl = 0, total, 7
        elif t == 2:
            o, sz, fl = dynamic_off, len(dynamic), 6
        elif t == 0x6474E551:
            o, sz, fl = 0, 0, stack_flags
        else:
            o, sz, fl = dynamic_off, len(dynamic), 4
        if is64:
            phdrs.append(struct.pack(f"{e}IIQQQQQQ", t, fl, o, o, o, sz, sz, 8))
        else:
            phdrs.append(struct.pack(f"{e}IIIIIIII", t, o, o, o, sz, sz, fl, 8))

    w = "Q" if is64 else "I"
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if e == "<" else 2, 1, 0]) + bytes(8)
    hdr = ident + struct.pack(
        f"{e}HHI{w}{w}{w}IHHHHHH",
        etype,
        machine,
        1,
        0,
        ehsize,
        sh_off if sections else 0,
        0,
        ehsize,
        phent,
        len(phdrs),
        shent if sections else 0,
        len(shdrs) if sections else 0,
        len(shdrs) - 1 if sections else 0,
    )
    out = bytearray(hdr + b"".join(phdrs))
    for at, blob in ((dynstr_off, dynstr), (dynsym_off, dynsym), (hash_off, hash_tab), (dynamic_off, dynamic)):
        out += bytes(at - len(out)) + blob
    out += extra + shstr
    out += bytes(sh_off - len(out))
    if sections:
        out += b"".join(shdrs)
    return bytes(out)


# ---------------------------------------------------------------------------
# readelf oracle


def readelf_facts(path: Path) -> dict:
    out = subprocess.run(
        [READELF, "-W", "-h", "-l", "-d", "-S", "--dyn-syms", str(path)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    stack = re.search(r"^\s*GNU_STACK\s+(?:\S+\s+){5}([RWE ]{3})", out, re.M)
    relro = re.search(r"^\s*GNU_RELRO\s", out, re.M) is not None
    bind_now = bool(
        re.search(r"\(BIND_NOW\)", out)
        or re.search(r"\(FLAGS\)\s.*\bBIND_NOW\b", out)
        or re.search(r"\(FLAGS_1\)\s+Flags:.*\bNOW\b", out)
    )
    imports = set()
    sym_line = r"^[ \t]*\d+:[ \t]+[0-9a-f]+[ \t]+\S+[ \t]+\w+[ \t]+\w+[ \t]+\w+[ \t]+UND[ \t]+(\S+)"
    for m in re.finditer(sym_line, out, re.M):
        imports.add(m.group(1).split("@")[0])
    paths = re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*)\]", out)
    return {
        "pie": re.search(r"Type:\s+DYN\b", out) is not None,
        "nx": bool(stack) and "E" not in stack.group(1),
        "relro": "none" if not relro else ("full" if bind_now else "partial"),
        "canary": bool(imports & {"__stack_chk_fail", "__stack_chk_guard"}),
        "fortify": any(re.match(r"^__\w+_chk$", s) for s in imports),
        "stripped": re.search(r"^\s*\[\s*\d+\]\s+\S+\s+SYMTAB\s", out, re.M) is None,
        "rpath": paths,
    }


FIELDS = ("pie", "nx", "relro", "canary", "fortify", "stripped")


def assert_matches_readelf(data: bytes, tmp_path: Path, name: str = "lib.so") -> dict:
    p = tmp_path / name
    p.write_bytes(data)
    ref = readelf_facts(p)
    got = analyse_elf(data, name, "x").to_dict()
    assert got["error"] is None, got
    assert {k: got[k] for k in FIELDS} == {k: ref[k] for k in FIELDS}, name
    want = set(":".join(ref["rpath"]).split(":")) if ref["rpath"] else set()
    assert (set(got["rpath"].split(":")) if got["rpath"] else set()) == want
    return got


# ---------------------------------------------------------------------------
# Synthetic ELFs


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_synthetic_layouts(bits, endian, tmp_path):
    data = make_elf(bits=bits, endian=endian, machine=8 if endian == ">" else 40)
    lib = analyse_elf(data, "lib/x/libt.so", "x")
    assert lib.error is None
    expected_machine = ("MIPS64" if bits == 64 else "MIPS") if endian == ">" else "ARM"
    assert lib.machine == expected_machine
    assert (lib.nx, lib.pie, lib.canary, lib.relro, lib.fortify, lib.stripped, lib.rpath) == (
        True,
        True,
        True,
        "partial",
        False,
        True,
        None,
    )
    if READELF:
        assert_matches_readelf(data, tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"stack_flags": 7}, {"nx": False}),
        ({"stack_flags": None}, {"nx": False}),
        ({"relro": False, "bind_now": True}, {"relro": "none"}),
        ({"bind_now": True}, {"relro": "full"}),
        ({"dt_flags": 0x8}, {"relro": "full"}),
        ({"dt_flags": 0x2}, {"relro": "partial"}),
        ({"dt_flags_1": 0x1}, {"relro": "full"}),
        ({"imports": ("strlen",)}, {"canary": False}),
        ({"imports": ("__stack_chk_guard",)}, {"canary": True}),
        ({"imports": ("__memcpy_chk", "__vsnprintf_chk")}, {"fortify": True, "canary": False}),
        ({"exports": ("__my_chk",), "imports": ()}, {"fortify": False}),
        ({"symtab": True}, {"stripped": False}),
        ({"etype": 2}, {"pie": False}),
        ({"runpath": "$ORIGIN/lib"}, {"rpath": "$ORIGIN/lib"}),
        ({"rpath": "/data/local/tmp", "runpath": "/x"}, {"rpath": "/x:/data/local/tmp"}),
        ({"machine": 62}, {"machine": "x86-64"}),
        ({"machine": 0x1234}, {"machine": "EM_4660"}),
    ],
)
def test_synthetic_flags(kwargs, expected, tmp_path):
    for bits, endian in ((64, "<"), (32, ">")):
        data = make_elf(bits=bits, endian=endian, **kwargs)
        got = analyse_elf(data, "l.so", "x").to_dict()
        assert got["error"] is None
        assert {k: got[k] for k in expected} == expected, (bits, endian)
        if READELF and "machine" not in kwargs:
            assert_matches_readelf(data, tmp_path)


@pytest.mark.parametrize("hash_style", ["sysv", "gnu"])
@pytest.mark.parametrize("bits", [32, 64])
def test_no_section_headers_uses_dynamic_hash(hash_style, bits):
    data = make_elf(bits=bits, sections=False, hash_style=hash_style, imports=("__stack_chk_fail", "__strcpy_chk"))
    lib = analyse_elf(data)
    assert lib.error is None
    assert lib.canary and lib.fortify and lib.stripped


# ---------------------------------------------------------------------------
# Malformed ELF: error string, never an exception


def _corrupt(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


GOOD64 = make_elf()
GOOD32 = make_elf(bits=32, endian=">")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "bad magic"),
        (b"\x7fELF", "bad magic"),
        (b"MZ" + bytes(100), "bad magic"),
        (GOOD64[:30], "truncated ELF header"),
        (_corrupt(GOOD64, 4, b"\x07"), "bad ELF class"),
        (_corrupt(GOOD64, 5, b"\x09"), "bad ELF data encoding"),
        (_corrupt(GOOD64, 32, struct.pack("<Q", 10**9)), "program header"),  # e_phoff
        (_corrupt(GOOD64, 54, struct.pack("<H", 8)), "program header"),  # e_phentsize
        (_corrupt(GOOD64, 56, struct.pack("<H", 0xFFFE)), "program header"),  # e_phnum
        (_corrupt(GOOD64, 40, struct.pack("<Q", 10**9)), "section header"),  # e_shoff
        (GOOD64[: len(GOOD64) - 100], "section header"),
        (_corrupt(GOOD32, 44, struct.pack(">H", 0xFFFF)), ""),  # PN_XNUM
    ],
)
def test_malformed(data, fragment):
    lib = analyse_elf(data, "lib/x/bad.so", "x")
    if fragment:
        assert lib.error and fragment in lib.error
    assert isinstance(lib.to_dict(), dict)


def test_malformed_dynamic_and_symbols():
    # Point PT_DYNAMIC past the end of the file.
    ph_dyn = 64 + 56  # second program header
    bad = _corrupt(GOOD64, ph_dyn + 8, struct.pack("<Q", 10**8))
    lib = analyse_elf(bad)
    assert lib.error is not None and "dynamic" in lib.error
    # A dynamic symbol table that claims to be enormous.
    sh_dynsym = struct.unpack_from("<Q", GOOD64, 40)[0] + 64
    bad = _corrupt(GOOD64, sh_dynsym + 32, struct.pack("<Q", 10**12))
    lib = analyse_elf(bad)
    assert lib.error is not None and "symbol" in lib.error
    assert lib.nx and lib.relro == "partial"  # best effort for the rest


# ---------------------------------------------------------------------------
# native_facts on a container


def test_native_facts_from_container():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("AndroidManifest.xml", b"m")
        z.writestr("lib/arm64-v8a/libgood.so", make_elf(imports=("__stack_chk_fail",)))
        z.writestr("lib/armeabi-v7a/libgood.so", make_elf(bits=32, machine=40, bind_now=True))
        z.writestr("lib/x86/libfake.so", b"not an elf at all")
        z.writestr("lib/x86/notes.txt", b"x")
        z.writestr("assets/lib/x.so", make_elf())
    data = bytearray(buf.getvalue())
    c = open_container(bytes(data))
    facts = native_facts(c).to_dict()
    libs = {lib["path"]: lib for lib in facts["libraries"]}
    assert list(libs) == ["lib/arm64-v8a/libgood.so", "lib/armeabi-v7a/libgood.so", "lib/x86/libfake.so"]
    assert libs["lib/arm64-v8a/libgood.so"]["abi"] == "arm64-v8a"
    assert libs["lib/arm64-v8a/libgood.so"]["machine"] == "AArch64"
    assert libs["lib/armeabi-v7a/libgood.so"]["relro"] == "full"
    assert libs["lib/x86/libfake.so"]["error"] == "not an ELF file (bad magic)"
    for lib in libs.values():
        assert set(lib) == {
            "unsafe_functions",
            "strings",
            "path",
            "abi",
            "machine",
            "nx",
            "pie",
            "canary",
            "relro",
            "fortify",
            "stripped",
            "rpath",
            "error",
        }


def test_native_facts_unreadable_entry():
    c = zlib_broken_container()
    (lib,) = native_facts(c).libraries
    assert lib.error.startswith("corrupt_entry:")


def zlib_broken_container():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("lib/x86/libz.so", make_elf() * 3)
    data = bytearray(buf.getvalue())
    start = 30 + len("lib/x86/libz.so")
    data[start : start + 8] = b"\xff" * 8
    return open_container(bytes(data))


# ---------------------------------------------------------------------------
# Real libraries vs readelf


def _corpus_libs() -> list[tuple[str, str, bytes]]:
    out = []
    for apk in corpus_apks():
        c = open_container(apk.read_bytes())
        for name in c.names():
            if name.startswith("lib/") and name.endswith(".so"):
                out.append((apk.name, name, c.read(name)))
    return out


CORPUS_LIBS = _corpus_libs()


@needs_readelf
def test_corpus_libraries_match_readelf(tmp_path):
    assert CORPUS_LIBS, "no native libraries in the corpus"
    checked = 0
    for apk, name, data in CORPUS_LIBS:
        if not data.startswith(b"\x7fELF"):
            assert analyse_elf(data, name).error == "not an ELF file (bad magic)"
            continue
        assert_matches_readelf(data, tmp_path, f"{apk}-{name.replace('/', '_')}")
        checked += 1
    assert checked >= 50


def test_corpus_native_facts():
    apks = {p.name: p for p in corpus_apks()}
    for name in ("DamnVulnerableBank.apk", "mastg-HelloWorld-JNI.apk", "UnCrackable-Level3.apk"):
        assert name in apks, f"{name} missing from the corpus"
        facts = native_facts(open_container(apks[name].read_bytes()))
        assert facts.libraries, name
        for lib in facts.libraries:
            assert lib.error is None and lib.pie and lib.machine != "unknown"
    uc3 = native_facts(open_container(apks["UnCrackable-Level3.apk"].read_bytes()))
    assert sorted(lib.abi for lib in uc3.libraries) == ["arm64-v8a", "armeabi-v7a", "x86", "x86_64"]
    diva = native_facts(open_container(apks["diva-beta.apk"].read_bytes())) if "diva-beta.apk" in apks else None
    if diva:
        assert not any(lib.nx for lib in diva.libraries)  # built with an executable stack


def _system_libs(limit: int = 25) -> list[Path]:
    """A sample of the host's shared libraries, always including libc (present on every Debian)."""
    root = Path("/usr/lib/x86_64-linux-gnu")
    libs = sorted(p for p in root.glob("lib*.so*") if p.is_file() and not p.is_symlink())
    step = max(1, len(libs) // limit)
    libc = {p.resolve() for p in Path("/").glob("*lib*/*-linux-gnu*/libc.so.6")}
    return sorted({*libs[::step][:limit], *libc})


@needs_readelf
def test_system_libraries_match_readelf(tmp_path):
    libs = _system_libs()
    assert any(p.name.startswith("libc.so") for p in libs), "libc.so.6 not found under /lib/*-linux-gnu"
    for p in libs:
        data = p.read_bytes()
        if data.startswith(b"\x7fELF"):
            assert_matches_readelf(data, tmp_path, p.name)


@needs_readelf
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["-O2", "-D_FORTIFY_SOURCE=2", "-fstack-protector-all", "-Wl,-z,relro,-z,now", "-s"],
            {"canary": True, "fortify": True, "relro": "full", "stripped": True, "nx": True},
        ),
        (
            ["-O0", "-fno-stack-protector", "-Wl,-z,norelro", "-Wl,-z,execstack", "-Wl,-rpath,/opt/evil"],
            {"canary": False, "fortify": False, "relro": "none", "stripped": False, "nx": False},
        ),
        (
            ["-O2", "-Wl,-z,relro,-z,lazy", "-Wl,--enable-new-dtags,-rpath,$ORIGIN"],
            {"relro": "partial", "rpath": "$ORIGIN"},
        ),
    ],
)
def test_gcc_built_libraries(flags, expected, tmp_path):
    src = tmp_path / "t.c"
    src.write_text(
        "#include <string.h>\n#include <stdio.h>\n"
        'int f(const char *s, char *o, int n) { char b[64]; strcpy(b, s); snprintf(o, n, "%s", b);'
        " memcpy(o, b, strlen(b) % 8); return (int)strlen(o); }\n"
    )
    out = tmp_path / "libt.so"
    r = subprocess.run([require_tool("gcc"), "-shared", "-fPIC", *flags, str(src), "-o", str(out)], capture_output=True)
    assert r.returncode == 0, f"gcc failed: {r.stderr[:200]!r}"
    got = assert_matches_readelf(out.read_bytes(), tmp_path, "check.so")
    assert {k: got[k] for k in expected} == expected


# ---------------------------------------------------------------------------
# Fuzzing


ELF_SEEDS = [GOOD64, GOOD32, make_elf(sections=False, hash_style="gnu"), make_elf(symtab=True, bits=32)]
ELF_SEEDS += [data for _apk, _n, data in CORPUS_LIBS if data.startswith(b"\x7fELF") and len(data) < 20_000][:3]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(range(len(ELF_SEEDS))),
    edits=st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=8)), min_size=1, max_size=10),
    head_bias=st.booleans(),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_fuzz_elf(seed, edits, head_bias, cut):
    data = bytearray(ELF_SEEDS[seed])
    n = len(data)
    for pos, blob in edits:
        i = int(pos * (min(n, 256) if head_bias else n - 1))  # headers live at the start
        data[i : i + len(blob)] = blob
    if cut is not None:
        data = data[: int(cut * len(data))]
    lib = analyse_elf(bytes(data), "lib/x/f.so", "x")
    d = lib.to_dict()
    assert d["relro"] in ("none", "partial", "full")
    assert d["error"] is None or isinstance(d["error"], str)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_random_elf_like(data):
    for blob in (data, b"\x7fELF\x02\x01\x01" + data, b"\x7fELF\x01\x02\x01" + data):
        lib = analyse_elf(blob)
        assert lib.error is None or isinstance(lib.error, str)
