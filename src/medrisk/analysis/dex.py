"""A lean, pure-Python reader for Dalvik executables (``classes*.dex``).

Design goals: parse *nothing* eagerly beyond the header and the fixed-size id tables
(which are wrapped as ``array`` views, no per-item Python objects), decode strings on
demand, and give the code analyser (``code.py``) the primitives it needs to find call
sites by scanning bytes instead of disassembling every method.

Every offset and size read from the file is bounds-checked; anything out of range raises
``AnalysisError("corrupt_dex", "<file>: <section>: ...")``. Every loop is bounded by a size
taken from the file and checked against the bytes that remain, so hostile input cannot
make the reader hang or allocate without limit.

Format reference: the public "Dalvik Executable format" and "Dalvik bytecode" pages of the
Android Open Source Project documentation.
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from bisect import bisect_left
from functools import lru_cache
from typing import NamedTuple

from medrisk.analysis.errors import AnalysisError

__all__ = [
    "ACC_ABSTRACT",
    "ACC_INTERFACE",
    "ACC_STATIC",
    "ClassData",
    "ClassDef",
    "CodeItem",
    "DexFile",
    "NO_INDEX",
    "OPCODE_UNITS",
    "descriptor_to_java",
    "instruction_units",
    "java_to_descriptor",
    "line_at",
    "mutf8_decode",
]

NO_INDEX = 0xFFFFFFFF
ACC_STATIC = 0x0008
ACC_INTERFACE = 0x0200
ACC_ABSTRACT = 0x0400

HEADER_SIZE = 0x70
_MAGIC = re.compile(rb"dex\n0[0-9]{2}\x00")
_HEADER = struct.Struct("<I20s20I")  # checksum, signature, then 20 u32 fields from file_size
_CODE_HEADER = struct.Struct("<HHHHII")
_U32 = struct.Struct("<I")
_LITTLE = sys.byteorder == "little"

# map_list item types used to narrow byte scans to the right part of the file
TYPE_CODE_ITEM = 0x2001
TYPE_STRING_DATA_ITEM = 0x2002

_PRIMITIVES = {
    "V": "void",
    "Z": "boolean",
    "B": "byte",
    "S": "short",
    "C": "char",
    "I": "int",
    "J": "long",
    "F": "float",
    "D": "double",
}
_PRIMITIVE_DESCRIPTORS = {v: k for k, v in _PRIMITIVES.items()}


def _u32_array(data: bytes, off: int, count: int) -> array:
    arr = array("I")
    if arr.itemsize != 4:  # pragma: no cover - exotic platforms
        arr = array("L")
    arr.frombytes(data[off : off + 4 * count])
    if not _LITTLE:  # pragma: no cover
        arr.byteswap()
    return arr


def _u16_array(data: bytes, off: int, count: int) -> array:
    arr = array("H")
    arr.frombytes(data[off : off + 2 * count])
    if not _LITTLE:  # pragma: no cover
        arr.byteswap()
    return arr


def mutf8_decode(raw: bytes) -> str:
    """Decode Modified UTF-8 (Java/DEX flavour: U+0000 as C0 80, supplementary
    characters as surrogate pairs). Invalid input never raises: bad bytes become U+FFFD."""
    try:
        return raw.decode("utf-8")  # the common case: valid UTF-8 without C0 80 or surrogates
    except UnicodeDecodeError:
        pass
    try:
        text = raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
        # join surrogate pairs (CESU-8 style); lone surrogates become U+FFFD
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    except UnicodeError:
        return raw.decode("utf-8", "replace")


def descriptor_to_java(desc: str) -> str:
    """``Lcom/a/B;`` -> ``com.a.B``, ``[I`` -> ``int[]``, ``V`` -> ``void``."""
    dims = 0
    while dims < len(desc) and desc[dims] == "[":
        dims += 1
    base = desc[dims:]
    if base.startswith("L") and base.endswith(";"):
        name = base[1:-1].replace("/", ".")
    else:
        name = _PRIMITIVES.get(base, base)
    return name + "[]" * dims


def java_to_descriptor(name: str) -> str:
    """``com.a.B`` -> ``Lcom/a/B;`` (inverse of :func:`descriptor_to_java`)."""
    dims = 0
    while name.endswith("[]"):
        name = name[:-2]
        dims += 1
    base = _PRIMITIVE_DESCRIPTORS.get(name) or "L" + name.replace(".", "/") + ";"
    return "[" * dims + base


# --------------------------------------------------------------------------------------
# Instruction lengths (in 16-bit code units), indexed by opcode. Payload pseudo-instructions
# (opcode 0x00 with a non-zero high byte) are sized by instruction_units().
# --------------------------------------------------------------------------------------
def _build_units() -> tuple[int, ...]:
    u = [1] * 256
    two = (
        [0x02, 0x05, 0x08, 0x13, 0x15, 0x16, 0x19, 0x1A, 0x1C, 0x1F, 0x20, 0x22, 0x23, 0x29]
        + list(range(0x2D, 0x3E))  # cmpkind, if-test, if-testz
        + list(range(0x44, 0x52))  # arrayop
        + list(range(0x52, 0x60))  # iinstanceop
        + list(range(0x60, 0x6E))  # sstaticop
        + list(range(0x90, 0xB0))  # binop
        + list(range(0xD0, 0xE3))  # binop/lit16, binop/lit8
        + [0xFE, 0xFF]  # const-method-handle, const-method-type
    )
    three = (
        [0x03, 0x06, 0x09, 0x14, 0x17, 0x1B, 0x24, 0x25, 0x26, 0x2A, 0x2B, 0x2C]
        + list(range(0x6E, 0x73))  # invoke-kind
        + list(range(0x74, 0x79))  # invoke-kind/range
        + [0xFC, 0xFD]  # invoke-custom(/range)
    )
    for op in two:
        u[op] = 2
    for op in three:
        u[op] = 3
    u[0x18] = 5  # const-wide (51l)
    u[0xFA] = 4  # invoke-polymorphic
    u[0xFB] = 4  # invoke-polymorphic/range
    return tuple(u)


OPCODE_UNITS: tuple[int, ...] = _build_units()


def instruction_units(insns: bytes, pos: int, end: int) -> int:
    """Length in code units of the instruction at byte ``pos`` of ``insns``; handles the
    packed-switch, sparse-switch and fill-array-data payloads. ``end`` bounds the method."""
    op = insns[pos]
    if op == 0 and pos + 1 < end and insns[pos + 1] != 0:
        ident = insns[pos + 1]
        if pos + 8 > end:
            return 1
        if ident == 1:  # packed-switch-payload: ident, size, first_key(2), targets(size*2)
            size = insns[pos + 2] | insns[pos + 3] << 8
            return 4 + size * 2
        if ident == 2:  # sparse-switch-payload: ident, size, keys(size*2), targets(size*2)
            size = insns[pos + 2] | insns[pos + 3] << 8
            return 2 + size * 4
        if ident == 3:  # fill-array-data-payload: ident, width, size(2), data
            width = insns[pos + 2] | insns[pos + 3] << 8
            size = _U32.unpack_from(insns, pos + 4)[0]
            return 4 + (size * width + 1) // 2
        return 1
    return OPCODE_UNITS[op]


class ClassDef(NamedTuple):
    index: int  # position in class_defs
    type_idx: int
    descriptor: str  # Lcom/a/B;
    access: int
    superclass: str | None  # descriptor, None for java.lang.Object (or bad index)
    interfaces: tuple[str, ...]
    source_file: str | None
    class_data_off: int
    static_values_off: int


class ClassData(NamedTuple):
    static_fields: list[tuple[int, int]]  # (field_idx, access)
    instance_fields: list[tuple[int, int]]
    direct_methods: list[tuple[int, int, int]]  # (method_idx, access, code_off)
    virtual_methods: list[tuple[int, int, int]]


class CodeItem(NamedTuple):
    offset: int
    registers: int
    ins: int
    outs: int
    tries: int
    debug_info_off: int
    insns_off: int  # absolute byte offset of the first code unit
    insns_size: int  # in 16-bit code units


class DexFile:
    """A parsed DEX file. Construction validates the header and every id-table range;
    items are decoded lazily. Indices passed to accessor methods are checked too."""

    def __init__(self, data: bytes, name: str = "classes.dex") -> None:
        if not isinstance(data, bytes):
            data = bytes(data)
        self.data = data
        self.name = name
        size = len(data)
        if size < HEADER_SIZE:
            self._corrupt("header", f"file is {size} bytes, shorter than the 112-byte header")
        if not _MAGIC.fullmatch(data[:8]):
            self._corrupt("header", f"bad magic {data[:8]!r}")
        self.version = data[4:7].decode("ascii")
        fields = _HEADER.unpack_from(data, 8)
        self.checksum = fields[0]
        self.signature = fields[1]
        (
            file_size,
            header_size,
            endian_tag,
            link_size,
            link_off,
            map_off,
            self.string_ids_size,
            string_ids_off,
            self.type_ids_size,
            type_ids_off,
            self.proto_ids_size,
            proto_ids_off,
            self.field_ids_size,
            field_ids_off,
            self.method_ids_size,
            method_ids_off,
            self.class_defs_size,
            class_defs_off,
            data_size,
            data_off,
        ) = fields[2:]
        if endian_tag != 0x12345678:
            self._corrupt("header", f"unsupported endian_tag {endian_tag:#x}")
        if file_size > size:
            self._corrupt("header", f"file_size {file_size} exceeds the {size} bytes present")
        if header_size < HEADER_SIZE or header_size > size:
            self._corrupt("header", f"header_size {header_size} out of range")
        self.file_size = file_size
        self._limit = size
        self._check("string_ids", string_ids_off, self.string_ids_size, 4)
        self._check("type_ids", type_ids_off, self.type_ids_size, 4)
        self._check("proto_ids", proto_ids_off, self.proto_ids_size, 12)
        self._check("field_ids", field_ids_off, self.field_ids_size, 8)
        self._check("method_ids", method_ids_off, self.method_ids_size, 8)
        self._check("class_defs", class_defs_off, self.class_defs_size, 32)
        self._check("data", data_off, data_size, 1)
        self._check("link", link_off, link_size, 1)
        if self.type_ids_size > 0x10000:
            self._corrupt("type_ids", f"{self.type_ids_size} entries exceed the 65536 limit")
        if self.proto_ids_size > 0x10000:
            self._corrupt("proto_ids", f"{self.proto_ids_size} entries exceed the 65536 limit")
        self.data_off = data_off
        self.data_size = data_size

        self.string_offsets = _u32_array(data, string_ids_off, self.string_ids_size)
        self.type_string_idx = _u32_array(data, type_ids_off, self.type_ids_size)
        self._protos = _u32_array(data, proto_ids_off, 3 * self.proto_ids_size)
        f16 = _u16_array(data, field_ids_off, 4 * self.field_ids_size)
        self.field_class_idx = f16[0::4]
        self.field_type_idx = f16[1::4]
        self.field_name_idx = _u32_array(data, field_ids_off, 2 * self.field_ids_size)[1::2]
        m16 = _u16_array(data, method_ids_off, 4 * self.method_ids_size)
        self.method_class_idx = m16[0::4]
        self.method_proto_idx = m16[1::4]
        self.method_name_idx = _u32_array(data, method_ids_off, 2 * self.method_ids_size)[1::2]
        self._class_defs = _u32_array(data, class_defs_off, 8 * self.class_defs_size)

        self._strings: list[str | None] = [None] * self.string_ids_size
        self._classes: list[ClassDef] | None = None
        self._types: list[str] | None = None
        self._starts: list[int] | None = None
        self._bodies: dict[int, list[tuple[int, int]]] = {}
        self._type_table: dict[str, int] | None = None
        self._code_index: list[int] | None = None
        self.map = self._read_map(map_off)

    # ---------------------------------------------------------------- errors & checks
    def _corrupt(self, section: str, detail: str):
        raise AnalysisError("corrupt_dex", f"{self.name}: {section}: {detail}")

    def _check(self, section: str, off: int, count: int, item: int) -> None:
        if count and (off < HEADER_SIZE or off + count * item > self._limit):
            self._corrupt(section, f"{count} items of {item} bytes at offset {off:#x} exceed the file ({self._limit})")

    def _read_map(self, map_off: int) -> dict[int, tuple[int, int, int]]:
        """map_list as {type: (offset, count, end)}; ``end`` is where the next section
        starts (the map only records starts). Empty when absent (tolerated)."""
        if map_off == 0:
            return {}
        if map_off + 4 > self._limit or map_off % 4:
            self._corrupt("map_list", f"offset {map_off:#x} out of range")
        count = _U32.unpack_from(self.data, map_off)[0]
        if map_off + 4 + count * 12 > self._limit:
            self._corrupt("map_list", f"{count} entries at {map_off:#x} exceed the file")
        raw = struct.iter_unpack("<HHII", self.data[map_off + 4 : map_off + 4 + 12 * count])
        items = sorted((off, typ, cnt) for typ, _unused, cnt, off in raw)
        result: dict[int, tuple[int, int, int]] = {}
        for i, (off, typ, cnt) in enumerate(items):
            if off > self._limit:
                self._corrupt("map_list", f"section type {typ:#x} at {off:#x} beyond the file")
            end = items[i + 1][0] if i + 1 < len(items) else self._limit
            result[typ] = (off, cnt, max(off, min(end, self._limit)))
        return result

    def section_range(self, map_type: int) -> tuple[int, int]:
        """[start, end) of a data section from the map, or the whole data area."""
        entry = self.map.get(map_type)
        if entry is not None:
            return entry[0], entry[2]
        return self.data_off, min(self.data_off + self.data_size, self._limit)

    # ---------------------------------------------------------------- strings
    def _string_span(self, idx: int) -> tuple[int, int]:
        """Byte range [start, end) of string ``idx``'s MUTF-8 bytes (without the NUL)."""
        if not 0 <= idx < self.string_ids_size:
            self._corrupt("string_ids", f"string index {idx} out of range")
        data = self.data
        pos = self.string_offsets[idx]
        limit = self._limit
        # skip the uleb128 utf16_size (at most 5 bytes)
        for _ in range(5):
            if pos >= limit:
                self._corrupt("string_data", f"string {idx} starts beyond the file")
            b = data[pos]
            pos += 1
            if b < 0x80:
                break
        end = data.find(b"\x00", pos, limit)
        if end < 0:
            self._corrupt("string_data", f"string {idx} is not NUL-terminated")
        return pos, end

    def string(self, idx: int) -> str:
        s = self._strings[idx] if 0 <= idx < self.string_ids_size else None
        if s is None:
            start, end = self._string_span(idx)
            s = mutf8_decode(self.data[start:end])
            self._strings[idx] = s
        return s

    def string_bytes(self, idx: int) -> bytes:
        start, end = self._string_span(idx)
        return self.data[start:end]

    def strings(self) -> list[str]:
        """Every string (decoded and cached)."""
        return [self.string(i) for i in range(self.string_ids_size)]

    def find_string(self, text: str) -> int | None:
        """Index of ``text`` in the (sorted) string pool by binary search, or None.
        Compares MUTF-8 bytes, which orders like the pool for the ASCII names we look up."""
        key = text.encode("utf-8") + b"\x00"
        klen = len(key)
        data = self.data
        offs = self.string_offsets
        limit = self._limit
        lo, hi = 0, self.string_ids_size
        while lo < hi:  # halves every round
            mid = (lo + hi) >> 1
            p = offs[mid]
            if p >= limit:
                self._corrupt("string_ids", f"string {mid} starts beyond the file")
            while data[p] & 0x80 and p < limit - 1:  # skip the uleb128 length
                p += 1
            cur = data[p + 1 : p + 1 + klen]
            if cur == key:
                return mid
            if cur < key:
                lo = mid + 1
            else:
                hi = mid
        return None

    # ---------------------------------------------------------------- types, protos, refs
    def type_descriptors(self) -> list[str]:
        """Every type descriptor (decoded once, cached); ``type_table`` maps them back."""
        if self._types is None:
            self._types = self.descriptors(range(self.type_ids_size))
        return self._types

    def type_table(self) -> dict[str, int]:
        if self._type_table is None:
            descs = self.type_descriptors()
            self._type_table = dict(zip(descs, range(len(descs))))
        return self._type_table

    def type_descriptor(self, idx: int) -> str:
        if not 0 <= idx < self.type_ids_size:
            self._corrupt("type_ids", f"type index {idx} out of range")
        return self.string(self.type_string_idx[idx])

    def type_name(self, idx: int) -> str:
        return descriptor_to_java(self.type_descriptor(idx))

    def find_type(self, descriptor: str) -> int | None:
        if self._type_table is not None:
            return self._type_table.get(descriptor)
        sidx = self.find_string(descriptor)
        if sidx is None:
            return None
        pos = bisect_left(self.type_string_idx, sidx)
        if pos < self.type_ids_size and self.type_string_idx[pos] == sidx:
            return pos
        # type_ids should be sorted by string index; tolerate files that are not
        try:
            return self.type_string_idx.index(sidx)
        except ValueError:
            return None

    def type_list(self, off: int) -> list[int]:
        """Type indices of a type_list (interfaces, parameters); [] for offset 0."""
        if off == 0:
            return []
        if off % 4 or off + 4 > self._limit:
            self._corrupt("type_list", f"offset {off:#x} out of range")
        count = _U32.unpack_from(self.data, off)[0]
        if off + 4 + 2 * count > self._limit:
            self._corrupt("type_list", f"{count} entries at {off:#x} exceed the file")
        return list(_u16_array(self.data, off + 4, count))

    def proto(self, idx: int) -> tuple[str, list[str]]:
        """(return descriptor, [parameter descriptors])."""
        if not 0 <= idx < self.proto_ids_size:
            self._corrupt("proto_ids", f"proto index {idx} out of range")
        ret = self.type_descriptor(self._protos[3 * idx + 1])
        params = [self.type_descriptor(t) for t in self.type_list(self._protos[3 * idx + 2])]
        return ret, params

    def proto_descriptor(self, idx: int) -> str:
        ret, params = self.proto(idx)
        return "(" + "".join(params) + ")" + ret

    def method_ref(self, idx: int) -> tuple[str, str, str]:
        """(class descriptor, name, proto descriptor) of method_ids[idx]."""
        if not 0 <= idx < self.method_ids_size:
            self._corrupt("method_ids", f"method index {idx} out of range")
        return (
            self.type_descriptor(self.method_class_idx[idx]),
            self.string(self.method_name_idx[idx]),
            self.proto_descriptor(self.method_proto_idx[idx]),
        )

    def method_java(self, idx: int) -> tuple[str, str, str]:
        """(Java class name, method name, descriptor) e.g. ``('javax.crypto.Cipher',
        'getInstance', '(Ljava/lang/String;)Ljavax/crypto/Cipher;')``."""
        cls, name, desc = self.method_ref(idx)
        return descriptor_to_java(cls), name, desc

    def field_ref(self, idx: int) -> tuple[str, str, str]:
        """(class descriptor, name, type descriptor) of field_ids[idx]."""
        if not 0 <= idx < self.field_ids_size:
            self._corrupt("field_ids", f"field index {idx} out of range")
        return (
            self.type_descriptor(self.field_class_idx[idx]),
            self.string(self.field_name_idx[idx]),
            self.type_descriptor(self.field_type_idx[idx]),
        )

    def method_range(self, type_idx: int) -> tuple[int, int]:
        """[lo, hi) of method_ids whose class is ``type_idx`` (method_ids are sorted by class)."""
        arr = self.method_class_idx
        lo = bisect_left(arr, type_idx)
        hi = bisect_left(arr, type_idx + 1, lo)
        return lo, hi

    def field_range(self, type_idx: int) -> tuple[int, int]:
        arr = self.field_class_idx
        lo = bisect_left(arr, type_idx)
        hi = bisect_left(arr, type_idx + 1, lo)
        return lo, hi

    # ---------------------------------------------------------------- classes
    def class_def(self, i: int) -> ClassDef:
        if not 0 <= i < self.class_defs_size:
            self._corrupt("class_defs", f"class index {i} out of range")
        c = self._class_defs
        b = 8 * i
        type_idx, access, super_idx, ifaces_off, src_idx, _annotations, data_off, static_off = c[b : b + 8]
        superclass = self.type_descriptor(super_idx) if super_idx != NO_INDEX else None
        interfaces = tuple(self.type_descriptor(t) for t in self.type_list(ifaces_off))
        source = self.string(src_idx) if src_idx != NO_INDEX else None
        if data_off and data_off >= self._limit:
            self._corrupt("class_data", f"class {i} class_data_off {data_off:#x} beyond the file")
        return ClassDef(
            i,
            type_idx,
            self.type_descriptor(type_idx),
            access,
            superclass,
            interfaces,
            source,
            data_off,
            static_off,
        )

    def classes(self) -> list[ClassDef]:
        if self._classes is None:
            self._classes = [self.class_def(i) for i in range(self.class_defs_size)]
        return self._classes

    def class_type_indices(self) -> array:
        return self._class_defs[0::8]

    def superclass_indices(self) -> array:
        return self._class_defs[2::8]

    def interfaces_offsets(self) -> array:
        return self._class_defs[3::8]

    def class_data_offsets(self) -> array:
        return self._class_defs[6::8]

    def class_data(self, off: int) -> ClassData:
        """Decode a class_data_item (fields and methods with absolute indices)."""
        if off == 0:
            return ClassData([], [], [], [])
        data = self.data
        limit = self._limit
        if off >= limit:
            self._corrupt("class_data", f"offset {off:#x} beyond the file")
        try:
            vals = []
            pos = off
            for _k in range(4):
                v, pos = _uleb(data, pos)
                vals.append(v)
            sf, inf, dm, vm = vals
            # each entry takes at least 2 (field) or 3 (method) bytes: reject impossible counts
            if 2 * (sf + inf) + 3 * (dm + vm) > limit - pos:
                self._corrupt("class_data", f"item at {off:#x} declares more members than the file holds")
            out: list[list] = [[], [], [], []]
            for k, count in enumerate(vals):
                idx = 0
                lst = out[k]
                append = lst.append
                for _ in range(count):
                    b = data[pos]
                    if b < 0x80:
                        idx += b
                        pos += 1
                    else:
                        v, pos = _uleb(data, pos)
                        idx += v
                    b = data[pos]
                    if b < 0x80:
                        access = b
                        pos += 1
                    else:
                        access, pos = _uleb(data, pos)
                    if k < 2:
                        append((idx, access))
                        continue
                    b = data[pos]
                    if b < 0x80:
                        append((idx, access, b))
                        pos += 1
                        continue
                    b1 = data[pos + 1]
                    if b1 < 0x80:
                        append((idx, access, (b & 0x7F) | b1 << 7))
                        pos += 2
                        continue
                    b2 = data[pos + 2]
                    if b2 < 0x80:
                        append((idx, access, (b & 0x7F) | (b1 & 0x7F) << 7 | b2 << 14))
                        pos += 3
                        continue
                    code_off, pos = _uleb(data, pos)
                    append((idx, access, code_off))
        except IndexError:
            self._corrupt("class_data", f"item at {off:#x} runs past the end of the file")
        except _Overlong:
            self._corrupt("class_data", f"item at {off:#x} has a malformed uleb128")
        return ClassData(*out)

    def code_item(self, off: int) -> CodeItem:
        if off % 4 or off + 16 > self._limit or off < HEADER_SIZE:
            self._corrupt("code_item", f"offset {off:#x} out of range")
        regs, ins, outs, tries, debug_off, units = _CODE_HEADER.unpack_from(self.data, off)
        if off + 16 + 2 * units > self._limit:
            self._corrupt("code_item", f"insns of the item at {off:#x} run past the end of the file")
        return CodeItem(off, regs, ins, outs, tries, debug_off, off + 16, units)

    def instructions(self, code_off: int) -> list[tuple[int, int, int]]:
        """(pc, opcode, length in code units) of every instruction of a code item, in order.
        Payload pseudo-instructions are reported with opcode 0x100 (packed-switch), 0x200
        (sparse-switch) or 0x300 (fill-array-data). Used by tests and tools; the analyser
        decodes only the methods it needs, inline."""
        item = self.code_item(code_off)
        data = self.data
        start = item.insns_off
        end = start + 2 * item.insns_size
        out = []
        pos = start
        while pos < end:  # every step advances by at least one code unit
            units = instruction_units(data, pos, end)
            op = data[pos]
            if op == 0 and pos + 1 < end and data[pos + 1] in (1, 2, 3):
                op = data[pos + 1] << 8
            out.append(((pos - start) >> 1, op, units))
            pos += 2 * units
        return out

    # ---------------------------------------------------------------- bulk decoding
    def descriptors(self, type_idxs) -> list[str]:
        """Descriptors of many type ids at once (fast path of :meth:`type_descriptor`)."""
        tsi = self.type_string_idx
        ntypes = self.type_ids_size
        nstrings = self.string_ids_size
        cache = self._strings
        offs = self.string_offsets
        data = self.data
        find = data.find
        limit = self._limit
        out = []
        append = out.append
        for t in type_idxs:
            if t >= ntypes:
                self._corrupt("type_ids", f"type index {t} out of range")
            sidx = tsi[t]
            if sidx >= nstrings:
                self._corrupt("string_ids", f"string index {sidx} out of range")
            s = cache[sidx]
            if s is None:
                p = offs[sidx]
                if p < limit and data[p] < 0x80:
                    end = find(b"\x00", p + 1, limit)
                    if end < 0:
                        self._corrupt("string_data", f"string {sidx} is not NUL-terminated")
                    raw = data[p + 1 : end]
                    try:
                        s = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        s = mutf8_decode(raw)
                    cache[sidx] = s
                else:
                    s = self.string(sidx)
            append(s)
        return out

    # ---------------------------------------------------------------- code index
    def code_index(self) -> list[int]:
        """Every method body of the file, sorted by position, packed as
        ``code_off << 40 | class_def_index << 20 | method_idx`` (ints sort and bisect much
        faster than tuples; :meth:`method_at` unpacks). One pass over every
        class_data_item, with uleb128 decoding inlined: this loop runs once per method."""
        if self._code_index is not None:
            return self._code_index
        if self.class_defs_size >= 1 << 20 or self.method_ids_size >= 1 << 20:
            self._corrupt("class_defs", "more than 2**20 classes or methods")
        data = self.data
        limit = self._limit
        offsets = self._class_defs[6::8]
        entries: list[int] = []
        append = entries.append
        ci = 0
        try:
            for ci in range(self.class_defs_size):
                pos = offsets[ci]
                if not pos:
                    continue
                if pos >= limit:
                    raise IndexError
                sizes = []
                for _k in range(4):
                    b = data[pos]
                    if b < 0x80:
                        sizes.append(b)
                        pos += 1
                    else:
                        v, pos = _uleb(data, pos)
                        sizes.append(v)
                nf = 2 * (sizes[0] + sizes[1])
                if nf + 3 * (sizes[2] + sizes[3]) > limit - pos:
                    self._corrupt("class_data", f"class {ci} declares more members than the file holds")
                if nf:  # skip encoded_fields (2 uleb128 each) in one regex match
                    m = _skip_ulebs(nf).match(data, pos)
                    if m is None:
                        raise IndexError
                    pos = m.end()
                base = ci << 20
                for count in (sizes[2], sizes[3]):
                    midx = base
                    for _ in range(count):
                        b = data[pos]
                        if b < 0x80:
                            midx += b
                            pos += 1
                        else:
                            v, pos = _uleb(data, pos)
                            midx += v
                        # access_flags: not needed here, skip the uleb128
                        if data[pos] < 0x80:
                            pos += 1
                        elif data[pos + 1] < 0x80:
                            pos += 2
                        elif data[pos + 2] < 0x80:
                            pos += 3
                        else:
                            _v, pos = _uleb(data, pos)
                        b = data[pos]
                        if b < 0x80:
                            pos += 1
                            if b:
                                append(b << 40 | midx)
                            continue
                        b1 = data[pos + 1]
                        if b1 < 0x80:
                            append(((b & 0x7F) | b1 << 7) << 40 | midx)
                            pos += 2
                            continue
                        b2 = data[pos + 2]
                        if b2 < 0x80:
                            append(((b & 0x7F) | (b1 & 0x7F) << 7 | b2 << 14) << 40 | midx)
                            pos += 3
                            continue
                        b3 = data[pos + 3]
                        if b3 < 0x80:
                            append(((b & 0x7F) | (b1 & 0x7F) << 7 | (b2 & 0x7F) << 14 | b3 << 21) << 40 | midx)
                            pos += 4
                        else:
                            code_off, pos = _uleb(data, pos)
                            append(code_off << 40 | midx)
                    if midx - base >= 1 << 20:
                        self._corrupt("class_data", f"class {ci}: method index out of range")
        except IndexError:
            self._corrupt("class_data", f"class {ci}: class_data runs past the end of the file")
        except _Overlong:
            self._corrupt("class_data", f"class {ci}: malformed uleb128")
        entries.sort()
        self._code_index = entries
        return entries

    def _class_starts(self) -> list[int]:
        """Classes with code, sorted by the code_off of their first method body, packed as
        ``code_off << 20 | class_def index``. Only the start of each class_data_item is read."""
        if self._starts is not None:
            return self._starts
        if self.class_defs_size >= 1 << 20:
            self._corrupt("class_defs", "more than 2**20 classes")
        data = self.data
        limit = self._limit
        offsets = self._class_defs[6::8]
        out: list[int] = []
        ci = 0
        try:
            for ci in range(self.class_defs_size):
                pos = offsets[ci]
                if not pos:
                    continue
                if pos >= limit:
                    raise IndexError
                sizes = []
                for _k in range(4):
                    b = data[pos]
                    if b < 0x80:
                        sizes.append(b)
                        pos += 1
                    else:
                        v, pos = _uleb(data, pos)
                        sizes.append(v)
                nf = 2 * (sizes[0] + sizes[1])
                if nf + 3 * (sizes[2] + sizes[3]) > limit - pos:
                    self._corrupt("class_data", f"class {ci} declares more members than the file holds")
                if nf:  # skip encoded_fields (2 uleb128 each) in one regex match
                    m = _skip_ulebs(nf).match(data, pos)
                    if m is None:
                        raise IndexError
                    pos = m.end()
                for _ in range(sizes[2] + sizes[3]):  # the first method body is the anchor
                    for _k in range(2):  # method_idx_diff, access_flags
                        while data[pos] & 0x80:
                            pos += 1
                        pos += 1
                    b = data[pos]
                    if b < 0x80:
                        pos += 1
                        if b:
                            out.append(b << 20 | ci)
                            break
                        continue
                    b1 = data[pos + 1]
                    if b1 < 0x80:
                        code_off = (b & 0x7F) | b1 << 7
                    else:
                        b2 = data[pos + 2]
                        if b2 < 0x80:
                            code_off = (b & 0x7F) | (b1 & 0x7F) << 7 | b2 << 14
                        else:
                            b3 = data[pos + 3]
                            if b3 < 0x80:
                                code_off = (b & 0x7F) | (b1 & 0x7F) << 7 | (b2 & 0x7F) << 14 | b3 << 21
                            else:
                                code_off, pos = _uleb(data, pos)
                    out.append(code_off << 20 | ci)
                    break
        except IndexError:
            self._corrupt("class_data", f"class {ci}: class_data runs past the end of the file")
        except _Overlong:
            self._corrupt("class_data", f"class {ci}: malformed uleb128")
        out.sort()
        self._starts = out
        return out

    def _class_bodies(self, ci: int) -> list[tuple[int, int, int]]:
        """(code_off, insns_end, method_idx) of the method bodies of class ``ci``, sorted."""
        bodies = self._bodies.get(ci)
        if bodies is None:
            cd = self.class_data(self._class_defs[8 * ci + 6])
            bodies = sorted(
                (off, self._body_end(off), m) for m, _a, off in cd.direct_methods + cd.virtual_methods if off
            )
            self._bodies[ci] = bodies
        return bodies

    def _item_end(self, code_off: int) -> int:
        """End of the whole code_item (insns, padding, tries and handlers)."""
        data = self.data
        end = self._body_end(code_off)
        tries = data[code_off + 6] | data[code_off + 7] << 8
        if not tries:
            return end
        if (end - code_off - 16) & 2:
            end += 2
        pos = end + 8 * tries
        try:
            count, pos = _uleb(data, pos)
            for _ in range(min(count, self._limit - pos)):
                size, pos = _sleb(data, pos)
                for _k in range(min(abs(size), self._limit - pos)):
                    _t, pos = _uleb(data, pos)
                    _a, pos = _uleb(data, pos)
                if size <= 0:
                    _a, pos = _uleb(data, pos)
        except (IndexError, _Overlong):
            return self._limit
        return pos

    def _body_end(self, code_off: int) -> int:
        if code_off + 16 > self._limit:
            self._corrupt("code_item", f"offset {code_off:#x} out of range")
        end = code_off + 16 + 2 * _U32.unpack_from(self.data, code_off + 12)[0]
        if end > self._limit:
            self._corrupt("code_item", f"insns of the item at {code_off:#x} run past the end of the file")
        return end

    def method_at(self, offset: int) -> tuple[int, int, tuple[int, int]] | None:
        """The method body containing byte ``offset``: (code_off, insns_end, (class_def
        index, method_idx)) or None.

        Fast path: the class whose first body starts last before ``offset`` is parsed and its
        bodies checked (compilers lay out each class's code together); if the offset is not
        in one of them, the full index of every body (:meth:`code_index`) decides."""
        if self._code_index is None:
            # Each class's bodies are laid out together, but its first-listed method is not
            # always its lowest body: try the classes anchored just before and just after.
            starts = self._class_starts()
            i = bisect_left(starts, (offset - 15) << 20)
            for k in (i - 1, i):
                if not 0 <= k < len(starts):
                    continue
                ci = starts[k] & 0xFFFFF
                bodies = self._class_bodies(ci)
                j = bisect_left(bodies, (offset - 15,)) - 1
                if j < 0:
                    continue
                code_off, end, midx = bodies[j]
                if code_off + 16 <= offset < end:
                    return code_off, end, (ci, midx)
                # not instructions: the try/handler tables after the insns, the padding and
                # the header of the next code item (scan hits there are false positives)
                if code_off + 16 <= offset < ((self._item_end(code_off) + 3) & ~3) + 16:
                    return None
        entries = self.code_index()
        i = bisect_left(entries, (offset - 15) << 40) - 1  # insns start 16 bytes after code_off
        if i < 0:
            return None
        key = entries[i]
        code_off = key >> 40
        end = self._body_end(code_off)
        if code_off + 16 <= offset < end:
            return code_off, end, ((key >> 20) & 0xFFFFF, key & 0xFFFFF)
        return None

    # ---------------------------------------------------------------- debug info
    def positions(self, debug_info_off: int, until: int = 1 << 32) -> list[tuple[int, int]]:
        """(address, line) position entries of a debug_info_item, in address order, up to
        the first entry past code unit ``until``; [] when absent or malformed (line numbers
        are best effort)."""
        if not debug_info_off or debug_info_off >= self._limit:
            return []
        data = self.data
        limit = self._limit
        pos = debug_info_off
        out: list[tuple[int, int]] = []
        try:
            line, pos = _uleb(data, pos)
            nparams, pos = _uleb(data, pos)
            if nparams > limit - pos:
                return []
            for _ in range(nparams):
                _v, pos = _uleb(data, pos)
            address = 0
            for _ in range(limit - pos):  # every opcode consumes at least one byte
                op = data[pos]
                pos += 1
                if op == 0x00:  # DBG_END_SEQUENCE
                    break
                if op == 0x01:  # DBG_ADVANCE_PC
                    v, pos = _uleb(data, pos)
                    address += v
                elif op == 0x02:  # DBG_ADVANCE_LINE
                    v, pos = _sleb(data, pos)
                    line += v
                elif op == 0x03:  # DBG_START_LOCAL: register, name, type
                    for _k in range(3):
                        _v, pos = _uleb(data, pos)
                elif op == 0x04:  # DBG_START_LOCAL_EXTENDED: + signature
                    for _k in range(4):
                        _v, pos = _uleb(data, pos)
                elif op in (0x05, 0x06, 0x09):  # END_LOCAL, RESTART_LOCAL, SET_FILE
                    _v, pos = _uleb(data, pos)
                elif op in (0x07, 0x08):  # SET_PROLOGUE_END, SET_EPILOGUE_BEGIN
                    pass
                else:  # special opcode: advance address and line, emit a position entry
                    adj = op - 0x0A
                    line += -4 + adj % 15
                    address += adj // 15
                    out.append((address, line))
                    if address > until:
                        break
        except (IndexError, _Overlong):
            return out
        return out


class _Overlong(Exception):
    pass


@lru_cache(maxsize=256)
def _skip_ulebs(count: int) -> re.Pattern[bytes]:
    """Regex matching ``count`` consecutive uleb128 values (each at most 5 bytes)."""
    return re.compile(rb"(?:[\x80-\xff]{0,4}[\x00-\x7f]){%d}" % count)


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 at ``pos`` (at most 5 bytes); IndexError past the end."""
    result = 0
    for shift in (0, 7, 14, 21, 28):
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
    raise _Overlong


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    for shift in (0, 7, 14, 21, 28):
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            if b & 0x40:
                result -= 1 << (shift + 7)
            return result, pos
    raise _Overlong


def line_at(positions: list[tuple[int, int]], pc: int) -> int | None:
    """Line of code unit ``pc`` given :meth:`DexFile.positions` output."""
    line = None
    for address, ln in positions:
        if address > pc:
            break
        line = ln
    return line
