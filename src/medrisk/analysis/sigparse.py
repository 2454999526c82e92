"""Bounded parsing primitives shared by the APK signing modules.

``_Reader`` does little-endian, length-prefixed reads (APK Signing Block, ``.idsig``) and
``_der``/``_children``/``_oid`` read BER/DER (certificates, PKCS#7). Every read is bounded by
its enclosing buffer; anything that does not fit raises ``_Malformed``, which the signing
modules catch and turn into an entry of ``SigningFacts.errors``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_MAX_DER_DEPTH = 40


# ------------------------------------------------------------------ bounded reads


class _Malformed(Exception):
    """A structure does not fit its enclosing buffer; caught inside the signing modules."""


class _Reader:
    """Little-endian reads over ``buf[pos:end]``; never reads past ``end``."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def _take(self, n: int, what: str) -> int:
        if n < 0 or n > self.remaining:
            raise _Malformed(f"{what}: needs {n} bytes, {self.remaining} left")
        start = self.pos
        self.pos += n
        return start

    def u32(self, what: str = "uint32") -> int:
        start = self._take(4, what)
        return struct.unpack_from("<I", self.buf, start)[0]

    def u64(self, what: str = "uint64") -> int:
        start = self._take(8, what)
        return struct.unpack_from("<Q", self.buf, start)[0]

    def bytes(self, n: int, what: str) -> bytes:
        start = self._take(n, what)
        return self.buf[start : start + n]

    def prefixed(self, what: str) -> _Reader:
        """A uint32-length-prefixed sub-buffer (bounded by this one)."""
        n = self.u32(f"{what} length")
        start = self._take(n, what)
        return _Reader(self.buf, start, start + n)

    def prefixed_bytes(self, what: str) -> bytes:
        sub = self.prefixed(what)
        return sub.buf[sub.pos : sub.end]

    def items(self, what: str) -> list[_Reader]:
        """All length-prefixed items of this (sequence) buffer."""
        out: list[_Reader] = []
        while self.remaining:
            out.append(self.prefixed(f"{what} {len(out) + 1}"))
        return out


# -------------------------------------------------------------------- DER reading


@dataclass(frozen=True)
class _Tlv:
    tag: int  # first identifier octet (class | constructed | number<31), or full number for high tags
    start: int  # offset of the identifier
    cstart: int  # content start
    cend: int  # content end
    end: int  # offset after the element (after EOC for indefinite lengths)


def _der(buf: bytes, pos: int, end: int, depth: int = 0) -> _Tlv:
    """One BER/DER element at ``pos`` (indefinite lengths allowed), bounded by ``end``."""
    if depth > _MAX_DER_DEPTH:
        raise _Malformed("ASN.1 nesting too deep")
    start = pos
    if pos + 2 > end:
        raise _Malformed("ASN.1 element truncated")
    tag = buf[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        number = 0
        while True:
            if pos >= end:
                raise _Malformed("ASN.1 tag truncated")
            b = buf[pos]
            pos += 1
            number = (number << 7) | (b & 0x7F)
            if not b & 0x80:
                break
            if number > 1 << 28:
                raise _Malformed("ASN.1 tag too large")
        tag = (tag & 0xE0) << 24 | number
    if pos >= end:
        raise _Malformed("ASN.1 length truncated")
    first = buf[pos]
    pos += 1
    if first == 0x80:
        if not (buf[start] & 0x20):
            raise _Malformed("indefinite length on a primitive ASN.1 element")
        cstart = pos
        while True:
            if pos + 2 <= end and buf[pos] == 0 and buf[pos + 1] == 0:
                return _Tlv(tag, start, cstart, pos, pos + 2)
            pos = _der(buf, pos, end, depth + 1).end
    if first & 0x80:
        nbytes = first & 0x7F
        if nbytes > 4 or pos + nbytes > end:
            raise _Malformed("ASN.1 length invalid")
        length = int.from_bytes(buf[pos : pos + nbytes], "big")
        pos += nbytes
    else:
        length = first
    if pos + length > end:
        raise _Malformed("ASN.1 element longer than its container")
    return _Tlv(tag, start, pos, pos + length, pos + length)


def _children(buf: bytes, tlv: _Tlv, depth: int = 0) -> list[_Tlv]:
    out = []
    pos = tlv.cstart
    while pos < tlv.cend:
        child = _der(buf, pos, tlv.cend, depth)
        out.append(child)
        pos = child.end
    return out


def _oid(buf: bytes, tlv: _Tlv) -> str:
    if tlv.tag != 0x06:
        raise _Malformed("expected an OBJECT IDENTIFIER")
    raw = buf[tlv.cstart : tlv.cend]
    if not raw:
        raise _Malformed("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for b in raw:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def _expect(tlv: _Tlv, tag: int, what: str) -> _Tlv:
    if tlv.tag != tag:
        raise _Malformed(f"{what}: unexpected ASN.1 tag 0x{tlv.tag:02x}")
    return tlv
