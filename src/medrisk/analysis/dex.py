"""A lean, pure-Python reader for Dalvik executables (``classes*.dex``).

Design goals: parse *nothing* eagerly beyond the header and the fixed-size id tables
(which are wrapped as ``array`` views, no per-item Python objects), decode strings on
demand, and give the code analyser (``code.py``) the primitives it needs to find call
sites by scanning bytes instead of disassembling every method.

Every offset and size read from the file is bounds-checked; anything out of range raises
``AnalysisError("corrupt_dex", "<file>: <section>: ...")``. Every loop is bounded by a size
taken from the file and checked against the bytes that remain, so hostile input cannot
make the reader hang or allocate without limit.

This module holds ``DexFile`` itself (header, map, strings, types, protos, method and
field refs, class_defs); its code-item side (class_data, code items, instructions, the
method-body index, debug info) is the ``_DexCode`` mixin in ``dexcode.py``, and the format
primitives (constants, MUTF-8, descriptors, instruction lengths, LEB128) are in
``dexformat.py``. The public names of both are re-exported here.

Format reference: the public "Dalvik Executable format" and "Dalvik bytecode" pages of the
Android Open Source Project documentation.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left

from medrisk.analysis.dexcode import _DexCode
from medrisk.analysis.dexformat import (
    _HEADER,
    _MAGIC,
    _U32,
    ACC_ABSTRACT,
    ACC_INTERFACE,
    ACC_STATIC,
    HEADER_SIZE,
    NO_INDEX,
    OPCODE_UNITS,
    ClassData,
    ClassDef,
    CodeItem,
    _u16_array,
    _u32_array,
    descriptor_to_java,
    instruction_units,
    java_to_descriptor,
    line_at,
    mutf8_decode,
)
from medrisk.analysis.dexformat import TYPE_CODE_ITEM as TYPE_CODE_ITEM  # re-exported
from medrisk.analysis.dexformat import TYPE_STRING_DATA_ITEM as TYPE_STRING_DATA_ITEM  # re-exported
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


class DexFile(_DexCode):
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
