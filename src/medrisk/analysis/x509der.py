"""A lean X.509 certificate reader for signing facts: bytes in, fields out.

Why our own: ``cryptography.x509`` costs 15–30 ms to import, a tenth of a whole
``medrisk scan`` process on a median APK, and the scanner needs only a handful of fields of
the signer certificate. This reader returns exactly those (names, serial, validity, key
algorithm and size, signature algorithm, the raw SubjectPublicKeyInfo), over the bounded
DER primitives in ``sigparse``. Its names follow ``cryptography``'s RFC 4514 rendering (same
attribute short names, escaping and order) so reports did not change when it replaced that
library; ``tests/analysis/test_x509der.py`` checks it against ``cryptography`` field by field on
every corpus certificate and on fuzzed input.

Public keys for signature verification are built from their numbers (``public_key``), which
needs only ``cryptography``'s light asymmetric modules, not its x509 or serialization packages.
It is more lenient than ``cryptography`` (as Android is): unknown string types render as
``#hex`` instead of failing the whole certificate.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from medrisk.analysis.sigparse import _children, _der, _Malformed, _oid, _Tlv

# cryptography's rfc4514 short names, plus the keytool/apksigner spellings we always used
_ATTR_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
    "1.2.840.113549.1.9.1": "EMAILADDRESS",
    "2.5.4.5": "SERIALNUMBER",
}
_EC_CURVE_BITS = {
    "1.2.840.10045.3.1.1": 192,
    "1.3.132.0.33": 224,
    "1.2.840.10045.3.1.7": 256,
    "1.3.132.0.34": 384,
    "1.3.132.0.35": 521,
    "1.3.132.0.10": 256,
    "1.3.36.3.3.2.8.1.1.7": 256,
    "1.3.36.3.3.2.8.1.1.11": 384,
    "1.3.36.3.3.2.8.1.1.13": 512,
}
_EC_CURVE_NAMES = {
    "1.2.840.10045.3.1.1": "SECP192R1",
    "1.3.132.0.33": "SECP224R1",
    "1.2.840.10045.3.1.7": "SECP256R1",
    "1.3.132.0.34": "SECP384R1",
    "1.3.132.0.35": "SECP521R1",
    "1.3.132.0.10": "SECP256K1",
    "1.3.36.3.3.2.8.1.1.7": "BrainpoolP256R1",
    "1.3.36.3.3.2.8.1.1.11": "BrainpoolP384R1",
    "1.3.36.3.3.2.8.1.1.13": "BrainpoolP512R1",
}
_RSA_OIDS = {"1.2.840.113549.1.1.1", "1.2.840.113549.1.1.10"}
_DSA_OID = "1.2.840.10040.4.1"
_EC_OID = "1.2.840.10045.2.1"
_KEY_NAMES = {_DSA_OID: "DSA", _EC_OID: "EC", "1.3.101.112": "Ed25519", "1.3.101.113": "Ed448"}


@dataclass(frozen=True)
class Certificate:
    der: bytes
    subject: str
    issuer: str
    subject_der: bytes
    issuer_der: bytes
    subject_cns: tuple[str, ...]
    serial: int
    not_before: str
    not_after: str
    signature_oid: str
    key_oid: str
    key_params: bytes  # DER of the AlgorithmIdentifier parameters (b"" when absent)
    key_bits: bytes  # the BIT STRING's content without its unused-bits octet
    spki: bytes

    def key_info(self) -> tuple[str, int | None]:
        """(algorithm, size in bits), as cryptography's key objects report them."""
        try:
            if self.key_oid in _RSA_OIDS:
                n, _e = _ints(self.key_bits, 2)
                return "RSA", n.bit_length()
            if self.key_oid == _DSA_OID:
                (p, _q, _g) = _ints(self.key_params, 3)
                return "DSA", p.bit_length()
            if self.key_oid == _EC_OID:
                return "EC", _EC_CURVE_BITS.get(_params_oid(self.key_params))
        except (_Malformed, ValueError, IndexError):
            pass
        if self.key_oid == "1.3.101.112" and len(self.key_bits) == 32:
            return "Ed25519", 256
        if self.key_oid == "1.3.101.113" and len(self.key_bits) == 57:
            return "Ed448", 456
        if self.key_oid in _RSA_OIDS:
            return "RSA", None
        return _KEY_NAMES.get(self.key_oid, self.key_oid or "unknown"), None

    def public_key(self) -> Any:
        return public_key_from_spki(self.spki)


