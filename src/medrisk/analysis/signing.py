"""APK signing facts: which signature schemes are present and who signed.

``signing_facts(data, entries, min_sdk)`` takes the whole package bytes (the APK
Signing Block sits right before the ZIP central directory, so the raw file is
needed) and a way to read ``META-INF/`` entries, and returns ``SigningFacts``
whose ``to_dict()`` is the ``signing`` object of docs/indicators.md.

Schemes
  * v1 (JAR signing): a ``META-INF/<X>.RSA|.DSA|.EC`` PKCS#7 signature block with
    its ``META-INF/<X>.SF``. ``v1`` is true when such a pair exists (presence, not
    validity); the signer certificate is the one named by the PKCS#7 SignerInfo.
  * v2 / v3 / v3.1: blocks ``0x7109871a`` / ``0xf05368c0`` / ``0x1b93ad61`` of the
    APK Signing Block. Other blocks (padding ``0x42726577``, source stamps
    ``0x6dff800d`` / ``0x2b09189e``, Play dependency info, channel blocks, ...)
    are ignored. When an id occurs twice the first one counts, as on Android.
  * v4 lives in a separate ``.idsig`` file: false unless its bytes are passed as
    ``idsig=``.

What is checked (problems go to ``errors``; nothing here raises on bad input)
  * v2/v3/v3.1: the block structure (every length prefix is bounded by its
    enclosing buffer), each signer's signatures over its signed data with the
    signer's public key (for algorithms ``cryptography`` supports), public key vs
    first certificate, digest vs signature algorithm lists, v3 SDK ranges, and
    the v2 stripping-protection attribute.
  * v1: the ``.SF`` digests of ``MANIFEST.MF`` (whole file, or per section when
    the whole-file digest does not match, like apksig), the PKCS#7 signature over
    the ``.SF`` file, and ``X-Android-APK-Signed`` (v2/v3 stripped). The digests
    of the other ZIP entries listed in ``MANIFEST.MF`` are *not* recomputed.

Naming
  * ``signature_algorithm`` is the certificate's signature algorithm under its
    ASN.1 / RFC 3279, 4055, 5758 identifier (the OpenSSL long names):
    ``sha256WithRSAEncryption``, ``sha1WithRSAEncryption``, ``md5WithRSAEncryption``,
    ``dsa-with-sha256``, ``ecdsa-with-SHA256``, ``ED25519`` ...; unknown ones are
    the dotted OID.
  * ``v1_digest_algorithms`` are the ``<ALG>-Digest`` attribute names of
    ``MANIFEST.MF`` and the ``.SF`` files, normalised to ``MD5``, ``SHA-1``,
    ``SHA-224``, ``SHA-256``, ``SHA-384``, ``SHA-512`` (others upper-cased as written).
  * ``weak_algorithms`` is a sorted subset of ``MD5``, ``SHA-1`` (v1 digests, the
    PKCS#7 digest, or a certificate signature), ``MD2``/``MD4`` (certificate
    signature), ``DSA`` (any DSA key), ``RSA-<bits>`` (RSA key under 2048 bits)
    and ``EC-<bits>`` (EC key under 224 bits).
  * ``subject``/``issuer`` are RFC 4514 strings (``CN=Android Debug,O=Android,C=US``), with
    ``EMAILADDRESS`` and ``SERIALNUMBER`` named as keytool/apksigner do instead of dotted OIDs.
  * ``serial`` is lower-case hex without ``0x``; ``sha256``/``sha1`` are lower-case
    hex of the certificate DER; dates are ISO 8601 UTC (``2016-01-31T12:00:00Z``).
  * ``self_signed`` means issuer name == subject name; ``is_debug`` means the
    subject has ``CN=Android Debug`` (the SDK's debug keystore).
  * ``certificates`` holds each signer certificate once (deduplicated by SHA-256)
    with the schemes that carry it, sorted by SHA-256. Chain certificates after the
    signer's, and v3 proof-of-rotation (lineage) certificates, are not listed.

Janus (CVE-2017-13156)
  Android 5.0-8.0 devices without the December 2017 patch install a file that is
  both a DEX and an APK when only the v1 signature is checked; Android 7.0+
  checks v1 only when no v2/v3 signature is present. We therefore report
  ``janus_vulnerable`` when v1 is the only scheme (no v2, v3 or v3.1) and
  ``min_sdk < 26`` or ``min_sdk`` is unknown (the threshold of the indicator
  contract; unpatched 8.0 devices, API 26, are also exposed).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import struct
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from medrisk.analysis.errors import LimitExceeded

EntryReader = Callable[[str], bytes | None]

APK_SIG_BLOCK_MAGIC = b"APK Sig Block 42"
V2_BLOCK_ID = 0x7109871A
V3_BLOCK_ID = 0xF05368C0
V31_BLOCK_ID = 0x1B93AD61
SOURCE_STAMP_V1_BLOCK_ID = 0x2B09189E
SOURCE_STAMP_V2_BLOCK_ID = 0x6DFF800D
VERITY_PADDING_BLOCK_ID = 0x42726577
STRIPPING_PROTECTION_ATTR_ID = 0xBEEFF00D  # v2 signed-data attribute: "a v3 block was also made"
ROTATION_MIN_SDK_ATTR_ID = 0x559F8B02  # v3 signed-data attribute: "a v3.1 block was also made"

SCHEME_ORDER = ("v1", "v2", "v3", "v31", "v4")
_MAX_SIGNERS = 16  # Android accepts at most 10 v2 signers
_MAX_ERRORS = 100
_MAX_DER_DEPTH = 40

# v2/v3 signature algorithm id -> (key kind, hash, rsa padding kind)
_SIG_ALGOS: dict[int, tuple[str, type[hashes.HashAlgorithm], str]] = {
    0x0101: ("RSA", hashes.SHA256, "pss"),
    0x0102: ("RSA", hashes.SHA512, "pss"),
    0x0103: ("RSA", hashes.SHA256, "pkcs1"),
    0x0104: ("RSA", hashes.SHA512, "pkcs1"),
    0x0201: ("EC", hashes.SHA256, ""),
    0x0202: ("EC", hashes.SHA512, ""),
    0x0301: ("DSA", hashes.SHA256, ""),
    0x0421: ("RSA", hashes.SHA256, "pkcs1"),  # verity (chunked SHA-256 digest)
    0x0423: ("EC", hashes.SHA256, ""),
    0x0425: ("DSA", hashes.SHA256, ""),
}
# the content digest each signature algorithm implies (the "digests" list must match)
_SIG_ALGO_NAMES = {
    0x0101: "RSASSA-PSS-SHA256",
    0x0102: "RSASSA-PSS-SHA512",
    0x0103: "RSASSA-PKCS1-SHA256",
    0x0104: "RSASSA-PKCS1-SHA512",
    0x0201: "ECDSA-SHA256",
    0x0202: "ECDSA-SHA512",
    0x0301: "DSA-SHA256",
    0x0421: "VERITY-RSASSA-PKCS1-SHA256",
    0x0423: "VERITY-ECDSA-SHA256",
    0x0425: "VERITY-DSA-SHA256",
}

_SIGNATURE_OID_NAMES = {
    "1.2.840.113549.1.1.2": "md2WithRSAEncryption",
    "1.2.840.113549.1.1.3": "md4WithRSAEncryption",
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.10": "rsassaPss",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.3.14.3.2.29": "sha1WithRSA",
    "1.2.840.10040.4.3": "dsa-with-sha1",
    "2.16.840.1.101.3.4.3.1": "dsa-with-sha224",
    "2.16.840.1.101.3.4.3.2": "dsa-with-sha256",
    "2.16.840.1.101.3.4.3.3": "dsa-with-sha384",
    "2.16.840.1.101.3.4.3.4": "dsa-with-sha512",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
}
_KEY_OID_NAMES = {
    "1.2.840.113549.1.1.1": "RSA",
    "1.2.840.113549.1.1.10": "RSA",
    "1.2.840.10040.4.1": "DSA",
    "1.2.840.10045.2.1": "EC",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
}
_DIGEST_OIDS: dict[str, type[hashes.HashAlgorithm]] = {
    "1.2.840.113549.2.5": hashes.MD5,
    "1.3.14.3.2.26": hashes.SHA1,
    "2.16.840.1.101.3.4.2.4": hashes.SHA224,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
_HASH_NAMES = {
    hashes.MD5: "MD5",
    hashes.SHA1: "SHA-1",
    hashes.SHA224: "SHA-224",
    hashes.SHA256: "SHA-256",
    hashes.SHA384: "SHA-384",
    hashes.SHA512: "SHA-512",
}
_JAR_DIGESTS = {
    "MD5": "md5",
    "SHA1": "sha1",
    "SHA-1": "sha1",
    "SHA-224": "sha224",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}
_JAR_DIGEST_NAMES = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha224": "SHA-224",
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
}
# RFC 4514 only names CN, L, ST, O, OU, C, STREET, DC and UID; keytool/apksigner spellings for the rest
_NAME_OVERRIDES = {x509.NameOID.EMAIL_ADDRESS: "EMAILADDRESS", x509.NameOID.SERIAL_NUMBER: "SERIALNUMBER"}
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_SIG_BLOCK_EXTENSIONS = (".RSA", ".DSA", ".EC")


# --------------------------------------------------------------------------- facts


@dataclass
class Schemes:
    v1: bool = False
    v2: bool = False
    v3: bool = False
    v31: bool = False
    v4: bool = False

    def to_dict(self) -> dict[str, bool]:
        return {"v1": self.v1, "v2": self.v2, "v3": self.v3, "v31": self.v31, "v4": self.v4}


@dataclass
class CertificateFacts:
    schemes: list[str]
    subject: str
    issuer: str
    serial: str
    not_before: str
    not_after: str
    key_algorithm: str
    key_size: int | None
    signature_algorithm: str
    sha256: str
    sha1: str
    is_debug: bool
    self_signed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "schemes": list(self.schemes),
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "key_algorithm": self.key_algorithm,
            "key_size": self.key_size,
            "signature_algorithm": self.signature_algorithm,
            "sha256": self.sha256,
            "sha1": self.sha1,
            "is_debug": self.is_debug,
            "self_signed": self.self_signed,
        }


@dataclass
class SigningFacts:
    schemes: Schemes = field(default_factory=Schemes)
    certificates: list[CertificateFacts] = field(default_factory=list)
    v1_digest_algorithms: list[str] = field(default_factory=list)
    v1_only: bool = False
    janus_vulnerable: bool = False
    weak_algorithms: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schemes": self.schemes.to_dict(),
            "certificates": [c.to_dict() for c in self.certificates],
            "v1_digest_algorithms": list(self.v1_digest_algorithms),
            "v1_only": self.v1_only,
            "janus_vulnerable": self.janus_vulnerable,
            "weak_algorithms": list(self.weak_algorithms),
            "errors": list(self.errors),
        }


# ------------------------------------------------------------------ bounded reads


class _Malformed(Exception):
    """A structure does not fit its enclosing buffer; caught inside this module."""


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


# ----------------------------------------------------------------------- ZIP bits


@dataclass
class _ZipLayout:
    eocd_offset: int
    cd_offset: int
    cd_size: int
    cd_entries: int


def _find_eocd(data: bytes) -> _ZipLayout | None:
    n = len(data)
    if n < 22:
        return None
    lowest = max(0, n - 22 - 0xFFFF)
    fallback = -1
    i = n - 22
    while i >= lowest:
        i = data.rfind(b"PK\x05\x06", lowest, i + 4)
        if i < 0:
            break
        comment_len = struct.unpack_from("<H", data, i + 20)[0]
        if i + 22 + comment_len == n:
            fallback = i
            break
        if fallback < 0:
            fallback = i
        i -= 1
    if fallback < 0:
        return None
    eocd = fallback
    entries, cd_size, cd_offset = struct.unpack_from("<HII", data, eocd + 10)
    if (cd_offset == 0xFFFFFFFF or cd_size == 0xFFFFFFFF or entries == 0xFFFF) and eocd >= 20:
        loc = eocd - 20
        if data[loc : loc + 4] == b"PK\x06\x07":
            z64 = struct.unpack_from("<Q", data, loc + 8)[0]
            if z64 + 56 <= n and data[z64 : z64 + 4] == b"PK\x06\x06":
                entries, cd_size, cd_offset = struct.unpack_from("<QQQ", data, z64 + 32)
    return _ZipLayout(eocd, cd_offset, cd_size, entries)


def _central_directory_names(data: bytes, layout: _ZipLayout) -> list[str]:
    names: list[str] = []
    pos = layout.cd_offset
    end = min(len(data), layout.cd_offset + layout.cd_size)
    while pos + 46 <= end and data[pos : pos + 4] == b"PK\x01\x02":
        flags = struct.unpack_from("<H", data, pos + 8)[0]
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        raw = data[pos + 46 : pos + 46 + name_len]
        names.append(raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace"))
        pos += 46 + name_len + extra_len + comment_len
    return names


def _signing_block_pairs(data: bytes, layout: _ZipLayout, errors: list[str]) -> dict[int, bytes] | None:
    """The ID-value pairs of the APK Signing Block, or None when there is none."""
    cd = layout.cd_offset
    if cd < 32 or cd > len(data) or data[cd - 16 : cd] != APK_SIG_BLOCK_MAGIC:
        return None
    size_footer = struct.unpack_from("<Q", data, cd - 24)[0]
    start = cd - size_footer - 8
    if size_footer < 24 or start < 0:
        errors.append(f"APK Signing Block: size {size_footer} does not fit the file")
        return None
    size_header = struct.unpack_from("<Q", data, start)[0]
    if size_header != size_footer:
        errors.append(f"APK Signing Block: header size {size_header} != footer size {size_footer}")
        return None
    pairs: dict[int, bytes] = {}
    reader = _Reader(data, start + 8, cd - 24)
    try:
        while reader.remaining:
            length = reader.u64("APK Signing Block pair length")
            if length < 4:
                raise _Malformed(f"pair length {length} is too small")
            value = reader.bytes(length, "APK Signing Block pair")
            block_id = struct.unpack_from("<I", value, 0)[0]
            if block_id not in pairs:  # Android uses the first block with a given id
                pairs[block_id] = value[4:]
    except _Malformed as exc:
        errors.append(f"APK Signing Block: {exc}")
    return pairs


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


@dataclass
class _SignerInfo:
    issuer: bytes | None
    serial: int | None
    digest_oid: str
    signed_attrs: bytes | None  # DER, re-tagged as SET OF for hashing
    message_digest: bytes | None
    signature_oid: str
    signature: bytes


@dataclass
class _Pkcs7:
    certificates: list[bytes]
    signers: list[_SignerInfo]


def _parse_pkcs7(buf: bytes) -> _Pkcs7:
    """ContentInfo{signedData}: the certificate DERs and the SignerInfos."""
    top = _expect(_der(buf, 0, len(buf)), 0x30, "ContentInfo")
    parts = _children(buf, top)
    if len(parts) < 2 or _oid(buf, parts[0]) != "1.2.840.113549.1.7.2":
        raise _Malformed("not a PKCS#7 SignedData")
    explicit = _expect(parts[1], 0xA0, "SignedData wrapper")
    signed = _children(buf, explicit)
    if not signed:
        raise _Malformed("empty SignedData")
    fields = _children(buf, _expect(signed[0], 0x30, "SignedData"))
    certs: list[bytes] = []
    signer_set: _Tlv | None = None
    for f in fields[3:]:
        if f.tag == 0xA0:
            for c in _children(buf, f):
                if c.tag == 0x30:
                    certs.append(_definite(buf, c))
        elif f.tag == 0x31:
            signer_set = f
    signers: list[_SignerInfo] = []
    if signer_set is not None:
        for si in _children(buf, signer_set):
            signers.append(_parse_signer_info(buf, si))
    return _Pkcs7(certs, signers)


def _definite(buf: bytes, tlv: _Tlv) -> bytes:
    """Element bytes; an indefinite-length outer element is re-encoded with a definite length."""
    if tlv.end == tlv.cend:
        return buf[tlv.start : tlv.end]
    content = buf[tlv.cstart : tlv.cend]
    return bytes([buf[tlv.start]]) + _der_length(len(content)) + content


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _parse_signer_info(buf: bytes, si: _Tlv) -> _SignerInfo:
    f = _children(buf, _expect(si, 0x30, "SignerInfo"))
    if len(f) < 5:
        raise _Malformed("SignerInfo too short")
    issuer = serial = None
    if f[1].tag == 0x30:  # issuerAndSerialNumber
        sid = _children(buf, f[1])
        if len(sid) >= 2 and sid[1].tag == 0x02:
            issuer = _definite(buf, sid[0])
            serial = int.from_bytes(buf[sid[1].cstart : sid[1].cend], "big", signed=True)
    digest_alg = _children(buf, _expect(f[2], 0x30, "digestAlgorithm"))
    digest_oid = _oid(buf, digest_alg[0]) if digest_alg else ""
    idx = 3
    signed_attrs = message_digest = None
    if f[idx].tag == 0xA0:
        attrs = f[idx]
        content = buf[attrs.cstart : attrs.cend]
        signed_attrs = b"\x31" + _der_length(len(content)) + content
        for attr in _children(buf, attrs):
            parts = _children(buf, attr)
            if len(parts) == 2 and _oid(buf, parts[0]) == _OID_MESSAGE_DIGEST:
                values = _children(buf, parts[1])
                if values and values[0].tag == 0x04:
                    message_digest = buf[values[0].cstart : values[0].cend]
        idx += 1
    if idx + 1 >= len(f):
        raise _Malformed("SignerInfo without signature")
    sig_alg = _children(buf, _expect(f[idx], 0x30, "signatureAlgorithm"))
    signature_oid = _oid(buf, sig_alg[0]) if sig_alg else ""
    sig = _expect(f[idx + 1], 0x04, "signature")
    return _SignerInfo(
        issuer, serial, digest_oid, signed_attrs, message_digest, signature_oid, buf[sig.cstart : sig.cend]
    )


def _cert_issuer_serial(der: bytes) -> tuple[bytes, int] | None:
    try:
        cert = _children(der, _der(der, 0, len(der)))
        tbs = _children(der, cert[0])
        i = 1 if tbs and tbs[0].tag == 0xA0 else 0
        serial = int.from_bytes(der[tbs[i].cstart : tbs[i].cend], "big", signed=True)
        return der[tbs[i + 2].start : tbs[i + 2].end], serial
    except (_Malformed, IndexError):
        return None


# ----------------------------------------------------------------- certificates


class _CertCollector:
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        self.by_sha256: dict[str, CertificateFacts] = {}
        self.weak: set[str] = set()

    def add(self, der: bytes, scheme: str, where: str) -> x509.Certificate | None:
        try:
            with _quiet():
                cert = x509.load_der_x509_certificate(der)
                facts = _certificate_facts(cert, der)
        except Exception as exc:  # cryptography parses fields lazily and may raise anything (even KeyError)
            self.errors.append(f"{where}: certificate cannot be parsed: {_short(exc)}")
            return None
        existing = self.by_sha256.get(facts.sha256)
        if existing is None:
            self.by_sha256[facts.sha256] = facts
            existing = facts
            self.weak.update(_cert_weaknesses(facts))
        if scheme not in existing.schemes:
            existing.schemes.append(scheme)
            existing.schemes.sort(key=SCHEME_ORDER.index)
        return cert


def _certificate_facts(cert: x509.Certificate, der: bytes) -> CertificateFacts:
    subject = _name(cert.subject)
    issuer = _name(cert.issuer)
    key_algorithm, key_size = _key_info(cert, der)
    sig_oid = cert.signature_algorithm_oid.dotted_string
    serial = cert.serial_number
    try:
        is_debug = any(
            a.value == "Android Debug" for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        )
    except ValueError:  # pragma: no cover - malformed attribute
        is_debug = re.search(r"(^|,)CN=Android Debug(,|$)", subject) is not None
    return CertificateFacts(
        schemes=[],
        subject=subject,
        issuer=issuer,
        serial=("-" if serial < 0 else "") + format(abs(serial), "x"),
        not_before=_iso(cert, "not_valid_before_utc"),
        not_after=_iso(cert, "not_valid_after_utc"),
        key_algorithm=key_algorithm,
        key_size=key_size,
        signature_algorithm=_SIGNATURE_OID_NAMES.get(sig_oid, sig_oid),
        sha256=hashlib.sha256(der).hexdigest(),
        sha1=hashlib.sha1(der).hexdigest(),
        is_debug=is_debug,
        self_signed=_raw_name(cert, "subject") == _raw_name(cert, "issuer"),
    )


def _name(name: x509.Name) -> str:
    try:
        return name.rfc4514_string(_NAME_OVERRIDES)
    except ValueError:  # pragma: no cover - attribute values cryptography rejects
        return ",".join(f"{a.oid.dotted_string}={a.value!r}" for a in name)


def _raw_name(cert: x509.Certificate, which: str) -> bytes:
    try:
        return getattr(cert, which).public_bytes()
    except ValueError:  # pragma: no cover
        return _name(getattr(cert, which)).encode()


def _iso(cert: x509.Certificate, attr: str) -> str:
    try:
        value: datetime = getattr(cert, attr)
    except ValueError:  # pragma: no cover
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key_info(cert: x509.Certificate, der: bytes) -> tuple[str, int | None]:
    try:
        key = cert.public_key()
    except Exception:  # third-party lazy parsing: any error means "unknown key"
        key = None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    oid = _spki_algorithm_oid(der)
    return _KEY_OID_NAMES.get(oid, oid or "unknown"), None


def _spki_algorithm_oid(der: bytes) -> str:
    try:
        cert = _children(der, _der(der, 0, len(der)))
        tbs = _children(der, cert[0])
        i = 1 if tbs[0].tag == 0xA0 else 0
        spki = _children(der, tbs[i + 5])
        return _oid(der, _children(der, spki[0])[0])
    except (_Malformed, IndexError):
        return ""


def _cert_weaknesses(facts: CertificateFacts) -> set[str]:
    weak: set[str] = set()
    alg = facts.signature_algorithm.lower()
    for prefix, name in (("md2", "MD2"), ("md4", "MD4"), ("md5", "MD5")):
        if alg.startswith(prefix):
            weak.add(name)
    if alg.startswith("sha1") or alg.endswith("sha1"):
        weak.add("SHA-1")
    if facts.key_algorithm == "DSA":
        weak.add("DSA")
    if facts.key_algorithm == "RSA" and facts.key_size is not None and facts.key_size < 2048:
        weak.add(f"RSA-{facts.key_size}")
    if facts.key_algorithm == "EC" and facts.key_size is not None and facts.key_size < 224:
        weak.add(f"EC-{facts.key_size}")
    return weak


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence cryptography's UserWarnings about sloppy encodings (country names longer than
    two letters, unsorted SET OF in PKCS#7): such packages install fine on Android."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


# ------------------------------------------------------------------- v2 / v3


def _verify(public_key: Any, algo_id: int, signature: bytes, message: bytes) -> bool | None:
    """True/False when the signature was checked; None when the algorithm is unsupported."""
    spec = _SIG_ALGOS.get(algo_id)
    if spec is None:
        return None
    kind, hash_cls, rsa_padding = spec
    try:
        if kind == "RSA" and isinstance(public_key, rsa.RSAPublicKey):
            if rsa_padding == "pss":
                salt = hash_cls.digest_size
                pad: padding.AsymmetricPadding = padding.PSS(padding.MGF1(hash_cls()), salt)
            else:
                pad = padding.PKCS1v15()
            public_key.verify(signature, message, pad, hash_cls())
        elif kind == "EC" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, message, ec.ECDSA(hash_cls()))
        elif kind == "DSA" and isinstance(public_key, dsa.DSAPublicKey):
            public_key.verify(signature, message, hash_cls())
        else:
            return False
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return True


def _parse_scheme_block(value: bytes, scheme: str, certs: _CertCollector, errors: list[str]) -> list[dict[int, bytes]]:
    """Parse a v2/v3/v3.1 block; returns each signer's additional attributes."""
    label = {"v2": "v2", "v3": "v3", "v31": "v3.1"}[scheme]
    is_v3 = scheme in ("v3", "v31")
    attributes: list[dict[int, bytes]] = []
    try:
        signers = _Reader(value).prefixed(f"{label} signers").items(f"{label} signer")
    except _Malformed as exc:
        errors.append(f"{label}: {exc}")
        return attributes
    if not signers:
        errors.append(f"{label}: no signers")
    if len(signers) > _MAX_SIGNERS:
        errors.append(f"{label}: {len(signers)} signers, only the first {_MAX_SIGNERS} are read")
    for number, signer in enumerate(signers[:_MAX_SIGNERS], 1):
        where = f"{label} signer {number}"
        try:
            attrs = _parse_signer(signer, is_v3, scheme, where, certs, errors)
        except _Malformed as exc:
            errors.append(f"{where}: {exc}")
            continue
        attributes.append(attrs)
    return attributes


