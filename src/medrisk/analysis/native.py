"""Hardening facts of the native libraries (``lib/<abi>/*.so``) of a package.

A small ELF reader (32/64-bit, little/big endian), written for hostile input: every
table is bounds-checked against the file and every loop is bounded by the data size.
A malformed library yields a per-library ``error`` string (fields best effort), never
an exception out of this module.

Definitions (the ones ``checksec``/``readelf`` users expect):

* ``nx``: a ``PT_GNU_STACK`` header without ``PF_X`` (no header = executable stack).
* ``pie``: ``e_type == ET_DYN`` (always true for a loadable shared object).
* ``canary``: the dynamic symbol table imports ``__stack_chk_fail`` or ``__stack_chk_guard``.
* ``relro``: ``none`` without ``PT_GNU_RELRO``; ``full`` with it and immediate binding
  (``DT_BIND_NOW``, ``DF_BIND_NOW`` in ``DT_FLAGS`` or ``DF_1_NOW`` in ``DT_FLAGS_1``);
  otherwise ``partial``.
* ``fortify``: an imported ``__*_chk`` symbol (``__memcpy_chk``, ``__strlen_chk``...).
* ``stripped``: no ``SHT_SYMTAB`` section.
* ``rpath``: ``DT_RUNPATH`` and ``DT_RPATH`` strings (deduplicated, ``:``-joined).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from .errors import AnalysisError

ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_DYNAMIC = 1, 2
PT_GNU_STACK, PT_GNU_RELRO = 0x6474E551, 0x6474E552
PF_X = 1
SHT_SYMTAB, SHT_STRTAB, SHT_DYNAMIC, SHT_DYNSYM = 2, 3, 6, 11
SHN_UNDEF = 0
DT_NULL, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT = 0, 4, 5, 6, 10, 11
DT_RPATH, DT_BIND_NOW, DT_RUNPATH, DT_FLAGS = 15, 24, 29, 30
DT_GNU_HASH, DT_FLAGS_1 = 0x6FFFFEF5, 0x6FFFFFFB
DF_BIND_NOW, DF_1_NOW = 0x8, 0x1
PN_XNUM = 0xFFFF
MAX_SYMBOLS = 2_000_000

MACHINES = {
    3: "x86",
    8: "MIPS",
    10: "MIPS",
    20: "PowerPC",
    40: "ARM",
    62: "x86-64",
    183: "AArch64",
    243: "RISC-V",
    258: "LoongArch",
}
CANARY_SYMBOLS = frozenset((b"__stack_chk_fail", b"__stack_chk_guard"))
_FORTIFY = re.compile(rb"^__\w+_chk$")
_LIB_PATH = re.compile(r"^lib/([^/]+)/[^/]+\.so$")


class ElfError(Exception):
    """Malformed ELF (internal; reported as NativeLibrary.error)."""


@dataclass
class NativeLibrary:
    path: str
    abi: str
    machine: str = "unknown"
    nx: bool = False
    pie: bool = False
    canary: bool = False
    relro: str = "none"
    fortify: bool = False
    stripped: bool = False
    rpath: str | None = None
    error: str | None = None
    unsafe_functions: list[str] = field(default_factory=list)  # imported unbounded libc functions
    strings: list[dict[str, str]] = field(default_factory=list)  # marker strings (marker_strings)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "abi": self.abi,
            "machine": self.machine,
            "nx": self.nx,
            "pie": self.pie,
            "canary": self.canary,
            "relro": self.relro,
            "fortify": self.fortify,
            "stripped": self.stripped,
            "rpath": self.rpath,
            "error": self.error,
            "unsafe_functions": list(self.unsafe_functions),
            "strings": [dict(s) for s in self.strings],
        }


@dataclass
class NativeFacts:
    libraries: list[NativeLibrary] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"libraries": [lib.to_dict() for lib in self.libraries]}


class _Elf:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.n = len(data)
        if self.n < 16 or data[:4] != b"\x7fELF":
            raise ElfError("not an ELF file (bad magic)")
        cls, enc = data[4], data[5]
        if cls not in (1, 2):
            raise ElfError(f"bad ELF class {cls}")
        if enc not in (1, 2):
            raise ElfError(f"bad ELF data encoding {enc}")
        self.is64 = cls == 2
        e = "<" if enc == 1 else ">"
        w = "Q" if self.is64 else "I"
        hdr = struct.Struct(f"{e}HHI{w}{w}{w}IHHHHHH")
        if self.n < 16 + hdr.size:
            raise ElfError("truncated ELF header")
        (
            self.e_type,
            self.e_machine,
            _version,
            _entry,
            self.phoff,
            self.shoff,
            _flags,
            _ehsize,
            self.phentsize,
            self.phnum,
            self.shentsize,
            self.shnum,
            _shstrndx,
        ) = hdr.unpack_from(data, 16)
        if self.is64:
            self.ph = struct.Struct(f"{e}IIQQQQQQ")  # type flags offset vaddr paddr filesz memsz align
            self.sh = struct.Struct(f"{e}IIQQQQIIQQ")
            self.dyn = struct.Struct(f"{e}qQ")
            self.sym = struct.Struct(f"{e}IBBHQQ")  # name info other shndx value size
        else:
            self.ph = struct.Struct(f"{e}IIIIIIII")  # type offset vaddr paddr filesz memsz flags align
            self.sh = struct.Struct(f"{e}IIIIIIIIII")
            self.dyn = struct.Struct(f"{e}iI")
            self.sym = struct.Struct(f"{e}IIIBBH")  # name value size info other shndx
        self.u32 = struct.Struct(f"{e}I")
        self.word = struct.Struct(f"{e}{w}")
        self.errors: list[str] = []

    # -- tables ------------------------------------------------------------------

    def _table(self, off: int, entsize: int, count: int, st: struct.Struct, what: str) -> list[tuple]:
        if count == 0:
            return []
        if off == 0 or entsize < st.size:
            self.errors.append(f"bad {what} table (offset {off}, entry size {entsize})")
            return []
        avail = max(0, (self.n - off) // entsize) if off < self.n else 0
        if count > avail:
            self.errors.append(f"{what} table extends past the end of the file")
            count = avail
        return [st.unpack_from(self.data, off + i * entsize) for i in range(count)]

    def sections(self) -> list[tuple]:
        shnum = self.shnum
        if self.shoff and shnum == 0 and self.shoff + self.sh.size <= self.n and self.shentsize >= self.sh.size:
            shnum = self.sh.unpack_from(self.data, self.shoff)[5]  # sh_size of section 0
        if not self.shoff:
            return []
        return self._table(self.shoff, self.shentsize, shnum, self.sh, "section header")

    def segments(self) -> list[tuple[int, int, int, int, int]]:
        """(type, flags, offset, vaddr, filesz) of each program header."""
        phnum = self.phnum
        if phnum == PN_XNUM:
            secs = self._table(self.shoff, self.shentsize, 1, self.sh, "section header") if self.shoff else []
            phnum = secs[0][7] if secs else 0  # sh_info of section 0
        out = []
        for p in self._table(self.phoff, self.phentsize, phnum, self.ph, "program header"):
            if self.is64:
                out.append((p[0], p[1], p[2], p[3], p[5]))
            else:
                out.append((p[0], p[6], p[1], p[2], p[4]))
        return out

    def vaddr_to_offset(self, segs: list[tuple[int, int, int, int, int]], addr: int) -> int | None:
        for ptype, _f, off, vaddr, filesz in segs:
            if ptype == PT_LOAD and vaddr <= addr < vaddr + filesz:
                return off + (addr - vaddr)
        return None

    def dynamic(self, segs, secs) -> list[tuple[int, int]]:
        off = size = None
        for ptype, _f, o, _v, filesz in segs:
            if ptype == PT_DYNAMIC:
                off, size = o, filesz
                break
        if off is None:
            for s in secs:
                if s[1] == SHT_DYNAMIC:
                    off, size = s[4], s[5]
                    break
        if off is None or size is None:
            return []
        if off >= self.n:
            self.errors.append("dynamic section is beyond the end of the file")
            return []
        end = min(self.n, off + size)
        count = (end - off) // self.dyn.size
        out = []
        for i in range(count):
            tag, val = self.dyn.unpack_from(self.data, off + i * self.dyn.size)
            if tag == DT_NULL:
                break
            out.append((tag, val))
        return out

    def string(self, table_off: int, table_end: int, idx: int) -> bytes | None:
        p = table_off + idx
        if idx < 0 or p >= table_end:
            return None
        q = self.data.find(b"\x00", p, table_end)
        return self.data[p : q if q >= 0 else table_end]

    def _gnu_hash_count(self, off: int) -> int | None:
        d, u32 = self.data, self.u32
        if off + 16 > self.n:
            return None
        nbuckets, symoffset, bloom_size, _shift = struct.unpack_from(u32.format[0] + "IIII", d, off)
        buckets = off + 16 + bloom_size * (8 if self.is64 else 4)
        chains = buckets + 4 * nbuckets
        if nbuckets == 0 or chains > self.n:
            return None
        top = max(struct.unpack_from(f"{u32.format[0]}{nbuckets}I", d, buckets))
        if top < symoffset:
            return symoffset
        i = top
        while True:
            p = chains + 4 * (i - symoffset)
            if p + 4 > self.n or i >= MAX_SYMBOLS:
                return None
            if u32.unpack_from(d, p)[0] & 1:
                return i + 1
            i += 1

    def imported_symbols(self, segs, secs, dyn: dict[int, int]) -> set[bytes] | None:
        """Names of undefined dynamic symbols, or None when no table can be found."""
        sym_off = sym_end = str_off = str_end = None
        entsize = self.sym.size
        for s in secs:
            if s[1] == SHT_DYNSYM:
                link = s[6]
                if link < len(secs) and secs[link][1] == SHT_STRTAB:
                    sym_off, sym_end = s[4], s[4] + s[5]
                    entsize = s[9] or entsize
                    st = secs[link]
                    str_off, str_end = st[4], st[4] + st[5]
                break
        if sym_off is None and DT_SYMTAB in dyn and DT_STRTAB in dyn:
            sym_off = self.vaddr_to_offset(segs, dyn[DT_SYMTAB])
            str_off = self.vaddr_to_offset(segs, dyn[DT_STRTAB])
            entsize = dyn.get(DT_SYMENT) or entsize
            if sym_off is None or str_off is None:
                self.errors.append("dynamic symbol table address is not in a loaded segment")
                return None
            str_end = str_off + dyn.get(DT_STRSZ, self.n - str_off)
            count = None
            if DT_HASH in dyn:
                h = self.vaddr_to_offset(segs, dyn[DT_HASH])
                if h is not None and h + 8 <= self.n:
                    count = self.u32.unpack_from(self.data, h + 4)[0]
            if count is None and DT_GNU_HASH in dyn:
                h = self.vaddr_to_offset(segs, dyn[DT_GNU_HASH])
                count = self._gnu_hash_count(h) if h is not None else None
            if count is None:
                self.errors.append("cannot size the dynamic symbol table")
                return None
            sym_end = sym_off + count * entsize
        if sym_off is None or str_off is None or sym_end is None or str_end is None:
            return None
        if entsize < self.sym.size:
            self.errors.append(f"bad dynamic symbol entry size {entsize}")
            return None
        if sym_end > self.n or str_end > self.n or sym_off > sym_end or str_off > str_end:
            self.errors.append("dynamic symbol table extends past the end of the file")
            sym_end, str_end = min(sym_end, self.n), min(str_end, self.n)
        count = min(max(0, sym_end - sym_off) // entsize, MAX_SYMBOLS)
        name_i, shndx_i = (0, 3) if self.is64 else (0, 5)
        if entsize == self.sym.size:
            view = memoryview(self.data)[sym_off : sym_off + count * entsize]
            records = self.sym.iter_unpack(view)
        else:
            records = (self.sym.unpack_from(self.data, sym_off + i * entsize) for i in range(count))
        wanted = {r[name_i] for r in records if r[shndx_i] == SHN_UNDEF and r[name_i]}
        names: set[bytes] = set()
        for idx in wanted:
            nm = self.string(str_off, str_end, idx)
            if nm:
                names.add(nm)
        return names


def _dyn_string(elf: _Elf, segs, dyn_list, dyn: dict[int, int], tags: tuple[int, ...]) -> str | None:
    vals = [v for tag in tags for t, v in dyn_list if t == tag]
    if not vals:
        return None
    str_off = elf.vaddr_to_offset(segs, dyn[DT_STRTAB]) if DT_STRTAB in dyn else None
    if str_off is None:
        elf.errors.append("DT_RPATH/DT_RUNPATH without a usable string table")
        return None
    str_end = min(elf.n, str_off + dyn.get(DT_STRSZ, elf.n))
    out: list[str] = []
    for v in vals:
        s = elf.string(str_off, str_end, v)
        if s is not None:
            t = s.decode("utf-8", "replace")
            if t not in out:
                out.append(t)
    return ":".join(out) if out else None


def analyse_elf(data: bytes, path: str = "", abi: str = "") -> NativeLibrary:
    """Hardening facts of one ELF image. Never raises."""
    lib = NativeLibrary(path=path, abi=abi)
    try:
        elf = _Elf(data)
        lib.machine = MACHINES.get(elf.e_machine, f"EM_{elf.e_machine}")
        if lib.machine == "MIPS" and elf.is64:
            lib.machine = "MIPS64"
        lib.pie = elf.e_type == ET_DYN
        segs = elf.segments()
        secs = elf.sections()
        stack = [s for s in segs if s[0] == PT_GNU_STACK]
        lib.nx = bool(stack) and not stack[0][1] & PF_X
        dyn_list = elf.dynamic(segs, secs)
        dyn: dict[int, int] = {}
        for t, v in dyn_list:
            dyn.setdefault(t, v)
        bind_now = any(
            t == DT_BIND_NOW or (t == DT_FLAGS and v & DF_BIND_NOW) or (t == DT_FLAGS_1 and v & DF_1_NOW)
            for t, v in dyn_list
        )
        if any(s[0] == PT_GNU_RELRO for s in segs):
            lib.relro = "full" if bind_now else "partial"
        lib.stripped = not any(s[1] == SHT_SYMTAB for s in secs)
        lib.rpath = _dyn_string(elf, segs, dyn_list, dyn, (DT_RUNPATH, DT_RPATH))
        imports = elf.imported_symbols(segs, secs, dyn) if (dyn or secs) else set()
        if imports:
            lib.unsafe_functions = sorted(s.decode("ascii", "replace") for s in imports & UNSAFE_FUNCTIONS)
            lib.canary = not CANARY_SYMBOLS.isdisjoint(imports)
            lib.fortify = any(_FORTIFY.match(s) for s in imports)
        if elf.errors:
            lib.error = elf.errors[0]
    except ElfError as exc:
        lib.error = str(exc)
    except (struct.error, ValueError, IndexError, OverflowError, MemoryError) as exc:  # defensive
        lib.error = f"malformed ELF ({type(exc).__name__}: {exc})"
    return lib


UNSAFE_FUNCTIONS = frozenset(
    b"strcpy strcat sprintf vsprintf gets stpcpy wcscpy wcscat strncpy_unsafe scanf sscanf fscanf".split()
)
MAX_STRING_SCAN = 8 * 1024 * 1024  # bytes of one library searched for marker strings
# printable strings that reveal what native code checks: anti-instrumentation and root probes
_MARKERS = (
    b"frida",
    b"gum-js-loop",
    b"gmain",
    b"xposed",
    b"/proc/self/maps",
    b"/proc/self/status",
    b"tracerpid",
    b"/system/bin/su",
    b"/system/xbin/su",
    b"/sbin/su",
    b"magisk",
)
_PRINTABLE = frozenset(range(0x20, 0x7F))
MAX_MARKER_HITS = 200


def marker_strings(data: bytes) -> list[dict[str, str]]:
    """Notable printable strings of a library (bounded): kind ``anti_instrumentation`` (Frida,
    Xposed, /proc/self/maps, TracerPid) or ``root_check`` (su paths, Magisk).

    Keywords are found with ``bytes.find`` on a lower-cased copy and each hit is widened to its
    printable string: linear in the library size (regular expressions were 100x slower here).
    """
    limit = min(len(data), MAX_STRING_SCAN)
    low = data[:limit].lower()
    hits: list[int] = []
    for kw in _MARKERS:
        pos = low.find(kw)
        while pos != -1 and len(hits) < MAX_MARKER_HITS:
            hits.append(pos)
            pos = low.find(kw, pos + len(kw))
    out: dict[str, str] = {}
    for hit in sorted(hits):
        start = end = hit
        while start > 0 and hit - start < 200 and data[start - 1] in _PRINTABLE:
            start -= 1
        while end < limit and end - hit < 200 and data[end] in _PRINTABLE:
            end += 1
        s = data[start:end].decode("ascii", "replace").strip()
        if not s or len(s) > 200:
            continue
        lowered = s.lower()
        kind = "root_check" if ("/su" in lowered or "magisk" in lowered) else "anti_instrumentation"
        out.setdefault(s, kind)
        if len(out) >= 50:
            break
    return [{"kind": k, "value": v} for v, k in sorted(out.items())]


def native_facts(container) -> NativeFacts:
    """Analyse every ``lib/<abi>/*.so`` of a :class:`~medrisk.analysis.container.Container`."""
    libs: list[NativeLibrary] = []
    for name in sorted(container.names()):
        m = _LIB_PATH.match(name)
        if not m:
            continue
        try:
            data = container.read(name)
        except AnalysisError as exc:
            libs.append(NativeLibrary(path=name, abi=m.group(1), error=f"{exc.code}: {exc.message}"))
            continue
        lib = analyse_elf(data, name, m.group(1))
        if lib.error is None:
            lib.strings = marker_strings(data)
        libs.append(lib)
    return NativeFacts(libs)