def parse_certificate(der: bytes) -> Certificate:
    """Raise ``_Malformed`` (or ``ValueError``) when ``der`` is not a readable certificate."""
    outer = _der(der, 0, len(der))
    if outer.tag != 0x30:
        raise _Malformed("certificate is not a SEQUENCE")
    parts = _children(der, outer)
    if len(parts) < 3:
        raise _Malformed("certificate has fewer than 3 parts")
    tbs = _children(der, parts[0])
    i = 1 if tbs and tbs[0].tag == 0xA0 else 0
    if len(tbs) < i + 6:
        raise _Malformed("TBSCertificate is too short")
    serial_tlv, _sig_inner, issuer, validity, subject, spki = tbs[i : i + 6]
    if serial_tlv.tag != 0x02 or serial_tlv.cstart == serial_tlv.cend:
        raise _Malformed("certificate serial is not an INTEGER")
    sig_alg = _children(der, parts[1])
    times = _children(der, validity)
    if len(times) != 2:
        raise _Malformed("validity needs two times")
    key_alg, key_bits_tlv = _children(der, spki)[:2]
    alg = _children(der, key_alg)
    if key_bits_tlv.tag != 0x03 or key_bits_tlv.cstart == key_bits_tlv.cend:
        raise _Malformed("public key is not a BIT STRING")
    subject_name, subject_cns = _name(der, subject)
    issuer_name, _ = _name(der, issuer)
    return Certificate(
        der=der,
        subject=subject_name,
        issuer=issuer_name,
        subject_der=der[subject.start : subject.end],
        issuer_der=der[issuer.start : issuer.end],
        subject_cns=subject_cns,
        serial=int.from_bytes(der[serial_tlv.cstart : serial_tlv.cend], "big", signed=True),
        not_before=_time(der, times[0]),
        not_after=_time(der, times[1]),
        signature_oid=_oid(der, sig_alg[0]),
        key_oid=_oid(der, alg[0]),
        key_params=der[alg[1].start : alg[1].end] if len(alg) > 1 else b"",
        key_bits=der[key_bits_tlv.cstart + 1 : key_bits_tlv.cend],
        spki=der[spki.start : spki.end],
    )


def public_key_from_spki(spki: bytes) -> Any:
    """A cryptography public key built from a SubjectPublicKeyInfo's numbers (RSA, DSA, EC,
    Ed25519); raise ``_Malformed``/``ValueError`` for anything else."""
    top = _children(spki, _der(spki, 0, len(spki)))
    if len(top) < 2 or top[1].tag != 0x03:
        raise _Malformed("SubjectPublicKeyInfo is malformed")
    alg = _children(spki, top[0])
    oid = _oid(spki, alg[0])
    params = spki[alg[1].start : alg[1].end] if len(alg) > 1 else b""
    bits = spki[top[1].cstart + 1 : top[1].cend]
    if oid in _RSA_OIDS:
        from cryptography.hazmat.primitives.asymmetric import rsa

        n, e = _ints(bits, 2)
        return rsa.RSAPublicNumbers(e, n).public_key()
    if oid == _DSA_OID:
        from cryptography.hazmat.primitives.asymmetric import dsa

        p, q, g = _ints(params, 3)
        (y,) = _ints(bits, 1, sequence=False)
        return dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(p, q, g)).public_key()
    if oid == _EC_OID:
        from cryptography.hazmat.primitives.asymmetric import ec

        curve = _EC_CURVE_NAMES.get(_params_oid(params))
        if curve is None:
            raise ValueError("unsupported elliptic curve")
        return ec.EllipticCurvePublicKey.from_encoded_point(getattr(ec, curve)(), bits)
    if oid == "1.3.101.112":
        from cryptography.hazmat.primitives.asymmetric import ed25519

        return ed25519.Ed25519PublicKey.from_public_bytes(bits)
    raise ValueError(f"unsupported public key algorithm {oid}")


def same_public_key(a: bytes, b: bytes) -> bool:
    """Whether two SubjectPublicKeyInfo encodings carry the same key (numbers, not bytes:
    a BER-encoded or NULL-less parameter field does not make a mismatch)."""
    if a == b:
        return True
    try:
        return _key_identity(a) == _key_identity(b)
    except (_Malformed, ValueError, IndexError):
        return False


def _key_identity(spki: bytes) -> tuple:
    top = _children(spki, _der(spki, 0, len(spki)))
    alg = _children(spki, top[0])
    oid = _oid(spki, alg[0])
    bits = spki[top[1].cstart + 1 : top[1].cend]
    if oid in _RSA_OIDS:
        return ("RSA", *_ints(bits, 2))
    params = spki[alg[1].start : alg[1].end] if len(alg) > 1 else b""
    return (oid, params, bits)


