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

Modules
  This module holds the facts types and ``signing_facts`` (plus the v4 ``.idsig`` read).
  The APK Signing Block (v2/v3/v3.1) is in ``apksigblock.py``, v1 JAR signing in
  ``jarsign.py``, certificate facts in ``certs.py`` and the bounded binary/DER readers in
  ``sigparse.py``; public names are re-exported here.

Janus (CVE-2017-13156)
  Android 5.0-8.0 devices without the December 2017 patch install a file that is
  both a DEX and an APK when only the v1 signature is checked; Android 7.0+
  checks v1 only when no v2/v3 signature is present. We therefore report
  ``janus_vulnerable`` when v1 is the only scheme (no v2, v3 or v3.1) and
  ``min_sdk < 26`` or ``min_sdk`` is unknown (the threshold of the indicator
  contract; unpatched 8.0 devices, API 26, are also exposed).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medrisk.analysis.apksigblock import (
    APK_SIG_BLOCK_MAGIC,
    ROTATION_MIN_SDK_ATTR_ID,
    SOURCE_STAMP_V1_BLOCK_ID,
    SOURCE_STAMP_V2_BLOCK_ID,
    STRIPPING_PROTECTION_ATTR_ID,
    V2_BLOCK_ID,
    V3_BLOCK_ID,
    V31_BLOCK_ID,
    VERITY_PADDING_BLOCK_ID,
    _central_directory_names,
    _find_eocd,
    _parse_scheme_block,
    _signing_block_pairs,
)
from medrisk.analysis.apksigblock import _verify as _verify  # re-exported for the tests
from medrisk.analysis.certs import SCHEME_ORDER, CertificateFacts, _CertCollector
from medrisk.analysis.jarsign import _V1, EntryReader
from medrisk.analysis.sigparse import _Malformed, _Reader

__all__ = [
    "APK_SIG_BLOCK_MAGIC",
    "ROTATION_MIN_SDK_ATTR_ID",
    "SCHEME_ORDER",
    "SOURCE_STAMP_V1_BLOCK_ID",
    "SOURCE_STAMP_V2_BLOCK_ID",
    "STRIPPING_PROTECTION_ATTR_ID",
    "V2_BLOCK_ID",
    "V31_BLOCK_ID",
    "V3_BLOCK_ID",
    "VERITY_PADDING_BLOCK_ID",
    "CertificateFacts",
    "EntryReader",
    "Schemes",
    "SigningFacts",
    "signing_facts",
]

_MAX_ERRORS = 100


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
