"""The APK Signing Block (schemes v2, v3 and v3.1).

Locating it (it sits right before the ZIP central directory, found from the end of central
directory record), splitting it into ID-value pairs, parsing each v2/v3/v3.1 signer and
verifying its signatures over the signed data with the signer's public key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa

from medrisk.analysis.certs import _CertCollector, _short
from medrisk.analysis.sigparse import _Malformed, _Reader
from medrisk.analysis.x509der import public_key_from_spki, same_public_key

APK_SIG_BLOCK_MAGIC = b"APK Sig Block 42"
V2_BLOCK_ID = 0x7109871A
V3_BLOCK_ID = 0xF05368C0
V31_BLOCK_ID = 0x1B93AD61
SOURCE_STAMP_V1_BLOCK_ID = 0x2B09189E
SOURCE_STAMP_V2_BLOCK_ID = 0x6DFF800D
VERITY_PADDING_BLOCK_ID = 0x42726577
STRIPPING_PROTECTION_ATTR_ID = 0xBEEFF00D  # v2 signed-data attribute: "a v3 block was also made"
ROTATION_MIN_SDK_ATTR_ID = 0x559F8B02  # v3 signed-data attribute: "a v3.1 block was also made"

_MAX_SIGNERS = 16  # Android accepts at most 10 v2 signers

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
        public_key = public_key_from_spki(public_key_der)
    except Exception as exc:  # malformed or unsupported key: named, never raised
        errors.append(f"{where}: public key cannot be parsed: {_short(exc)}")
        return attrs
    if cert is not None and not same_public_key(cert.spki, public_key_der):
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