# ----------------------------------------------------------------- helpers


def _ints(buf: bytes, count: int, sequence: bool = True) -> list[int]:
    """``count`` INTEGERs, inside a SEQUENCE (or bare when ``sequence`` is False)."""
    if sequence:
        items = _children(buf, _der(buf, 0, len(buf)))
    else:
        items = [_der(buf, 0, len(buf))]
    if len(items) < count or any(t.tag != 0x02 for t in items[:count]):
        raise _Malformed("expected INTEGERs")
    return [int.from_bytes(buf[t.cstart : t.cend], "big", signed=True) for t in items[:count]]


def _params_oid(params: bytes) -> str:
    if not params:
        raise _Malformed("missing curve")
    return _oid(params, _der(params, 0, len(params)))


def _decode_value(der: bytes, tlv: _Tlv) -> str | bytes:
    raw = der[tlv.cstart : tlv.cend]
    tag = tlv.tag
    if tag == 0x0C:  # UTF8String
        return raw.decode("utf-8")
    if tag in (0x13, 0x16, 0x12, 0x1A):  # Printable, IA5, Numeric, Visible
        return raw.decode("ascii") if raw.isascii() else raw.decode("latin-1")
    if tag == 0x14:  # T61String: UTF-8 as cryptography reads it, Latin-1 when that fails
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    if tag == 0x1E:  # BMPString
        return raw.decode("utf-16-be")
    if tag == 0x1C:  # UniversalString
        return raw.decode("utf-32-be")
    return der[tlv.start : tlv.end]  # anything else as its encoding, rendered #hex


def _escape(val: str | bytes) -> str:
    """RFC 4514 §2.4 escaping, exactly as cryptography renders it."""
    if not val:
        return ""
    if isinstance(val, bytes):
        return "#" + binascii.hexlify(val).decode()
    for ch, rep in (
        ("\\", "\\\\"),
        ('"', '\\"'),
        ("+", "\\+"),
        (",", "\\,"),
        (";", "\\;"),
        ("<", "\\<"),
        (">", "\\>"),
        ("\0", "\\00"),
    ):
        val = val.replace(ch, rep)
    if val[0] == "#" or (val[0] == " " and len(val) > 1):
        val = "\\" + val
    if val[-1] == " ":
        val = val[:-1] + "\\ "
    return val


def _name(der: bytes, name: _Tlv) -> tuple[str, tuple[str, ...]]:
    """RFC 4514 string (RDNs in reverse order, attributes of one RDN joined by '+') and the
    common names."""
    if name.tag != 0x30:
        raise _Malformed("Name is not a SEQUENCE")
    rdns: list[str] = []
    cns: list[str] = []
    for rdn in _children(der, name):
        if rdn.tag != 0x31:
            raise _Malformed("RDN is not a SET")
        parts = []
        for atv in _children(der, rdn):
            kids = _children(der, atv)
            if len(kids) != 2:
                raise _Malformed("AttributeTypeAndValue needs a type and a value")
            oid = _oid(der, kids[0])
            value = _decode_value(der, kids[1])
            if oid == "2.5.4.3" and isinstance(value, str):
                cns.append(value)
            parts.append(f"{_ATTR_NAMES.get(oid, oid)}={_escape(value)}")
        if not parts:
            raise _Malformed("empty RDN")
        rdns.append("+".join(parts))
    return ",".join(reversed(rdns)), tuple(cns)


def _time(der: bytes, tlv: _Tlv) -> str:
    text = der[tlv.cstart : tlv.cend].decode("ascii")
    if tlv.tag == 0x17:  # UTCTime YYMMDDHHMM[SS]Z
        yy = int(text[:2])
        text = ("19" if yy >= 50 else "20") + text
    elif tlv.tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSS[.f]Z
        raise _Malformed("validity time has an unknown type")
    if not text.endswith("Z"):
        raise _Malformed("validity time is not in UTC")
    body = text[:-1].split(".")[0]
    if len(body) == 12:
        body += "00"
    if len(body) != 14 or not body.isdigit():
        raise _Malformed("validity time is malformed")
    value = datetime(
        int(body[:4]), int(body[4:6]), int(body[6:8]), int(body[8:10]), int(body[10:12]), int(body[12:14]), tzinfo=UTC
    )
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
