"""``resources.arsc`` reader: resolve resource ids to values and names.

Layout: a table header, the global string pool (all string *values*), then one chunk
per package holding a type-name pool, a key-name pool, type specs and type chunks. A
type chunk holds the entries of one resource type for one configuration (locale,
density, SDK level...). Entries are dense (``u32`` offsets), ``offset16`` (``u16``
offsets / 4) or sparse (``(index, offset / 4)`` pairs); complex (bag) entries such
as styles are recognised and skipped.

:meth:`ResourceTable.resolve` returns the value from the *default* configuration when
there is one (else the first configuration that has the entry) and follows reference
chains up to a fixed depth. Everything is bounded by the data size; malformed chunks
are skipped, and only an unreadable table header raises ``AnalysisError('corrupt_arsc')``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from medrisk.analysis.axml import (
    RES_STRING_POOL_TYPE,
    RES_TABLE_TYPE,
    TYPE_DYNAMIC_REFERENCE,
    TYPE_REFERENCE,
    TYPE_STRING,
    Ref,
    StringPool,
    _coerce,
)
from medrisk.analysis.errors import AnalysisError

RES_TABLE_PACKAGE_TYPE = 0x0200
RES_TABLE_TYPE_TYPE = 0x0201
RES_TABLE_TYPE_SPEC_TYPE = 0x0202
RES_TABLE_LIBRARY_TYPE = 0x0203

FLAG_COMPLEX = 0x0001
FLAG_COMPACT = 0x0008
TYPE_FLAG_SPARSE = 0x01
TYPE_FLAG_OFFSET16 = 0x02
NO_ENTRY = 0xFFFFFFFF

MAX_REFERENCE_DEPTH = 16
MAX_CHUNKS = 1_000_000

_CHUNK = struct.Struct("<HHI")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")
_VALUE = struct.Struct("<HBBI")
_TYPE = struct.Struct("<BBHII")


class Bag:
    """Marker for a complex (map) entry such as a style or a plural."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<bag>"


BAG = Bag()


@dataclass(slots=True)
class EntryValue:
    """One entry of one configuration: ``value_type`` is ``None`` for a bag."""

    key: str | None
    value_type: int | None
    data: int


@dataclass(slots=True)
class _TypeChunk:
    type_id: int
    config: bytes
    is_default: bool
    flags: int
    entry_count: int
    offsets_at: int
    entries_at: int
    end: int
    sparse: dict[int, int] | None = None


@dataclass(slots=True)
class _Package:
    id: int
    name: str
    type_names: StringPool | None
    key_names: StringPool | None
    types: dict[int, list[_TypeChunk]]


def describe_config(config: bytes) -> str:
    """A short qualifier string for a ResTable_config (``default``, ``en-rUS``, ``v21``)."""
    if len(config) < 8 or not any(config[4:]):
        return "default"
    parts: list[str] = []
    mcc, mnc = struct.unpack_from("<HH", config, 4)
    if mcc:
        parts.append(f"mcc{mcc}")
    if mnc:
        parts.append(f"mnc{mnc}")
    if len(config) >= 12:
        lang, country = config[8:10], config[10:12]
        if lang[0]:
            if lang[0] & 0x80:  # packed 3-letter code
                parts.append("lang-packed")
            else:
                parts.append(lang.decode("latin-1").rstrip("\0"))
        if country[0]:
            parts.append("r" + country.decode("latin-1").rstrip("\0"))
    if len(config) >= 16:
        orientation, _touch, density = struct.unpack_from("<BBH", config, 12)
        if orientation in (1, 2, 3):
            parts.append(("port", "land", "square")[orientation - 1])
        if density:
            named = {120: "ldpi", 160: "mdpi", 213: "tvdpi", 240: "hdpi", 320: "xhdpi", 480: "xxhdpi"}
            named |= {640: "xxxhdpi", 0xFFFF: "nodpi", 0xFFFE: "anydpi"}
            parts.append(named.get(density, f"{density}dpi"))
    if len(config) >= 28:
        sdk = _U16.unpack_from(config, 24)[0]
        if len(config) >= 32 and config[29] & 0x30 == 0x20:
            parts.append("night")
        if sdk:
            parts.append(f"v{sdk}")
    return "-".join(parts) or "other"