def _parse_signer(
    signer: _Reader, is_v3: bool, scheme: str, where: str, certs: _CertCollector, errors: list[str]
) -> dict[int, bytes]:
    signed_data_reader = signer.prefixed("signed data")
    signed_data = signed_data_reader.buf[signed_data_reader.pos : signed_data_reader.end]
    sdk_range = (signer.u32("min SDK"), signer.u32("max SDK")) if is_v3 else None
    signatures = []
    for item in signer.prefixed("signatures").items("signature"):
        algo = item.u32("signature algorithm id")
        signatures.append((algo, item.prefixed_bytes("signature")))
    public_key_der = signer.prefixed_bytes("public key")

    sd = _Reader(signed_data)
    digest_algos = []
    for item in sd.prefixed("digests").items("digest"):
        digest_algos.append(item.u32("digest algorithm id"))
        item.prefixed_bytes("digest")
    cert_ders = [item.buf[item.pos : item.end] for item in sd.prefixed("certificates").items("certificate")]
    if is_v3:
        sd_range = (sd.u32("signed min SDK"), sd.u32("signed max SDK"))
        if sd_range != sdk_range:
            errors.append(f"{where}: signed SDK range {sd_range} != unsigned {sdk_range}")
        if sdk_range is not None and sdk_range[0] > sdk_range[1]:
            errors.append(f"{where}: min SDK {sdk_range[0]} > max SDK {sdk_range[1]}")
    attrs: dict[int, bytes] = {}
    for item in sd.prefixed("additional attributes").items("additional attribute"):
        attr_id = item.u32("attribute id")
        attrs.setdefault(attr_id, item.buf[item.pos : item.end])

    if not signatures:
        errors.append(f"{where}: no signatures")
    if sorted(a for a, _ in signatures) != sorted(digest_algos):
        errors.append(f"{where}: signature algorithms do not match digest algorithms")

    cert = None
    if not cert_ders:
        errors.append(f"{where}: no certificates")
    else:
        cert = certs.add(cert_ders[0], scheme, where)

    try:
        public_key = serialization.load_der_public_key(public_key_der)
    except Exception as exc:  # third-party parser
        errors.append(f"{where}: public key cannot be parsed: {_short(exc)}")
        return attrs
    if cert is not None:
        try:
            cert_key = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            ours = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        except Exception:  # third-party lazy parsing
            cert_key = ours = b""
        if cert_key and cert_key != ours:
            errors.append(f"{where}: public key does not match the first certificate")

    checked = False
    for algo, sig in signatures:
        result = _verify(public_key, algo, sig, signed_data)
        if result is None:
            continue
        checked = True
        if not result:
            name = _SIG_ALGO_NAMES.get(algo, f"0x{algo:04x}")
            errors.append(f"{where}: signature does not verify ({name})")
    if signatures and not checked:
        ids = ", ".join(f"0x{a:04x}" for a, _ in signatures)
        errors.append(f"{where}: no supported signature algorithm ({ids})")
    return attrs


