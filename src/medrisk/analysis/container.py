"""APK / ZIP container reader that behaves like Android, not like ``zipfile``.

Android (``libziparchive`` for the package manager and ``libandroidfw`` for the
asset manager) installs archives that Python's ``zipfile`` and many analysis tools
reject or read differently; malware relies on those differences. This reader is
driven by the central directory, as Android is, and records every structural
oddity as an *anomaly* instead of failing, so that the rules can flag it.

Decisions (each mirrors Android, see ``system/libziparchive/zip_archive.cc`` and
``frameworks/base/libs/androidfw``):

* **End of central directory**: scanned backwards over the last 64 KiB + 22 bytes;
  the last signature wins (as Android). ZIP64 EOCD records are followed when a
  32-bit field is saturated.
* **Sizes, method, CRC and flags come from the central directory.** The local header
  is only used for the length of its name and extra field, which locate the data
  (exactly like ``FindEntry``). Differences are reported as ``local_header_mismatch``
  (current Android refuses to extract such an entry; older versions did not check).
* **Compression method**: ``0`` is stored, *anything else* is inflated as raw deflate.
  That is what the asset manager does when the package manager parses
  ``AndroidManifest.xml``/``resources.arsc`` (``method == kCompressStored ?
  uncompressed : compressed``); methods other than 0/8 are reported as
  ``bad_compression_method``. ``zipfile`` raises ``NotImplementedError`` instead,
  which is why this trick breaks analysis tools.
* **Stored entries** are read for their *uncompressed* size, as Android does.
* **Duplicate names**: current ``libziparchive`` refuses the whole archive
  (``kDuplicateEntry``); before that (the 2013 "master key" bug) the C verifier and
  Java loader disagreed on which copy won. We keep every record in ``entries``, report
  ``duplicate_entry`` and read the **first copy in central directory order** (the one a
  first-insert hash lookup finds). ``zipfile`` returns the last copy.
* **CRC is not verified** by default: ``kCrcChecksEnabled = false`` in ``libziparchive``
  and the asset manager never checks it; ``read(..., verify_crc=True)`` does.
* **Encrypted flag** (bit 0) is ignored by Android (entries are read as plain data);
  reported as ``encrypted_flag`` because it makes ``zipfile``/jadx/apktool give up.
* **Data before the first local header** (``prepended_data``): Android >= 8.1 (the
  Janus fix, bug 64211847) refuses an archive that does not start with a local file
  header; older versions loaded a prepended DEX. Offsets are absolute (no
  ``zipfile``-style "concatenated archive" adjustment), as on Android.
* Names are checked like ``IsValidEntryName`` (UTF-8, no NUL); bad names are decoded
  as cp437 (like ``zipfile``) and reported as ``bad_entry_name`` (Android rejects them).

Only stdlib. Every loop is bounded by the archive size; inflation is capped with
``max_length`` so a zip bomb is refused before it is allocated.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from .errors import AnalysisError, LimitExceeded
from .limits import DEFAULT_LIMITS, Limits

SIG_LOCAL = b"PK\x03\x04"
SIG_CENTRAL = b"PK\x01\x02"
SIG_EOCD = b"PK\x05\x06"
SIG_ZIP64_LOCATOR = b"PK\x06\x07"
SIG_ZIP64_EOCD = b"PK\x06\x06"
SIG_DESCRIPTOR = b"PK\x07\x08"
APK_SIG_BLOCK_MAGIC = b"APK Sig Block 42"

_EOCD = struct.Struct("<4sHHHHIIH")  # 22 bytes
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 46 bytes
_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes
_ZIP64_LOCATOR = struct.Struct("<4sIQI")  # 20 bytes
_ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")  # 56 bytes
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

MAX_COMMENT = 0xFFFF
ONE_MIB = 1024 * 1024
FLAG_ENCRYPTED = 0x0001
FLAG_DATA_DESCRIPTOR = 0x0008
FLAG_UTF8 = 0x0800
METHOD_STORED = 0
METHOD_DEFLATED = 8
MAX_ANOMALIES_PER_KIND = 50

_METHOD_NAMES = {
    1: "shrink",
    6: "implode",
    9: "deflate64",
    12: "bzip2",
    14: "lzma",
    93: "zstd",
    95: "xz",
    98: "ppmd",
    99: "aes",
}

ANOMALY_KINDS = (
    "bad_compression_method",
    "duplicate_entry",
    "local_header_mismatch",
    "data_descriptor",
    "extra_data",
    "encrypted_flag",
    "prepended_data",
    "comment",
    "path_traversal",
    "overlapping_entries",
    "bad_entry_name",
)


@dataclass(frozen=True)
class Anomaly:
    kind: str
    entry: str | None
    detail: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "entry": self.entry, "detail": self.detail}


@dataclass
class Entry:
    """One central-directory record (duplicates included, CD order)."""

    name: str
    method: int
    compressed_size: int
    size: int
    crc: int
    local_offset: int
    flags: int
    index: int = 0  # position in the central directory
    raw_name: bytes = b""
    comment: bytes = b""
    data_offset: int | None = None  # start of the data, from the local header
    span_end: int | None = None  # end of data (+ data descriptor) in the file
    error: tuple[str, str] | None = None  # (code, message) when the data cannot be located

    @property
    def is_stored(self) -> bool:
        return self.method == METHOD_STORED

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")

    @property
    def data_length(self) -> int:
        """Bytes of file data Android reads (uncompressed size for stored entries)."""
        return self.size if self.is_stored else self.compressed_size


class Container:
    """A parsed archive. Build with :func:`open_container`."""

    def __init__(
        self,
        raw: bytes,
        entries: list[Entry],
        anomalies: list[Anomaly],
        limits: Limits,
        *,
        cd_offset: int,
        cd_size: int,
        eocd_offset: int,
        comment: bytes,
        signing_block: tuple[int, int] | None,
        zip64: bool,
    ) -> None:
        self.raw = raw
        self.entries = entries
        self.anomalies = anomalies
        self.limits = limits
        self.cd_offset = cd_offset
        self.cd_size = cd_size
        self.eocd_offset = eocd_offset
        self.comment = comment
        self.zip64 = zip64
        self._signing_block = signing_block
        self._by_name: dict[str, Entry] = {}
        for e in entries:
            self._by_name.setdefault(e.name, e)  # first copy in CD order wins
        self.inflated_total = 0

    def names(self) -> list[str]:
        """Distinct entry names in central-directory order."""
        return list(self._by_name)

    def has(self, name: str) -> bool:
        return name in self._by_name

    def entry(self, name: str) -> Entry | None:
        """The entry Android reads for ``name`` (first in CD order), or None."""
        return self._by_name.get(name)

    @property
    def signing_block_offset(self) -> int | None:
        """File offset of the APK Signing Block (v2/v3/v4), if present before the CD."""
        return self._signing_block[0] if self._signing_block else None

    def signing_block(self) -> bytes | None:
        """The whole APK Signing Block (size fields and magic included), or None."""
        if not self._signing_block:
            return None
        start, end = self._signing_block
        return self.raw[start:end]

    def read(self, name: str, max_bytes: int | None = None, *, verify_crc: bool = False) -> bytes:
        """Content of ``name`` (first copy). ``max_bytes`` returns at most that prefix."""
        e = self._by_name.get(name)
        if e is None:
            raise AnalysisError("entry_not_found", f"no entry named {name!r} in the archive")
        return self.read_entry(e, max_bytes, verify_crc=verify_crc)

    def read_entry(self, e: Entry, max_bytes: int | None = None, *, verify_crc: bool = False) -> bytes:
        """Content of one specific record (e.g. the second copy of a duplicate)."""
        if e.error is not None:
            raise AnalysisError(e.error[0], f"{e.name!r}: {e.error[1]}")
        assert e.data_offset is not None
        lim = self.limits
        full = max_bytes is None or max_bytes >= e.size
        want = e.size if full else max(0, int(max_bytes or 0))
        if want > ONE_MIB and not e.is_stored:
            if e.compressed_size == 0 or e.size / e.compressed_size > lim.max_ratio:
                ratio = "inf" if e.compressed_size == 0 else f"{e.size / e.compressed_size:.0f}"
                raise LimitExceeded(
                    "zip_bomb",
                    f"{e.name!r} declares {e.size} bytes from {e.compressed_size} compressed "
                    f"(ratio {ratio} > {lim.max_ratio:g})",
                )
        if want > lim.max_entry_bytes:
            raise LimitExceeded("entry_too_large", f"{e.name!r} is {e.size} bytes (limit {lim.max_entry_bytes})")
        if self.inflated_total + want > lim.max_total_inflated_bytes:
            raise LimitExceeded(
                "zip_bomb",
                f"reading {e.name!r} would exceed {lim.max_total_inflated_bytes} inflated bytes in total",
            )
        start = e.data_offset
        if e.is_stored:
            out = self.raw[start : start + want]
        else:
            out = self._inflate(e, want, full)
        self.inflated_total += len(out)
        if full and verify_crc and zlib.crc32(out) != e.crc:
            raise AnalysisError("bad_crc", f"{e.name!r}: CRC-32 does not match the central directory")
        return out

    def _inflate(self, e: Entry, want: int, full: bool) -> bytes:
        start = e.data_offset or 0
        src = memoryview(self.raw)[start : start + e.compressed_size]
        d = zlib.decompressobj(-15)
        try:
            out = d.decompress(src, want) if want > 0 else b""
            if full and len(out) == want and not d.eof:
                # Android requires the stream to inflate to exactly the declared size.
                if d.decompress(d.unconsumed_tail if want > 0 else src, 1):
                    raise AnalysisError(
                        "corrupt_entry", f"{e.name!r} inflates to more than its declared {e.size} bytes"
                    )
        except zlib.error as exc:
            raise AnalysisError("corrupt_entry", f"{e.name!r}: deflate data is invalid ({exc})") from None
        finally:
            src.release()
        if full and len(out) != want:
            raise AnalysisError("corrupt_entry", f"{e.name!r} inflates to {len(out)} bytes, declared {e.size}")
        return out

    def peek(self, e: Entry, n: int = 16) -> bytes:
        """First ``n`` bytes of an entry for magic sniffing; b"" on any problem. Not budgeted."""
        if e.error is not None or e.data_offset is None or n <= 0:
            return b""
        start = e.data_offset
        if e.is_stored:
            return self.raw[start : start + min(n, e.size)]
        src = self.raw[start : start + min(e.compressed_size, 4096)]
        try:
            return zlib.decompressobj(-15).decompress(src, min(n, max(e.size, 1)))
        except zlib.error:
            return b""


# ---------------------------------------------------------------------------
# Opening


class _Anomalies:
    def __init__(self) -> None:
        self.items: list[Anomaly] = []
        self.counts: dict[str, int] = {}

    def add(self, kind: str, entry: str | None, detail: str) -> None:
        n = self.counts.get(kind, 0) + 1
        self.counts[kind] = n
        if n <= MAX_ANOMALIES_PER_KIND:
            self.items.append(Anomaly(kind, entry, detail))

    def finish(self) -> list[Anomaly]:
        for kind, n in self.counts.items():
            if n > MAX_ANOMALIES_PER_KIND:
                self.items.append(Anomaly(kind, None, f"{n - MAX_ANOMALIES_PER_KIND} more {kind} anomalies not listed"))
        return self.items


def _describe_magic(b: bytes) -> str:
    if b.startswith(b"dex\n"):
        return "DEX file"
    if b.startswith(b"\x7fELF"):
        return "ELF file"
    if b.startswith(SIG_LOCAL):
        return "ZIP local header"
    if b.startswith(b"\x89PNG"):
        return "PNG image"
    if b.startswith(b"MZ"):
        return "PE executable"
    if b.startswith(b"#!"):
        return "script"
    return "unknown content"


def _find_eocd(data: bytes, an: _Anomalies) -> tuple[int, tuple]:
    """Last EOCD signature whose comment fits in the file (Android picks the last one)."""
    n = len(data)
    floor = max(0, n - (MAX_COMMENT + _EOCD.size))
    pos = data.rfind(SIG_EOCD, floor, n)
    last = pos
    while pos >= 0:
        if pos + _EOCD.size <= n:
            rec = _EOCD.unpack_from(data, pos)
            if pos + _EOCD.size + rec[7] <= n:
                if pos != last:
                    an.add(
                        "extra_data",
                        None,
                        f"a later EOCD signature at {last} is invalid; using the one at {pos}",
                    )
                trailing = n - (pos + _EOCD.size + rec[7])
                if trailing:
                    an.add(
                        "extra_data",
                        None,
                        f"{trailing} bytes after the end of central directory and comment "
                        "(Android rejects such archives)",
                    )
                return pos, rec
        pos = data.rfind(SIG_EOCD, floor, pos)
    if data.startswith(SIG_LOCAL):
        raise AnalysisError("truncated", "no end-of-central-directory record; the archive looks truncated")
    raise AnalysisError("not_a_zip", "no end-of-central-directory record; not a ZIP/APK file")


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    """Apply a ZIP64 extended-information extra field (0x0001) to saturated values."""
    p, end = 0, len(extra)
    while p + 4 <= end:
        hid, hlen = struct.unpack_from("<HH", extra, p)
        p += 4
        body = extra[p : p + hlen]
        p += hlen
        if hid != 0x0001:
            continue
        complete = len(body) >= 24  # some writers always emit all three values
        q = 0
        vals = [usize, csize, offset]
        for i in range(3):
            if vals[i] == 0xFFFFFFFF or complete:
                if q + 8 > len(body):
                    break
                vals[i] = _U64.unpack_from(body, q)[0]
                q += 8
        return vals[0], vals[1], vals[2]
    return usize, csize, offset


def _decode_name(raw: bytes) -> tuple[str, bool]:
    """(name, valid): UTF-8 like Android; invalid names decoded as cp437."""
    if b"\x00" in raw:
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            return raw.decode("cp437"), False
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("cp437"), False


_TRAVERSAL = re.compile(r"(^|[/\\])\.\.([/\\]|$)")


def _check_name(e: Entry, valid: bool, an: _Anomalies) -> None:
    name = e.name
    if not valid:
        an.add("bad_entry_name", name, "name is not valid UTF-8 or contains NUL (Android rejects the archive)")
    elif not name:
        an.add("bad_entry_name", name, "empty entry name")
    if _TRAVERSAL.search(name):
        an.add("path_traversal", name, "name contains a '..' path component")
    elif name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[/\\]", name):
        an.add("path_traversal", name, "absolute path name")


def _parse_central_directory(data: bytes, cd_offset: int, cd_size: int, count: int, an: _Anomalies) -> list[Entry]:
    cd_end = cd_offset + cd_size
    entries: list[Entry] = []
    p = cd_offset
    for i in range(count):
        if p + _CENTRAL.size > cd_end:
            raise AnalysisError(
                "bad_central_directory",
                f"central directory ends after {i} of {count} entries declared in the EOCD",
            )
        (
            sig,
            _made_by,
            _needed,
            flags,
            method,
            _mtime,
            _mdate,
            crc,
            csize,
            usize,
            nlen,
            xlen,
            clen,
            _disk,
            _iattr,
            _eattr,
            offset,
        ) = _CENTRAL.unpack_from(data, p)
        if sig != SIG_CENTRAL:
            raise AnalysisError("bad_central_directory", f"central directory record {i} has no signature")
        q = p + _CENTRAL.size
        if q + nlen + xlen + clen > cd_end:
            raise AnalysisError("bad_central_directory", f"central directory record {i} runs past the directory end")
        raw_name = data[q : q + nlen]
        extra = data[q + nlen : q + nlen + xlen]
        comment = data[q + nlen + xlen : q + nlen + xlen + clen]
        if 0xFFFFFFFF in (usize, csize, offset):
            usize, csize, offset = _zip64_extra(extra, usize, csize, offset)
        name, valid = _decode_name(raw_name)
        e = Entry(
            name=name,
            method=method,
            compressed_size=csize,
            size=usize,
            crc=crc,
            local_offset=offset,
            flags=flags,
            index=i,
            raw_name=raw_name,
            comment=comment,
        )
        _check_name(e, valid, an)
        entries.append(e)
        p = q + nlen + xlen + clen
    if p < cd_end:
        hidden = data[p:cd_end].count(SIG_CENTRAL)
        an.add(
            "extra_data",
            None,
            f"{cd_end - p} bytes left in the central directory after the {count} declared entries"
            + (f" ({hidden} more record signatures: entries other tools may list)" if hidden else ""),
        )
    return entries


def _locate_data(data: bytes, e: Entry, cd_offset: int, an: _Anomalies) -> None:
    """Read the local header (for the data offset) and cross-check it with the CD."""
    n = len(data)
    lo = e.local_offset
    if lo + _LOCAL.size > n:
        e.error = ("truncated", f"local header at {lo} is beyond the end of the file")
        an.add("local_header_mismatch", e.name, f"local header offset {lo} is beyond the end of the file")
        return
    if lo >= cd_offset:
        an.add(
            "local_header_mismatch",
            e.name,
            f"local header offset {lo} is inside/after the central directory (Android rejects the archive)",
        )
    (sig, _ver, lflags, lmethod, _t, _d, lcrc, lcsize, lusize, lnlen, lxlen) = _LOCAL.unpack_from(data, lo)
    if sig != SIG_LOCAL:
        e.error = ("bad_local_header", f"no local file header signature at offset {lo}")
        an.add("local_header_mismatch", e.name, f"no local file header signature at offset {lo}")
        return
    name_start = lo + _LOCAL.size
    start = name_start + lnlen + lxlen
    problems: list[str] = []
    if data[name_start : name_start + lnlen] != e.raw_name:
        problems.append("name differs from the central directory")
    if lmethod != e.method:
        problems.append(f"method {lmethod} vs {e.method} in the central directory")
    if (lflags & FLAG_DATA_DESCRIPTOR) != (e.flags & FLAG_DATA_DESCRIPTOR):
        problems.append("data-descriptor flag differs from the central directory")
    if not lflags & FLAG_DATA_DESCRIPTOR:
        if lcsize == 0xFFFFFFFF or lusize == 0xFFFFFFFF:
            lusize, lcsize, _ = _zip64_extra(data[name_start + lnlen : start], lusize, lcsize, 0)
        if (lcsize, lusize, lcrc) != (e.compressed_size, e.size, e.crc):
            problems.append(
                f"sizes/crc {lcsize}/{lusize}/{lcrc:08x} vs {e.compressed_size}/{e.size}/{e.crc:08x} "
                "in the central directory"
            )
    if problems:
        an.add("local_header_mismatch", e.name, "; ".join(problems))
    end = start + e.data_length
    if end > n:
        e.error = ("truncated", f"data ends at {end}, after the end of the file ({n} bytes)")
        an.add("local_header_mismatch", e.name, f"data runs past the end of the file ({end} > {n})")
        return
    e.data_offset = start
    span_end = end
    if lflags & FLAG_DATA_DESCRIPTOR:
        big = e.compressed_size >= 0xFFFFFFFF or e.size >= 0xFFFFFFFF
        p = end + (4 if data[end : end + 4] == SIG_DESCRIPTOR else 0)
        fmt = "<IQQ" if big else "<III"
        size = struct.calcsize(fmt)
        if p + size <= n:
            dcrc, dcsize, dusize = struct.unpack_from(fmt, data, p)
            span_end = p + size
            if (dcrc, dcsize, dusize) != (e.crc, e.compressed_size, e.size):
                an.add(
                    "local_header_mismatch",
                    e.name,
                    "data descriptor disagrees with the central directory",
                )
    e.span_end = span_end


def _signing_block(data: bytes, cd_offset: int) -> tuple[int, int] | None:
    """(start, end) of an APK Signing Block immediately before the central directory."""
    if cd_offset < 32 or data[cd_offset - 16 : cd_offset] != APK_SIG_BLOCK_MAGIC:
        return None
    size = _U64.unpack_from(data, cd_offset - 24)[0]
    start = cd_offset - size - 8
    if size < 24 or start < 0 or _U64.unpack_from(data, start)[0] != size:
        return None
    return start, cd_offset


def _is_padding(data: bytes, start: int, end: int) -> bool:
    """Zero padding, or zipflinger "virtual entries" (nameless, empty local headers over zeros)."""
    p = start
    while p < end:
        if data[p : p + 4] == SIG_LOCAL and p + _LOCAL.size <= end:
            h = _LOCAL.unpack_from(data, p)
            nxt = p + _LOCAL.size + h[10]
            if h[9] != 0 or h[7] != 0 or h[8] != 0 or nxt > end:
                return False
            if data.count(0, p + _LOCAL.size, nxt) != h[10]:
                return False
            p = nxt
            continue
        q = data.find(SIG_LOCAL, p, end)
        q = end if q < 0 else q
        if data.count(0, p, q) != q - p:
            return False
        p = q if q > p else p + 1
    return True


def _check_layout(
    data: bytes,
    entries: list[Entry],
    cd_offset: int,
    cd_gap_end: int,
    cd_end: int,
    signing: tuple[int, int] | None,
    an: _Anomalies,
) -> None:
    """Prepended data, gaps between entries and overlapping entries."""
    located = sorted((e for e in entries if e.span_end is not None), key=lambda e: e.local_offset)
    first = min((e.local_offset for e in entries), default=0)
    if not data.startswith(SIG_LOCAL):
        what = f"{first} bytes before the first local header" if first else "no local header at offset 0"
        an.add(
            "prepended_data",
            None,
            f"{what} ({_describe_magic(data[:8])}); Android >= 8.1 rejects such files, older versions "
            "are exposed to Janus (CVE-2017-13156)",
        )
    elif first > 0 and not _is_padding(data, 0, first):
        an.add("extra_data", None, f"bytes 0..{first} are not referenced by the central directory")
    cursor = first
    prev: Entry | None = None
    for e in located:
        assert e.span_end is not None
        if prev is not None and e.local_offset < cursor:
            an.add(
                "overlapping_entries",
                e.name,
                f"data at {e.local_offset}..{e.span_end} overlaps {prev.name!r} (ends at {cursor})",
            )
        elif e.local_offset > cursor and not _is_padding(data, cursor, e.local_offset):
            an.add("extra_data", e.name, f"{e.local_offset - cursor} unreferenced bytes before this entry")
        if prev is None or e.span_end > cursor:
            cursor, prev = e.span_end, e
    if cursor > cd_offset and prev is not None:
        an.add("overlapping_entries", prev.name, f"entry data ends at {cursor}, inside the central directory")
    stop = signing[0] if signing else cd_offset
    if located and stop > cursor and not _is_padding(data, cursor, stop):
        an.add(
            "extra_data",
            None,
            f"{stop - cursor} unreferenced bytes between the last entry and the "
            + ("APK Signing Block" if signing else "central directory"),
        )
    if cd_gap_end > cd_end and not _is_padding(data, cd_end, cd_gap_end):
        an.add(
            "extra_data",
            None,
            f"{cd_gap_end - cd_end} bytes between the central directory and its end record",
        )


def open_container(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Container:
    """Parse an APK/ZIP held in memory. Raises AnalysisError / LimitExceeded."""
    if not isinstance(data, bytes):
        data = bytes(data)
    n = len(data)
    if n > limits.max_file_bytes:
        raise LimitExceeded("file_too_large", f"package is {n} bytes (limit {limits.max_file_bytes})")
    if n < _EOCD.size:
        if data.startswith(SIG_LOCAL):
            raise AnalysisError("truncated", f"only {n} bytes; the archive looks truncated")
        raise AnalysisError("not_a_zip", f"only {n} bytes; too small to be a ZIP/APK file")
    an = _Anomalies()
    eocd_pos, eocd = _find_eocd(data, an)
    _sig, disk, cd_disk, count_disk, count, cd_size, cd_offset, clen = eocd
    comment = data[eocd_pos + _EOCD.size : eocd_pos + _EOCD.size + clen]
    cd_limit = eocd_pos  # the CD must end before this
    zip64 = False
    if 0xFFFF in (count_disk, count) or 0xFFFFFFFF in (cd_size, cd_offset):
        loc = eocd_pos - _ZIP64_LOCATOR.size
        if loc >= 0 and data[loc : loc + 4] == SIG_ZIP64_LOCATOR:
            z_off = _ZIP64_LOCATOR.unpack_from(data, loc)[2]
            if z_off + _ZIP64_EOCD.size > loc or data[z_off : z_off + 4] != SIG_ZIP64_EOCD:
                raise AnalysisError("bad_central_directory", "ZIP64 end-of-central-directory record is missing")
            z = _ZIP64_EOCD.unpack_from(data, z_off)
            count, cd_size, cd_offset = z[7], z[8], z[9]
            cd_limit = z_off
            zip64 = True
    if disk != 0 or cd_disk != 0:
        raise AnalysisError("bad_central_directory", "multi-disk (spanned) archives are not supported")
    if count == 0:
        raise AnalysisError("empty_archive", "the central directory declares no entries")
    if count > limits.max_entries:
        raise LimitExceeded("too_many_entries", f"{count} entries (limit {limits.max_entries})")
    if cd_offset + cd_size > cd_limit:
        if cd_offset + cd_size > n or cd_offset >= eocd_pos:
            raise AnalysisError(
                "truncated",
                f"central directory ({cd_offset}+{cd_size}) extends past its end record; archive truncated",
            )
        raise AnalysisError("bad_central_directory", "central directory overlaps its end record")
    if count * _CENTRAL.size > cd_size:
        raise AnalysisError(
            "bad_central_directory", f"central directory of {cd_size} bytes cannot hold {count} entries"
        )
    entries = _parse_central_directory(data, cd_offset, cd_size, count, an)

    seen: dict[str, Entry] = {}
    for e in entries:
        first = seen.setdefault(e.name, e)
        if first is not e:
            an.add(
                "duplicate_entry",
                e.name,
                f"central directory records {first.index} and {e.index} share this name; the first is "
                "read (current Android rejects the archive, zipfile reads the last)",
            )
        if e.method not in (METHOD_STORED, METHOD_DEFLATED):
            mname = _METHOD_NAMES.get(e.method, "unknown")
            an.add(
                "bad_compression_method",
                e.name,
                f"method {e.method} ({mname}) is read as deflate, as Android's asset manager does",
            )
        if e.flags & FLAG_ENCRYPTED:
            an.add("encrypted_flag", e.name, "encryption flag set; Android ignores it and reads the data")
        if e.comment:
            an.add("comment", e.name, f"{len(e.comment)}-byte entry comment")
        _locate_data(data, e, cd_offset, an)

    descriptors = [e for e in entries if e.flags & FLAG_DATA_DESCRIPTOR]
    if descriptors:
        an.add(
            "data_descriptor",
            None,
            f"{len(descriptors)} entries use a trailing data descriptor (first: {descriptors[0].name!r})",
        )
    signing = _signing_block(data, cd_offset)
    _check_layout(data, entries, cd_offset, cd_limit, cd_offset + cd_size, signing, an)
    if comment:
        preview = comment[:40].decode("latin-1").encode("unicode_escape").decode("ascii")
        an.add("comment", None, f"{len(comment)}-byte archive comment: {preview}")
    return Container(
        data,
        entries,
        an.finish(),
        limits,
        cd_offset=cd_offset,
        cd_size=cd_size,
        eocd_offset=eocd_pos,
        comment=comment,
        signing_block=signing,
        zip64=zip64,
    )
