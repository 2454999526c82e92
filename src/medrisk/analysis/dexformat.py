"""DEX format primitives used by the reader (``dex.py``) and the code analyser.

Constants of the format (access flags, map item types, header layout), little-endian
``array`` views of id tables, Modified UTF-8 decoding, descriptor <-> Java name conversion,
instruction lengths per opcode (and payload pseudo-instructions), the item tuples returned
by ``DexFile``, LEB128 decoding and ``line_at`` over debug-info positions.

Format reference: the public "Dalvik Executable format" and "Dalvik bytecode" pages of the
Android Open Source Project documentation.
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from functools import lru_cache
from typing import NamedTuple

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


class _Overlong(Exception):
    pass


@lru_cache(maxsize=64)
def _uleb_run(count: int) -> re.Pattern[bytes]:
    """Regex matching ``count`` consecutive uleb128 values (each at most 5 bytes)."""
    return re.compile(rb"(?:[\x80-\xff]{0,4}[\x00-\x7f]){%d}" % count)


def skip_ulebs(data: bytes, pos: int, count: int) -> int | None:
    """Offset after ``count`` consecutive uleb128 values at ``pos``, or None if they are not
    there (truncated, or one longer than 5 bytes).

    One regex per power of two of ``count`` (a uleb128's extent is fixed by its bytes, so runs
    concatenate): a process compiles a handful of patterns instead of one per distinct count."""
    bit = 1
    while count:
        if count & bit:
            m = _uleb_run(bit).match(data, pos)
            if m is None:
                return None
            pos = m.end()
            count ^= bit
        bit <<= 1
    return pos


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