# ------------------------------------------------------------------------- v1


_LINE_END = re.compile(rb"\r\n|\n|\r")


@dataclass
class _Section:
    start: int
    end: int  # includes the blank line that ends it
    attrs: dict[str, str]  # keys upper-cased


def _manifest_sections(text: bytes) -> list[_Section]:
    sections: list[_Section] = []
    start = 0
    pos = 0
    n = len(text)
    attrs: dict[str, str] = {}
    last: str | None = None
    has_lines = False
    while pos < n:
        m = _LINE_END.search(text, pos)
        line, nxt = (text[pos:], n) if m is None else (text[pos : m.start()], m.end())
        pos = nxt
        if not line:
            if has_lines:
                sections.append(_Section(start, nxt, attrs))
            start, attrs, last, has_lines = nxt, {}, None, False
            continue
        has_lines = True
        if line.startswith(b" ") and last is not None:
            attrs[last] += line[1:].decode("utf-8", errors="replace")
            continue
        key, sep, value = line.decode("utf-8", errors="replace").partition(":")
        if sep:
            last = key.strip().upper()
            attrs.setdefault(last, value[1:] if value.startswith(" ") else value)
    if has_lines:
        sections.append(_Section(start, n, attrs))
    return sections


def _digest_attrs(attrs: dict[str, str], suffix: str) -> dict[str, str]:
    """``{"SHA-256": value}`` for attributes named ``<ALG><suffix>``."""
    out = {}
    for key, value in attrs.items():
        if key.endswith(suffix) and len(key) > len(suffix):
            out[key[: -len(suffix)]] = value
    return out