class ResourceTable:
    """A parsed ``resources.arsc``."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, bytes | bytearray):
            data = bytes(data)
        self._data = data
        self.anomalies: list[str] = []
        self.packages: dict[int, _Package] = {}
        self.strings_pool: StringPool | None = None
        self._names: dict[tuple[str | None, str | None], int] | None = None
        n = len(data)
        if n < 12:
            raise AnalysisError("corrupt_arsc", f"resources.arsc too short ({n} bytes)")
        ttype, theader, tsize = _CHUNK.unpack_from(data, 0)
        if ttype != RES_TABLE_TYPE:
            raise AnalysisError("corrupt_arsc", f"not a resource table (chunk type 0x{ttype:04x})")
        end = tsize if 12 <= tsize <= n else n
        if end != tsize:
            self._note(f"table size field {tsize} != data size {n}")
        pos = theader if 12 <= theader < end else 12
        chunks = 0
        while pos + 8 <= end and chunks < MAX_CHUNKS:
            chunks += 1
            ctype, hsize, csize = _CHUNK.unpack_from(data, pos)
            if csize < 8 or pos + csize > end:
                self._note(f"bad chunk size {csize} at offset {pos}")
                break
            if ctype == RES_STRING_POOL_TYPE and self.strings_pool is None:
                try:
                    self.strings_pool = StringPool(data, pos, pos + csize)
                except AnalysisError:
                    self._note("unreadable global string pool")
            elif ctype == RES_TABLE_PACKAGE_TYPE:
                self._parse_package(pos, hsize, pos + csize)
            pos += csize
        if self.strings_pool is None and not self.packages:
            raise AnalysisError("corrupt_arsc", "no string pool and no package in resources.arsc")

    def _note(self, msg: str) -> None:
        if len(self.anomalies) < 50:
            self.anomalies.append(msg)

    def _parse_package(self, start: int, hsize: int, end: int) -> None:
        data = self._data
        if start + 268 + 16 > end:
            self._note(f"truncated package header at offset {start}")
            return
        pkg_id = _U32.unpack_from(data, start + 8)[0]
        name = bytes(data[start + 12 : start + 268]).decode("utf-16-le", "replace").split("\0", 1)[0]
        type_strings, _last_type, key_strings, _last_key = struct.unpack_from("<IIII", data, start + 268)
        type_id_offset = 0
        if hsize >= 288 and start + 288 <= end:
            type_id_offset = _U32.unpack_from(data, start + 284)[0]
            if type_id_offset > 255:
                type_id_offset = 0

        def pool_at(off: int) -> StringPool | None:
            if not off or start + off + 28 > end:
                return None
            at = start + off
            size = _U32.unpack_from(data, at + 4)[0]
            try:
                return StringPool(data, at, min(end, at + max(size, 28)))
            except AnalysisError:
                return None

        pkg = _Package(pkg_id & 0xFF, name, pool_at(type_strings), pool_at(key_strings), {})
        if pkg.id in self.packages:
            self._note(f"duplicate package id 0x{pkg.id:02x} ignored")
            return
        self.packages[pkg.id] = pkg
        pos = start + (hsize if 268 <= hsize <= end - start else 288)
        chunks = 0
        while pos + 8 <= end and chunks < MAX_CHUNKS:
            chunks += 1
            ctype, th, tsize = _CHUNK.unpack_from(data, pos)
            if tsize < 8 or pos + tsize > end:
                self._note(f"bad chunk size {tsize} in package at offset {pos}")
                break
            if ctype == RES_TABLE_TYPE_TYPE and th >= 20 and pos + th <= pos + tsize:
                tid, tflags, _res, count, entries_start = _TYPE.unpack_from(data, pos + 8)
                cfg_size = _U32.unpack_from(data, pos + 20)[0] if pos + 24 <= pos + th else 0
                cfg_end = min(pos + 20 + cfg_size, pos + th)
                config = bytes(data[pos + 20 : cfg_end])
                width = 2 if tflags & TYPE_FLAG_OFFSET16 and not tflags & TYPE_FLAG_SPARSE else 4
                count = min(count, max(0, (tsize - th) // width))
                chunk = _TypeChunk(
                    type_id=tid + type_id_offset,
                    config=config,
                    is_default=not any(config[4:]),
                    flags=tflags,
                    entry_count=count,
                    offsets_at=pos + th,
                    entries_at=pos + entries_start,
                    end=pos + tsize,
                )
                pkg.types.setdefault(chunk.type_id, []).append(chunk)
            pos += tsize
        for chunks_of_type in pkg.types.values():
            # default configuration first, the rest in file order (stable sort)
            chunks_of_type.sort(key=lambda c: not c.is_default)

    # -- entry access ---------------------------------------------------------

    def _offset(self, chunk: _TypeChunk, index: int) -> int | None:
        data = self._data
        if chunk.flags & TYPE_FLAG_SPARSE:
            if chunk.sparse is None:
                sparse: dict[int, int] = {}
                at = chunk.offsets_at
                for k in range(chunk.entry_count):
                    idx, off = struct.unpack_from("<HH", data, at + 4 * k)
                    sparse.setdefault(idx, off * 4)
                chunk.sparse = sparse
            return chunk.sparse.get(index)
        if index >= chunk.entry_count:
            return None
        if chunk.flags & TYPE_FLAG_OFFSET16:
            off = _U16.unpack_from(data, chunk.offsets_at + 2 * index)[0]
            return None if off == 0xFFFF else off * 4
        off = _U32.unpack_from(data, chunk.offsets_at + 4 * index)[0]
        return None if off == NO_ENTRY else off

    def _entry(self, chunk: _TypeChunk, index: int, keys: StringPool | None) -> EntryValue | None:
        off = self._offset(chunk, index)
        if off is None:
            return None
        at = chunk.entries_at + off
        if at < chunk.entries_at or at + 8 > chunk.end:
            return None
        data = self._data
        size, flags, key = _ENTRY.unpack_from(data, at)
        if flags & FLAG_COMPACT:
            return EntryValue(_key(keys, size), flags >> 8, key)
        if flags & FLAG_COMPLEX:
            return EntryValue(_key(keys, key), None, 0)
        vat = at + size
        if size < 8 or vat + 8 > chunk.end:
            return None
        _vsize, _res0, vtype, vdata = _VALUE.unpack_from(data, vat)
        return EntryValue(_key(keys, key), vtype, vdata)

    def _lookup(self, res_id: int) -> tuple[_Package, _TypeChunk, EntryValue] | None:
        pkg = self.packages.get((res_id >> 24) & 0xFF)
        if pkg is None:
            return None
        chunks = pkg.types.get((res_id >> 16) & 0xFF)
        if not chunks:
            return None
        index = res_id & 0xFFFF
        for chunk in chunks:
            entry = self._entry(chunk, index, pkg.key_names)
            if entry is not None:
                return pkg, chunk, entry
        return None

    # -- public API -------------------------------------------------------------

    def type_name(self, pkg: _Package, type_id: int) -> str | None:
        return pkg.type_names.get(type_id - 1) if pkg.type_names is not None else None

    def name(self, res_id: int) -> str | None:
        """``type/name`` of a resource id (e.g. ``xml/network_security_config``)."""
        found = self._lookup(res_id)
        if found is None:
            return None
        pkg, _chunk, entry = found
        tname = self.type_name(pkg, (res_id >> 16) & 0xFF)
        if tname is None or entry.key is None:
            return None
        return f"{tname}/{entry.key}"

    def value(self, res_id: int) -> EntryValue | None:
        """The raw entry (default configuration preferred), references not followed."""
        found = self._lookup(res_id)
        return None if found is None else found[2]

    def resolve(self, res_id: int, max_depth: int = MAX_REFERENCE_DEPTH) -> object:
        """The Python value of ``res_id``: ``str``/``int``/``bool``/``float``, ``BAG`` for a
        complex entry, ``None`` when missing or a reference loop; references followed."""
        seen: set[int] = set()
        for _ in range(max_depth):
            if res_id in seen:
                return None
            seen.add(res_id)
            entry = self.value(res_id)
            if entry is None:
                return None
            if entry.value_type is None:
                return BAG
            if entry.value_type in (TYPE_REFERENCE, TYPE_DYNAMIC_REFERENCE):
                res_id = entry.data
                continue
            return _coerce(entry.value_type, entry.data, self.strings_pool)
        return None

    def resolve_value(self, value: object) -> object:
        """Resolve ``value`` if it is a :class:`Ref` to a resource, else return it unchanged."""
        if isinstance(value, Ref) and not value.attr:
            return self.resolve(value.id)
        return value

    def find(self, type_name: str, name: str) -> int | None:
        """The resource id of ``type/name`` in any package, or ``None``."""
        if self._names is None:
            names: dict[tuple[str | None, str | None], int] = {}
            for res_id, tname, key, _chunk, _entry in self._iter_entries():
                names.setdefault((tname, key), res_id)
            self._names = names
        return self._names.get((type_name, name))

    def strings(self) -> list[str]:
        """All strings of the global value pool (every string value of every config)."""
        return list(self.strings_pool.strings()) if self.strings_pool is not None else []

    def named_strings(self) -> list[tuple[str, str]]:
        """``(name, value)`` of each ``string`` resource, default configuration preferred,
        sorted by name."""
        best: dict[int, tuple[str, str]] = {}
        pool = self.strings_pool
        for pkg in self.packages.values():
            for type_id, chunks in pkg.types.items():
                if self.type_name(pkg, type_id) != "string":
                    continue
                for chunk in chunks:  # default configuration first
                    for index in self._indexes(chunk):
                        res_id = (pkg.id << 24) | ((type_id & 0xFF) << 16) | index
                        if res_id in best:
                            continue
                        entry = self._entry(chunk, index, pkg.key_names)
                        if entry is None:
                            continue
                        text: object = None
                        if entry.value_type == TYPE_STRING and pool is not None:
                            text = pool.get(entry.data)
                        elif entry.value_type in (TYPE_REFERENCE, TYPE_DYNAMIC_REFERENCE):
                            text = self.resolve(entry.data)
                        if isinstance(text, str) and entry.key is not None:
                            best[res_id] = (entry.key, text)
                        # else: not a string here (e.g. a framework reference): keep looking
        return sorted(best.values())

    def _indexes(self, chunk: _TypeChunk) -> list[int] | range:
        if chunk.flags & TYPE_FLAG_SPARSE:
            self._offset(chunk, 0)
            return sorted(chunk.sparse or ())
        return range(chunk.entry_count)

    def entries(self) -> Iterator[tuple[int, str, str, EntryValue]]:
        """Every entry of every configuration: ``(res_id, "type/name", config, value)``."""
        for res_id, tname, key, chunk, entry in self._iter_entries():
            yield res_id, f"{tname}/{key}", describe_config(chunk.config), entry

    def _iter_entries(self) -> Iterator[tuple[int, str | None, str | None, _TypeChunk, EntryValue]]:
        """Entries of every configuration in (package, type, chunk) order; per type the
        default configuration comes first, so callers keeping the first hit prefer it."""
        for pkg in self.packages.values():
            for type_id, chunks in pkg.types.items():
                tname = self.type_name(pkg, type_id)
                for chunk in chunks:
                    for index in self._indexes(chunk):
                        entry = self._entry(chunk, index, pkg.key_names)
                        if entry is not None:
                            res_id = (pkg.id << 24) | ((type_id & 0xFF) << 16) | index
                            yield res_id, tname, entry.key, chunk, entry


def _key(pool: StringPool | None, index: int) -> str | None:
    return pool.get(index) if pool is not None else None


def parse_arsc(data: bytes | bytearray | memoryview) -> ResourceTable:
    return ResourceTable(data)
