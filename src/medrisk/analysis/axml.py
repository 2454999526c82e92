"""Binary Android XML (AXML) reader.

Compiled XML files inside an APK (``AndroidManifest.xml``, ``res/xml/*.xml``) are a
sequence of chunks: a string pool, a resource map (attribute name index -> framework
resource id) and XML nodes (namespace start/end, element start/end, CDATA).

The reader is deliberately *lenient in the same way Android is*, because packers and
malware use malformed files that the platform still accepts while analysis tools
choke on them:

* unknown chunk types between nodes are skipped (Android ``nextNode`` skips them);
* the file header type is not checked and an over-long declared size is clamped;
* string-pool offsets that point outside the pool give ``None`` for that string only;
* attribute *identity* comes from the resource id in the resource map, not from the
  name string (Android's ``TypedArray`` only sees resource ids), so an attribute whose
  name string is empty or misleading but whose id is ``0x0101000f`` is ``debuggable``;
* ``attributeStart`` / ``attributeSize`` / node ``headerSize`` are honoured as written;
* mismatched end tags just close the innermost open element.

Every loop is bounded by the input size and the tree is built iteratively, so hostile
input can only produce :class:`~medrisk.analysis.errors.AnalysisError`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from medrisk.analysis.errors import AnalysisError

ANDROID_NS = "http://schemas.android.com/apk/res/android"

# Chunk types (ResourceTypes.h)
RES_NULL_TYPE = 0x0000
RES_STRING_POOL_TYPE = 0x0001
RES_TABLE_TYPE = 0x0002
RES_XML_TYPE = 0x0003
RES_XML_START_NAMESPACE_TYPE = 0x0100
RES_XML_END_NAMESPACE_TYPE = 0x0101
RES_XML_START_ELEMENT_TYPE = 0x0102
RES_XML_END_ELEMENT_TYPE = 0x0103
RES_XML_CDATA_TYPE = 0x0104
RES_XML_RESOURCE_MAP_TYPE = 0x0180

# Res_value data types
TYPE_NULL = 0x00
TYPE_REFERENCE = 0x01
TYPE_ATTRIBUTE = 0x02
TYPE_STRING = 0x03
TYPE_FLOAT = 0x04
TYPE_DIMENSION = 0x05
TYPE_FRACTION = 0x06
TYPE_DYNAMIC_REFERENCE = 0x07
TYPE_DYNAMIC_ATTRIBUTE = 0x08
TYPE_INT_DEC = 0x10
TYPE_INT_HEX = 0x11
TYPE_INT_BOOLEAN = 0x12
TYPE_INT_COLOR_ARGB8 = 0x1C
TYPE_INT_COLOR_RGB8 = 0x1D
TYPE_INT_COLOR_ARGB4 = 0x1E
TYPE_INT_COLOR_RGB4 = 0x1F

NO_INDEX = 0xFFFFFFFF

# Framework attribute resource ids (android.R.attr, stable public API). Android matches
# manifest attributes by these ids; the name string in the file is only cosmetic.
ANDROID_ATTRS: dict[int, str] = {
    0x01010000: "theme",
    0x01010001: "label",
    0x01010002: "icon",
    0x01010003: "name",
    0x01010004: "manageSpaceActivity",
    0x01010005: "allowClearUserData",
    0x01010006: "permission",
    0x01010007: "readPermission",
    0x01010008: "writePermission",
    0x01010009: "protectionLevel",
    0x0101000A: "permissionGroup",
    0x0101000B: "sharedUserId",
    0x0101000C: "hasCode",
    0x0101000D: "persistent",
    0x0101000E: "enabled",
    0x0101000F: "debuggable",
    0x01010010: "exported",
    0x01010011: "process",
    0x01010012: "taskAffinity",
    0x01010013: "multiprocess",
    0x01010014: "finishOnTaskLaunch",
    0x01010015: "clearTaskOnLaunch",
    0x01010016: "stateNotNeeded",
    0x01010017: "excludeFromRecents",
    0x01010018: "authorities",
    0x01010019: "syncable",
    0x0101001A: "initOrder",
    0x0101001B: "grantUriPermissions",
    0x0101001C: "priority",
    0x0101001D: "launchMode",
    0x0101001E: "screenOrientation",
    0x0101001F: "configChanges",
    0x01010020: "description",
    0x01010021: "targetPackage",
    0x01010022: "handleProfiling",
    0x01010023: "functionalTest",
    0x01010024: "value",
    0x01010025: "resource",
    0x01010026: "mimeType",
    0x01010027: "scheme",
    0x01010028: "host",
    0x01010029: "port",
    0x0101002A: "path",
    0x0101002B: "pathPrefix",
    0x0101002C: "pathPattern",
    0x01010202: "targetActivity",
    0x0101020C: "minSdkVersion",
    0x0101021B: "versionCode",
    0x0101021C: "versionName",
    0x0101022B: "windowSoftInputMode",
    0x0101022D: "noHistory",
    0x0101026C: "anyDensity",
    0x01010270: "targetSdkVersion",
    0x01010271: "maxSdkVersion",
    0x01010272: "testOnly",
    0x0101027F: "backupAgent",
    0x01010280: "allowBackup",
    0x01010281: "glEsVersion",
    0x01010284: "smallScreens",
    0x01010285: "normalScreens",
    0x01010286: "largeScreens",
    0x0101028D: "resizeable",
    0x0101028E: "required",
    0x010102B7: "installLocation",
    0x010102BF: "xlargeScreens",
    0x010102D3: "hardwareAccelerated",
    0x0101035A: "largeHeap",
    0x010103A7: "parentActivityName",
    0x010103A9: "isolatedProcess",
    0x010103AF: "supportsRtl",
    0x0101048E: "multiArch",
    0x010104EA: "extractNativeLibs",
    0x010104EB: "fullBackupContent",
    0x010104EC: "usesCleartextTraffic",
    0x010104EE: "autoVerify",
    0x01010505: "directBootAware",
    0x0101050E: "externalService",
    0x01010527: "networkSecurityConfig",
    0x0101052C: "roundIcon",
    0x01010531: "visibleToInstantApps",
    0x0101054B: "isolatedSplits",
    0x0101054C: "targetSandboxVersion",
    0x0101055B: "isFeatureSplit",
    0x01010572: "compileSdkVersion",
    0x01010573: "compileSdkVersionCodename",
    0x01010576: "versionCodeMajor",
    0x0101057A: "appComponentFactory",
    0x0101063E: "dataExtractionRules",
}
ANDROID_ATTR_IDS: dict[str, int] = {v: k for k, v in ANDROID_ATTRS.items()}

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_CHUNK = struct.Struct("<HHI")
_NODE = struct.Struct("<HHIII")  # header + lineNumber + comment
_ATTR_EXT = struct.Struct("<IIHHHHHH")
_ATTR = struct.Struct("<IIIHBBI")  # ns, name, rawValue, size, res0, dataType, data
_NS_EXT = struct.Struct("<II")
_CDATA_EXT = struct.Struct("<IIHBBI")

# A hostile file cannot make us build more than this many nodes/attributes; a real
# manifest has a few thousand at most. The bounds also follow from the data size.
MAX_NODES = 500_000
MAX_ATTRIBUTES_PER_ELEMENT = 4096
MAX_ANOMALIES = 50
MAX_INDENT = 32
MAX_TEXT = 65536  # characters of CDATA kept per element
MAX_DISPLAY_VALUE = 2048  # characters of one attribute value shown by to_xml


class Ref(NamedTuple):
    """A resource reference ``@0x7f...`` (``attr=True``: a theme attribute ``?0x...``)."""

    id: int
    attr: bool = False

    def __str__(self) -> str:
        return f"{'?' if self.attr else '@'}0x{self.id:08x}"


class StringPool:
    """A ResStringPool chunk; strings are decoded lazily, invalid ones are ``None``."""

    __slots__ = ("_data", "_offsets", "_base", "_end", "_utf8", "_cache", "count")

    def __init__(self, data: bytes | memoryview, start: int, end: int) -> None:
        """Parse the pool whose chunk starts at ``start``; ``end`` bounds all reads."""
        self._data = data
        self._cache: dict[int, str | None] = {}
        end = min(end, len(data))
        if start + 28 > end:
            raise AnalysisError("corrupt_string_pool", "string pool header truncated")
        _type, header_size, size = _CHUNK.unpack_from(data, start)
        count, _styles, flags, strings_start, _styles_start = struct.unpack_from("<IIIII", data, start + 8)
        # A lying chunk size is clamped to what is there (Android validates it; we read on).
        chunk_end = start + size if header_size <= size and start + size <= end else end
        if header_size < 28 or start + header_size > chunk_end:
            header_size = 28
        offsets_at = start + header_size
        count = min(count, max(0, (chunk_end - offsets_at) // 4))
        self.count = count
        self._offsets = struct.unpack_from(f"<{count}I", data, offsets_at) if count else ()
        self._utf8 = bool(flags & 0x100)
        self._base = start + strings_start
        self._end = chunk_end

    def __len__(self) -> int:
        return self.count

    def get(self, index: int) -> str | None:
        """String ``index`` or ``None`` (no such index, or its bytes are out of range)."""
        if index < 0 or index >= self.count:
            return None
        cached = self._cache.get(index, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        value = self._decode(self._base + self._offsets[index])
        self._cache[index] = value
        return value

    def _decode(self, at: int) -> str | None:
        data, end = self._data, self._end
        try:
            if self._utf8:
                if at + 2 > end:
                    return None
                n = data[at]
                at += 1
                if n & 0x80:
                    at += 1
                n = data[at]
                at += 1
                if n & 0x80:
                    if at >= end:
                        return None
                    n = ((n & 0x7F) << 8) | data[at]
                    at += 1
                if at + n > end:
                    return None
                return bytes(data[at : at + n]).decode("utf-8", "replace")
            if at + 2 > end:
                return None
            n = _U16.unpack_from(data, at)[0]
            at += 2
            if n & 0x8000:
                if at + 2 > end:
                    return None
                n = ((n & 0x7FFF) << 16) | _U16.unpack_from(data, at)[0]
                at += 2
            if at + 2 * n > end:
                return None
            return bytes(data[at : at + 2 * n]).decode("utf-16-le", "replace")
        except (IndexError, struct.error):
            return None

    def may_contain(self, word: str) -> bool:
        """False when no string of the pool can contain ``word`` (lower-case ASCII) once lowered.

        Every string's bytes lie inside the pool, so a byte search (ASCII case folded) of the
        whole pool finds any occurrence; only U+0130 lowers to an ASCII letter, followed by a
        combining dot, so non-ASCII text cannot produce the word. A hit may be a false alarm
        (UTF-16 alignment, a word spanning two strings): callers still check each string.
        """
        if self._base >= self._end:
            return False
        pattern = word.encode("ascii") if self._utf8 else word.encode("utf-16-le")
        # a bytes pattern with IGNORECASE folds ASCII letters only, searched in place (no copy)
        return re.compile(re.escape(pattern), re.IGNORECASE).search(self._data, self._base, self._end) is not None

    def strings(self) -> Iterator[str]:
        """All decodable strings, in pool order."""
        for i in range(self.count):
            s = self.get(i)
            if s is not None:
                yield s


def _coerce(value_type: int, data: int, pool: StringPool | None) -> object:
    """The Python value of a typed Res_value."""
    if value_type == TYPE_STRING:
        return pool.get(data) if pool is not None else None
    if value_type == TYPE_INT_BOOLEAN:
        return data != 0
    if value_type == TYPE_INT_DEC:
        return data - 0x1_0000_0000 if data & 0x8000_0000 else data
    if value_type == TYPE_INT_HEX or TYPE_INT_COLOR_ARGB8 <= value_type <= TYPE_INT_COLOR_RGB4:
        return data
    if value_type in (TYPE_REFERENCE, TYPE_DYNAMIC_REFERENCE):
        return Ref(data)
    if value_type in (TYPE_ATTRIBUTE, TYPE_DYNAMIC_ATTRIBUTE):
        return Ref(data, attr=True)
    if value_type == TYPE_FLOAT:
        return struct.unpack("<f", struct.pack("<I", data))[0]
    if value_type in (TYPE_DIMENSION, TYPE_FRACTION):
        return complex_to_string(value_type, data)
    if value_type == TYPE_NULL:
        return None
    return data


_DIM_UNITS = ("px", "dp", "sp", "pt", "in", "mm")
_RADIX_MULT = (1.0 / (1 << 23), 1.0 / (1 << 15), 1.0 / (1 << 7), 1.0)


def complex_to_string(value_type: int, data: int) -> str:
    """Format a dimension/fraction complex value, e.g. ``16.0dp`` or ``50.0%``."""
    mantissa = data >> 8
    if mantissa & 0x800000:
        mantissa -= 0x1000000
    number = mantissa * _RADIX_MULT[(data >> 4) & 0x3]
    unit = data & 0xF
    if value_type == TYPE_DIMENSION:
        suffix = _DIM_UNITS[unit] if unit < len(_DIM_UNITS) else f"(unit {unit})"
        return f"{number:g}{suffix}"
    return f"{number * 100:g}{'%p' if unit == 1 else '%'}"


@dataclass(slots=True)
class Attribute:
    """One attribute. ``name``/``namespace`` are the *effective* identity (framework
    attributes are named from their resource id); ``raw_name`` is the pool string."""

    namespace: str | None
    name: str
    raw_name: str | None
    resource_id: int
    value_type: int
    data: int
    raw_value: str | None
    value: object

    @property
    def qualified_name(self) -> str:
        if self.namespace == ANDROID_NS:
            return f"android:{self.name}"
        return self.name

    @property
    def text(self) -> str | None:
        """String form the way ``XmlResourceParser.getAttributeValue`` gives it."""
        if self.raw_value is not None:
            return self.raw_value
        return value_to_string(self.value_type, self.data, self.value)


def value_to_string(value_type: int, data: int, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Ref):
        return str(value)
    if value_type == TYPE_INT_HEX:
        return f"0x{data:08x}"
    if TYPE_INT_COLOR_ARGB8 <= value_type <= TYPE_INT_COLOR_RGB4:
        return f"#{data:08x}"
    return str(value)


@dataclass(slots=True, eq=False)
class Element:
    tag: str
    namespace: str | None
    line: int | None
    attributes: list[Attribute] = field(default_factory=list)
    children: list[Element] = field(default_factory=list)
    text: str = ""

    def get(self, name: str, namespace: str | None = ANDROID_NS) -> Attribute | None:
        """The first attribute ``name`` in ``namespace``.

        For a framework attribute known by id (``ANDROID_ATTRS``) only an attribute
        carrying that resource id matches, as on Android. ``namespace=None`` looks up an
        attribute without namespace by its name string (e.g. ``package``).
        """
        if namespace == ANDROID_NS:
            rid = ANDROID_ATTR_IDS.get(name)
            if rid is not None:
                for a in self.attributes:
                    if a.resource_id == rid:
                        return a
                return None
        for a in self.attributes:
            if a.name == name and a.namespace == namespace:
                return a
        return None

    def value(self, name: str, namespace: str | None = ANDROID_NS, default: object = None) -> object:
        a = self.get(name, namespace)
        return default if a is None else a.value

    def iter(self, tag: str | None = None) -> Iterator[Element]:
        """Depth-first, document order, iterative."""
        stack = [self]
        while stack:
            el = stack.pop()
            if tag is None or el.tag == tag:
                yield el
            stack.extend(reversed(el.children))

    def findall(self, tag: str) -> list[Element]:
        """Direct children named ``tag``."""
        return [c for c in self.children if c.tag == tag]

    def find(self, tag: str) -> Element | None:
        for c in self.children:
            if c.tag == tag:
                return c
        return None


@dataclass(slots=True, eq=False)
class Document:
    """A parsed AXML file. ``root`` is the first top-level element (what Android reads);
    ``anomalies`` lists tolerated irregularities (evasion hints)."""

    root: Element
    extra_roots: list[Element]
    namespaces: dict[str, str]
    strings: StringPool | None
    resource_map: tuple[int, ...]
    anomalies: list[str]


def is_axml(data: bytes) -> bool:
    return len(data) >= 8 and data[:2] in (b"\x03\x00", b"\x00\x00")


def parse_axml(data: bytes | bytearray | memoryview) -> Document:
    """Parse binary XML into a :class:`Document`; raise ``AnalysisError('corrupt_axml')``."""
    if not isinstance(data, bytes | bytearray):
        data = bytes(data)
    n = len(data)
    if n < 8:
        raise AnalysisError("corrupt_axml", f"binary XML too short ({n} bytes)")
    if data[:1] == b"<" or data[:5] == b"\xef\xbb\xbf<?":
        raise AnalysisError("corrupt_axml", "plain-text XML, not compiled binary XML")
    anomalies: list[str] = []

    def note(msg: str) -> None:
        if len(anomalies) < MAX_ANOMALIES:
            anomalies.append(msg)

    ftype, fheader, fsize = _CHUNK.unpack_from(data, 0)
    if ftype != RES_XML_TYPE:
        note(f"file chunk type 0x{ftype:04x} (expected 0x0003)")
    end = n
    if fsize < 8 or fsize > n:
        note(f"file size field {fsize} != data size {n}")
    else:
        end = fsize
        if fsize < n:
            note(f"{n - fsize} trailing bytes after declared size")
    pos = fheader if 8 <= fheader < end else 8
    if pos != 8:
        note(f"file header size {fheader}")

    pool: StringPool | None = None
    resmap: tuple[int, ...] = ()
    namespaces: dict[str, str] = {}  # uri -> prefix
    roots: list[Element] = []
    stack: list[Element] = []
    nodes = 0

    def s(idx: int) -> str | None:
        if idx == NO_INDEX or pool is None:
            return None
        return pool.get(idx)

    while pos + 8 <= end:
        ctype, hsize, csize = _CHUNK.unpack_from(data, pos)
        if csize < 8 or pos + csize > end:
            # Android stops at a chunk it cannot size: what came before is the document.
            note(f"bad chunk size {csize} for type 0x{ctype:04x} at offset {pos}")
            break
        if hsize < 8 or hsize > csize:
            note(f"bad header size {hsize} for type 0x{ctype:04x} at offset {pos}")
            if ctype not in (RES_STRING_POOL_TYPE, RES_XML_RESOURCE_MAP_TYPE):
                pos += csize
                continue
        cend = pos + csize
        nodes += 1
        if nodes > MAX_NODES:
            raise AnalysisError("corrupt_axml", "too many XML nodes")
        if ctype == RES_STRING_POOL_TYPE:
            if pool is None:
                try:
                    pool = StringPool(data, pos, cend)
                except AnalysisError:
                    note(f"unreadable string pool at offset {pos}")
            else:
                note(f"second string pool at offset {pos} ignored")
        elif ctype == RES_XML_RESOURCE_MAP_TYPE:
            hs = hsize if 8 <= hsize <= csize else 8
            count = (csize - hs) // 4
            resmap = struct.unpack_from(f"<{count}I", data, pos + hs)
        elif RES_XML_START_NAMESPACE_TYPE <= ctype <= RES_XML_CDATA_TYPE:
            if hsize < 16:
                note(f"node header size {hsize} at offset {pos}")
                pos += csize
                continue
            line = _U32.unpack_from(data, pos + 8)[0]
            ext = pos + hsize
            if ctype == RES_XML_START_ELEMENT_TYPE:
                if ext + 20 > cend:
                    note(f"truncated start element at offset {pos}")
                    break  # Android: BAD_DOCUMENT
                ns_i, name_i, a_start, a_size, a_count, _id, _cls, _sty = _ATTR_EXT.unpack_from(data, ext)
                tag = s(name_i)
                if tag is None:
                    note(f"element name index {name_i} invalid at offset {pos}")
                    tag = ""
                el = Element(tag, s(ns_i), line)
                if a_size < 20 and a_count:
                    note(f"attribute size {a_size} < 20 at offset {pos}")
                    a_count = 0
                if a_count > MAX_ATTRIBUTES_PER_ELEMENT:
                    a_count = MAX_ATTRIBUTES_PER_ELEMENT
                at = ext + a_start
                if a_count and at + a_size * a_count > cend:
                    note(f"attributes overflow element at offset {pos}")
                    a_count = max(0, (cend - at) // a_size) if a_size else 0
                attrs = el.attributes
                for k in range(a_count):
                    a_ns, a_name, a_raw, _vs, _r0, vtype, vdata = _ATTR.unpack_from(data, at + k * a_size)
                    raw_name = s(a_name)
                    rid = resmap[a_name] if a_name < len(resmap) else 0
                    ns = s(a_ns)
                    name = raw_name or ""
                    if rid >> 16 == 0x0101:
                        known = ANDROID_ATTRS.get(rid)
                        if known is not None:
                            if raw_name != known:
                                note(f"attribute id 0x{rid:08x} ({known}) has name {raw_name!r:.60} at line {line}")
                            name = known
                        ns = ANDROID_NS
                    elif ns == ANDROID_NS and raw_name in ANDROID_ATTR_IDS:
                        note(f"android:{raw_name} without resource id at line {line}")
                    raw_value = s(a_raw)
                    value = _coerce(vtype, vdata, pool)
                    if vtype == TYPE_STRING and value is None:
                        value = raw_value
                    attrs.append(Attribute(ns, name, raw_name, rid, vtype, vdata, raw_value, value))
                if stack:
                    stack[-1].children.append(el)
                else:
                    roots.append(el)
                stack.append(el)
            elif ctype == RES_XML_END_ELEMENT_TYPE:
                if stack:
                    stack.pop()
                else:
                    note(f"end element without start at offset {pos}")
            elif ctype == RES_XML_START_NAMESPACE_TYPE:
                if ext + 8 <= cend:
                    prefix_i, uri_i = _NS_EXT.unpack_from(data, ext)
                    uri = s(uri_i)
                    if uri is not None:
                        namespaces.setdefault(uri, s(prefix_i) or "")
            elif ctype == RES_XML_CDATA_TYPE:
                if ext + 12 <= cend and stack:
                    text = s(_U32.unpack_from(data, ext)[0])
                    el_text = stack[-1].text
                    if text and len(el_text) < MAX_TEXT:
                        stack[-1].text = (el_text + text)[:MAX_TEXT]
        else:
            note(f"unknown chunk type 0x{ctype:04x} at offset {pos} skipped")
        pos += csize

    if not roots:
        raise AnalysisError("corrupt_axml", "no XML element found")
    if len(roots) > 1:
        note(f"{len(roots) - 1} extra top-level elements ignored")
    return Document(roots[0], roots[1:], namespaces, pool, tuple(resmap), anomalies)


def _attr_display(a: Attribute, resolve_name) -> str:
    v = a.value
    if isinstance(v, Ref) and resolve_name is not None:
        name = resolve_name(v.id)
        if name:
            return f"{'?' if v.attr else '@'}{name}"
    if a.value_type == TYPE_STRING:
        text = "" if v is None else str(v)
    else:
        text = value_to_string(a.value_type, a.data, v) or ""
    return text if len(text) <= MAX_DISPLAY_VALUE else text[:MAX_DISPLAY_VALUE] + "..."


_XML_NAME_BAD = re.compile(r"[^A-Za-z0-9_.\-]")
_XML_CTRL = {c: "\ufffd" for c in range(32) if c not in (9, 10, 13)} | {0xFFFE: "\ufffd", 0xFFFF: "\ufffd"}
MAX_XML_OUTPUT = 16 * 1024 * 1024  # characters; to_xml is for display


def _xml_name(name: str) -> str:
    name = _XML_NAME_BAD.sub("_", name[:200]) or "_"
    return name if (name[0].isalpha() or name[0] == "_") else "_" + name


def _xml_text(text: str) -> str:
    return text.translate(_XML_CTRL)


def to_xml(tree: Document | Element, resolve_name=None) -> str:
    """Render as indented XML text for display (not byte-exact to the source).

    ``resolve_name`` (e.g. ``ResourceTable.name``) turns ``@0x7f...`` into ``@type/name``.
    Names and values are sanitised so the result is always well-formed XML.
    """
    # imported here: xml.sax.saxutils pulls in urllib, http and email (~20 ms), and scans never render
    from xml.sax.saxutils import escape, quoteattr

    root = tree.root if isinstance(tree, Document) else tree
    prefixes: dict[str, str] = {ANDROID_NS: "android"}
    if isinstance(tree, Document):
        for uri, prefix in tree.namespaces.items():
            if prefix and uri not in prefixes and prefix not in prefixes.values():
                prefixes[uri] = _xml_name(prefix)
    out: list[str] = ['<?xml version="1.0" encoding="utf-8"?>']
    size = 0
    # Iterative walk: (element, depth, closing?)
    work: list[tuple[Element, int, bool]] = [(root, 0, False)]
    first = True
    while work:
        el, depth, closing = work.pop()
        pad = "    " * min(depth, MAX_INDENT)  # capped: deep hostile nesting stays linear
        tag = _xml_name(el.tag)
        if closing:
            out.append(f"{pad}</{tag}>")
            continue
        if size > MAX_XML_OUTPUT:
            out.append(f"{pad}<!-- output truncated -->")
            # still close every open element so the text stays well-formed
            work = [w for w in work if w[2]]
            continue
        parts = [f"{pad}<{tag}"]
        if first:
            for uri, prefix in sorted(prefixes.items(), key=lambda kv: kv[1]):
                parts.append(f" xmlns:{prefix}={quoteattr(_xml_text(uri))}")
            first = False
        seen: set[str] = set()
        for a in el.attributes:
            local = _xml_name(a.name)
            qn = f"{prefixes[a.namespace]}:{local}" if a.namespace in prefixes else local
            if qn in seen:
                continue  # duplicate attribute (hostile file): first one, as Android reads it
            seen.add(qn)
            parts.append(f" {qn}={quoteattr(_xml_text(_attr_display(a, resolve_name)))}")
        text = _xml_text(el.text.strip())
        if not el.children:
            line = "".join(parts) + (f">{escape(text)}</{tag}>" if text else "/>")
        else:
            line = "".join(parts) + ">"
            if text:
                line += f"\n{pad}    {escape(text)}"  # text before children
            work.append((el, depth, True))
            for child in reversed(el.children):
                work.append((child, depth + 1, False))
        size += len(line)
        out.append(line)
    return "\n".join(out) + "\n"
