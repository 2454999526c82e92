"""Certificate facts for the signing report: subject/issuer names, key and signature
algorithms, fingerprints, and the weaknesses they imply (see ``signing.py`` for naming rules).

``_CertCollector`` gathers the signer certificates of every scheme, deduplicated by SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from medrisk.analysis.sigparse import _Malformed
from medrisk.analysis.x509der import Certificate, parse_certificate

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

    def add(self, der: bytes, scheme: str, where: str) -> Certificate | None:
        try:
            cert = parse_certificate(der)
            facts = _certificate_facts(cert)
        except (_Malformed, ValueError, IndexError) as exc:
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


def _certificate_facts(cert: Certificate) -> CertificateFacts:
    key_algorithm, key_size = cert.key_info()
    serial = cert.serial
    return CertificateFacts(
        schemes=[],
        subject=cert.subject,
        issuer=cert.issuer,
        serial=("-" if serial < 0 else "") + format(abs(serial), "x"),
        not_before=cert.not_before,
        not_after=cert.not_after,
        key_algorithm=key_algorithm,
        key_size=key_size,
        signature_algorithm=_SIGNATURE_OID_NAMES.get(cert.signature_oid, cert.signature_oid),
        sha256=hashlib.sha256(cert.der).hexdigest(),
        sha1=hashlib.sha1(cert.der).hexdigest(),
        is_debug="Android Debug" in cert.subject_cns,
        self_signed=cert.subject_der == cert.issuer_der,
    )


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


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