def _normalise_digest(name: str) -> str:
    algo = _JAR_DIGESTS.get(name)
    return _JAR_DIGEST_NAMES[algo] if algo else name


def _digest_matches(algorithm: str, expected_b64: str, data: bytes) -> bool | None:
    algo = _JAR_DIGESTS.get(algorithm)
    if algo is None:
        return None
    try:
        expected = base64.b64decode(expected_b64.strip(), validate=False)
    except ValueError:
        return False
    return hashlib.new(algo, data).digest() == expected


class _V1:
    def __init__(
        self, read: EntryReader, names: list[str], certs: _CertCollector, errors: list[str], weak: set[str]
    ) -> None:
        self.read = read
        self.names = names
        self.certs = certs
        self.errors = errors
        self.weak = weak
        self.digest_algorithms: set[str] = set()
        self.present = False
        self.apk_signed_schemes: set[int] = set()

    def _get(self, name: str) -> bytes | None:
        try:
            return self.read(name)
        except LimitExceeded:
            raise
        except Exception as exc:  # the reader belongs to the container module
            self.errors.append(f"v1: {name} cannot be read: {_short(exc)}")
            return None

    def run(self) -> None:
        meta = [n for n in self.names if n.startswith("META-INF/") and n.count("/") == 1]
        by_upper: dict[str, str] = {}
        for n in meta:
            by_upper.setdefault(n.upper(), n)
        blocks = sorted(n for n in meta if n.upper().endswith(_SIG_BLOCK_EXTENSIONS))
        pairs = []
        for block in blocks:
            base = block.rsplit(".", 1)[0]
            sf = base + ".SF" if base + ".SF" in meta else by_upper.get((base + ".SF").upper())
            if sf is not None:
                pairs.append((sf, block))
        if not pairs:
            return
        self.present = True
        manifest_name = "META-INF/MANIFEST.MF"
        manifest = self._get(by_upper.get(manifest_name, manifest_name))
        sections: list[_Section] = []
        if manifest is None:
            self.errors.append("v1: META-INF/MANIFEST.MF is missing")
        else:
            sections = _manifest_sections(manifest)
            for section in sections[1:]:
                for algo in _digest_attrs(section.attrs, "-DIGEST"):
                    self.digest_algorithms.add(_normalise_digest(algo))
        for sf_name, block_name in pairs:
            self._signer(sf_name, block_name, manifest, sections)

    def _signer(self, sf_name: str, block_name: str, manifest: bytes | None, sections: list[_Section]) -> None:
        label = f"v1 signer {block_name[len('META-INF/') :]}"
        sf = self._get(sf_name)
        block = self._get(block_name)
        if sf is None or block is None:
            self.errors.append(f"{label}: {sf_name if sf is None else block_name} is empty or unreadable")
            return
        self._pkcs7(label, block, sf)
        sf_sections = _manifest_sections(sf)
        main = sf_sections[0].attrs if sf_sections else {}
        for section in sf_sections:
            for suffix in ("-DIGEST-MANIFEST-MAIN-ATTRIBUTES", "-DIGEST-MANIFEST", "-DIGEST"):
                for algo in _digest_attrs(section.attrs, suffix):
                    self.digest_algorithms.add(_normalise_digest(algo))
        signed = main.get("X-ANDROID-APK-SIGNED", "")
        for token in signed.split(","):
            if token.strip().isdigit():
                self.apk_signed_schemes.add(int(token.strip()))
        if manifest is not None:
            self._check_manifest_digests(label, sf_name, main, sf_sections[1:], manifest, sections)

    def _check_manifest_digests(
        self,
        label: str,
        sf_name: str,
        main: dict[str, str],
        sf_entries: list[_Section],
        manifest: bytes,
        sections: list[_Section],
    ) -> None:
        whole = _digest_attrs(main, "-DIGEST-MANIFEST")
        results = [_digest_matches(a, v, manifest) for a, v in whole.items()]
        if any(r is True for r in results) and not any(r is False for r in results):
            return
        if sections and sections[0].attrs is not None:
            for algo, value in _digest_attrs(main, "-DIGEST-MANIFEST-MAIN-ATTRIBUTES").items():
                main_bytes = manifest[sections[0].start : sections[0].end]
                if _digest_matches(algo, value, main_bytes) is False:
                    self.errors.append(
                        f"{label}: {_normalise_digest(algo)} digest of MANIFEST.MF main attributes "
                        f"does not match {sf_name}"
                    )
        by_name = {s.attrs.get("NAME"): s for s in sections[1:] if "NAME" in s.attrs}
        for entry in sf_entries:
            name = entry.attrs.get("NAME")
            if name is None:
                continue
            section = by_name.get(name)
            if section is None:
                self.errors.append(f"{label}: {name} is in {sf_name} but not in MANIFEST.MF")
                continue
            for algo, value in _digest_attrs(entry.attrs, "-DIGEST").items():
                if _digest_matches(algo, value, manifest[section.start : section.end]) is False:
                    self.errors.append(
                        f"{label}: {_normalise_digest(algo)} digest of MANIFEST.MF section for {name} "
                        f"does not match {sf_name}"
                    )
                    break

    def _pkcs7(self, label: str, block: bytes, sf: bytes) -> x509.Certificate | None:
        try:
            parsed = _parse_pkcs7(block)
        except (_Malformed, IndexError) as exc:
            parsed = None
            self.errors.append(f"{label}: PKCS#7 signature block is malformed: {_short(exc)}")
        cert_ders: list[bytes] = []
        try:
            with _quiet():
                loaded = pkcs7.load_der_pkcs7_certificates(block)
            cert_ders = [c.public_bytes(serialization.Encoding.DER) for c in loaded]
        except Exception:  # cryptography raises e.g. InvalidVersion; use our own parse
            if parsed is not None:
                cert_ders = parsed.certificates
        if parsed is None:
            if cert_ders:
                self.certs.add(cert_ders[0], "v1", label)
            return None
        if not parsed.signers:
            self.errors.append(f"{label}: PKCS#7 block has no SignerInfo")
            if cert_ders:
                self.certs.add(cert_ders[0], "v1", label)
            return None
        signer = parsed.signers[0]
        if len(parsed.signers) > 1:
            self.errors.append(f"{label}: {len(parsed.signers)} SignerInfos, only the first is used")
        hash_cls = _DIGEST_OIDS.get(signer.digest_oid)
        if hash_cls in (hashes.MD5, hashes.SHA1):
            self.weak.add(_HASH_NAMES[hash_cls])
        sig_name = _SIGNATURE_OID_NAMES.get(signer.signature_oid, "")
        if sig_name.startswith("md5"):
            self.weak.add("MD5")
        elif "sha1" in sig_name.lower():
            self.weak.add("SHA-1")
        # The SignerInfo names its certificate by issuer and serial; the issuer may be
        # encoded differently (PrintableString vs UTF8String), so the serial decides and
        # the raw issuer only breaks ties.
        candidates = []
        for der in cert_ders:
            ident = _cert_issuer_serial(der)
            if ident is not None and ident[1] == signer.serial:
                candidates.append((ident[0] != signer.issuer, len(candidates), der))
        chosen = min(candidates)[2] if candidates else None
        if chosen is None:
            self.errors.append(f"{label}: no certificate matches the PKCS#7 SignerInfo")
            if not cert_ders:
                return None
            chosen = cert_ders[0]
        cert = self.certs.add(chosen, "v1", label)
        if cert is None or hash_cls is None:
            return cert
        message = sf
        if signer.signed_attrs is not None:
            digest = hashes.Hash(hash_cls())
            digest.update(sf)
            if signer.message_digest != digest.finalize():
                self.errors.append(f"{label}: PKCS#7 messageDigest does not match the .SF file")
                return cert
            message = signer.signed_attrs
        try:
            key = cert.public_key()
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signer.signature, message, padding.PKCS1v15(), hash_cls())
            elif isinstance(key, dsa.DSAPublicKey):
                key.verify(signer.signature, message, hash_cls())
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signer.signature, message, ec.ECDSA(hash_cls()))
        except InvalidSignature:
            self.errors.append(f"{label}: signature does not verify")
        except Exception:  # unsupported digest/key or unparsable key: the signature is not checked
            return cert
        return cert


