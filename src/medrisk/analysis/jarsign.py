"""v1 (JAR) signing: ``META-INF/MANIFEST.MF``, the ``.SF`` files and their PKCS#7 blocks.

Pairs each ``META-INF/<X>.RSA|.DSA|.EC`` signature block with its ``.SF`` file, checks the
``.SF`` digests of ``MANIFEST.MF`` (whole file, else per section, like apksig), parses the
PKCS#7 SignedData to find the signer certificate and verifies its signature over the ``.SF``
file, and records the digest algorithms and ``X-Android-APK-Signed`` schemes it sees.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa

from medrisk.analysis.certs import _SIGNATURE_OID_NAMES, _CertCollector, _short
from medrisk.analysis.errors import LimitExceeded
from medrisk.analysis.sigparse import _children, _der, _expect, _Malformed, _oid, _Tlv
from medrisk.analysis.x509der import Certificate

EntryReader = Callable[[str], bytes | None]

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
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_SIG_BLOCK_EXTENSIONS = (".RSA", ".DSA", ".EC")


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


def entry_digest_matches(manifest: bytes, name: str, data: bytes) -> bool | None:
    """Does ``data`` match the digest(s) ``MANIFEST.MF`` gives for entry ``name``? ``None`` when the
    manifest names no digest in a known algorithm for it. (The v1 check above stops at the
    manifest; callers that hold an entry's bytes, e.g. a signed F-Droid index, finish the chain.)"""
    section = next((s for s in _manifest_sections(manifest)[1:] if s.attrs.get("NAME") == name), None)
    if section is None:
        return None
    results = [_digest_matches(a, v, data) for a, v in _digest_attrs(section.attrs, "-DIGEST").items()]
    if any(r is False for r in results):
        return False
    return True if any(r is True for r in results) else None


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

    def _pkcs7(self, label: str, block: bytes, sf: bytes) -> Certificate | None:
        try:
            parsed = _parse_pkcs7(block)
        except (_Malformed, IndexError) as exc:
            parsed = None
            self.errors.append(f"{label}: PKCS#7 signature block is malformed: {_short(exc)}")
        cert_ders: list[bytes] = parsed.certificates if parsed is not None else []
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
