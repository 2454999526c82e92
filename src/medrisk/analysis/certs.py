"""Certificate facts for the signing report: subject/issuer names, key and signature
algorithms, fingerprints, and the weaknesses they imply (see ``signing.py`` for naming rules).

``_CertCollector`` gathers the signer certificates of every scheme, deduplicated by SHA-256.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from medrisk.analysis.sigparse import _children, _der, _Malformed, _oid

SCHEME_ORDER = ("v1", "v2", "v3", "v31", "v4")

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
# RFC 4514 only names CN, L, ST, O, OU, C, STREET, DC and UID; keytool/apksigner spellings for the rest
_NAME_OVERRIDES = {x509.NameOID.EMAIL_ADDRESS: "EMAILADDRESS", x509.NameOID.SERIAL_NUMBER: "SERIALNUMBER"}


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