# ------------------------------------------------------------------------- v4


def _parse_idsig(idsig: bytes, certs: _CertCollector, errors: list[str]) -> bool:
    """v4 ``.idsig``: version, hashing info, signing info (digest, certificate, ...)."""
    try:
        r = _Reader(idsig)
        version = r.u32("version")
        if version not in (2, 3):
            errors.append(f"v4: unsupported .idsig version {version}")
            return False
        r.prefixed("hashing info")
        info = r.prefixed("signing info")
        info.prefixed("apk digest")
        cert_der = info.prefixed_bytes("certificate")
    except _Malformed as exc:
        errors.append(f"v4: {exc}")
        return False
    certs.add(cert_der, "v4", "v4 signer")
    return True


# ------------------------------------------------------------------------ entry


def signing_facts(
    data: bytes,
    entries: Mapping[str, bytes] | EntryReader,
    min_sdk: int | None,
    *,
    idsig: bytes | None = None,
) -> SigningFacts:
    """Signing facts of an APK.

    ``data``: the whole package. ``entries``: a mapping of entry name to bytes, or a
    ``read_entry(name) -> bytes | None`` callable (only ``META-INF/`` files are read;
    names are taken from the mapping or from the central directory in ``data``).
    ``min_sdk``: the manifest's minSdkVersion (None when unknown). ``idsig``: the
    bytes of a v4 ``.idsig`` file when one accompanies the package.
    """
    facts = SigningFacts()
    errors = facts.errors
    certs = _CertCollector(errors)
    weak: set[str] = set()

    layout = _find_eocd(data)
    pairs: dict[int, bytes] | None = None
    names: list[str] = []
    if layout is None:
        errors.append("zip: end of central directory record not found")
    else:
        pairs = _signing_block_pairs(data, layout, errors)
        names = _central_directory_names(data, layout)

    if isinstance(entries, Mapping):
        mapping = entries
        names = sorted(set(names) | set(mapping))

        def read(name: str) -> bytes | None:
            return mapping.get(name)
    else:
        read = entries

    v1 = _V1(read, names, certs, errors, weak)
    v1.run()
    facts.schemes.v1 = v1.present
    facts.v1_digest_algorithms = sorted(v1.digest_algorithms)
    for algo in v1.digest_algorithms:
        if algo in ("MD5", "SHA-1"):
            weak.add(algo)

    attrs: dict[str, list[dict[int, bytes]]] = {}
    if pairs:
        for scheme, block_id in (("v2", V2_BLOCK_ID), ("v3", V3_BLOCK_ID), ("v31", V31_BLOCK_ID)):
            if block_id in pairs:
                setattr(facts.schemes, scheme, True)
                attrs[scheme] = _parse_scheme_block(pairs[block_id], scheme, certs, errors)
    s = facts.schemes
    for signer_attrs in attrs.get("v2", []):
        value = signer_attrs.get(STRIPPING_PROTECTION_ATTR_ID)
        if value is not None and len(value) >= 4:
            stripped = struct.unpack_from("<I", value, 0)[0]
            if stripped == 3 and not s.v3:
                errors.append("v2: stripping protection says a v3 signature was removed")
    if any(ROTATION_MIN_SDK_ATTR_ID in a for a in attrs.get("v3", [])) and not s.v31:
        errors.append("v3: rotation-min-sdk attribute says a v3.1 signature was removed")
    if 2 in v1.apk_signed_schemes and not s.v2:
        errors.append("v1: X-Android-APK-Signed says APK Signature Scheme v2 but the v2 block is missing")
    if 3 in v1.apk_signed_schemes and not s.v3:
        errors.append("v1: X-Android-APK-Signed says APK Signature Scheme v3 but the v3 block is missing")

    if idsig is not None:
        s.v4 = _parse_idsig(idsig, certs, errors)

    facts.certificates = sorted(certs.by_sha256.values(), key=lambda c: c.sha256)
    weak |= certs.weak
    facts.weak_algorithms = sorted(weak)
    facts.v1_only = s.v1 and not (s.v2 or s.v3 or s.v31)
    facts.janus_vulnerable = facts.v1_only and (min_sdk is None or min_sdk < 26)
    if len(errors) > _MAX_ERRORS:
        dropped = len(errors) - _MAX_ERRORS
        del errors[_MAX_ERRORS:]
        errors.append(f"... {dropped} more errors")
    return facts
