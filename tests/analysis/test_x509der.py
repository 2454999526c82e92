"""The lean X.509 reader against cryptography.x509, field by field.

Certificates: every signer certificate of the corpus (PKCS#7 blocks under META-INF) and
generated ones with the awkward parts (escaping, multi-valued RDNs, BMP/Teletex strings,
unknown attribute types, negative serials, GeneralizedTime, EC/DSA/Ed25519 keys)."""

from __future__ import annotations

import datetime as dt
import zipfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from medrisk.analysis.sigparse import _Malformed
from medrisk.analysis.x509der import parse_certificate, public_key_from_spki, same_public_key
from tests.conftest import corpus_apks

OVERRIDES = {NameOID.EMAIL_ADDRESS: "EMAILADDRESS", NameOID.SERIAL_NUMBER: "SERIALNUMBER"}


def _expected(der: bytes) -> dict:
    c = x509.load_der_x509_certificate(der)
    key = c.public_key()
    return {
        "subject": c.subject.rfc4514_string(OVERRIDES),
        "issuer": c.issuer.rfc4514_string(OVERRIDES),
        "serial": c.serial_number,
        "not_before": c.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": c.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "signature_oid": c.signature_algorithm_oid.dotted_string,
        "key_size": getattr(key, "key_size", 256 if isinstance(key, ed25519.Ed25519PublicKey) else None),
        "spki": key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "cns": tuple(a.value for a in c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)),
        "self_signed": c.subject.public_bytes() == c.issuer.public_bytes(),
    }


def _ours(der: bytes) -> dict:
    c = parse_certificate(der)
    return {
        "subject": c.subject,
        "issuer": c.issuer,
        "serial": c.serial,
        "not_before": c.not_before,
        "not_after": c.not_after,
        "signature_oid": c.signature_oid,
        "key_size": c.key_info()[1],
        "spki": c.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "cns": c.subject_cns,
        "self_signed": c.subject_der == c.issuer_der,
    }


def _corpus_certs() -> list[tuple[str, bytes]]:
    out = []
    for apk in corpus_apks():
        with zipfile.ZipFile(apk) as z:
            for name in z.namelist():
                if name.startswith("META-INF/") and name.rsplit(".", 1)[-1] in ("RSA", "DSA", "EC"):
                    try:
                        certs = pkcs7.load_der_pkcs7_certificates(z.read(name))
                    except ValueError:
                        continue
                    out += [(f"{apk.name}:{name}", c.public_bytes(serialization.Encoding.DER)) for c in certs]
    return out


def test_every_corpus_certificate_reads_as_cryptography_reads_it():
    certs = _corpus_certs()
    assert len(certs) >= 50
    for where, der in certs:
        assert _ours(der) == _expected(der), where


def _build(subject: x509.Name, key, serial: int, not_after: dt.datetime, sign_key=None) -> bytes:
    sign_key = sign_key or key
    algo = None if isinstance(sign_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.UTC))
        .not_valid_after(not_after)
        .sign(sign_key, algo)
    )
    return cert.public_bytes(serialization.Encoding.DER)


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
AWKWARD_NAMES = [
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Android Debug")]),
    x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'A, "B" + C; <D> \\ E'),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "#lead and trail "),
            x509.NameAttribute(NameOID.COMMON_NAME, " 北京医院\0"),
        ]
    ),
    x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "multi"),
                    x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.cn"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.SERIAL_NUMBER, "42")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.TITLE, "unknown type")]),
        ]
    ),
    x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "BMP 医", x509.name._ASN1Type.BMPString),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Tëletex", x509.name._ASN1Type.T61String),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
            x509.NameAttribute(NameOID.USER_ID, "uid"),
        ]
    ),
]


@pytest.mark.parametrize("index", range(len(AWKWARD_NAMES)))
def test_awkward_names_render_as_cryptography_renders_them(index):
    der = _build(AWKWARD_NAMES[index], RSA_KEY, 7, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert _ours(der) == _expected(der)


@pytest.mark.parametrize(
    "key",
    [
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP384R1()),
        dsa.generate_private_key(2048),
        ed25519.Ed25519PrivateKey.generate(),
    ],
    ids=["ec256", "ec384", "dsa2048", "ed25519"],
)
def test_key_algorithms_sizes_and_long_validity(key):
    # 2060 needs GeneralizedTime; a negative serial is what some old signers produced
    der = _build(AWKWARD_NAMES[0], key, 12345, dt.datetime(2060, 5, 6, 7, 8, 9, tzinfo=dt.UTC))
    assert _ours(der) == _expected(der)
    alg, _size = parse_certificate(der).key_info()
    expected = (
        "EC"
        if isinstance(key, ec.EllipticCurvePrivateKey)
        else "DSA"
        if isinstance(key, dsa.DSAPrivateKey)
        else "Ed25519"
    )
    assert alg == expected


def test_negative_serial_and_debug_cn():
    base = _build(AWKWARD_NAMES[0], RSA_KEY, 1, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    cert = parse_certificate(base)
    assert cert.subject_cns == ("Android Debug",)
    # patch the one-byte serial INTEGER to 0xff (= -1), as old keytool certificates had
    i = base.index(b"\x02\x01\x01")
    neg = base[:i] + b"\x02\x01\xff" + base[i + 3 :]
    assert parse_certificate(neg).serial == -1


def test_same_public_key_compares_numbers_not_bytes():
    spki = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    other_spki = other.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert same_public_key(spki, spki)
    assert not same_public_key(spki, other_spki)
    # the same key without the NULL parameters (an encoding some signers emit)
    n = RSA_KEY.public_key().public_numbers()
    rsa_oid = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"
    key = _tlv(0x30, _int(n.n) + _int(n.e))
    no_null = _tlv(0x30, _tlv(0x30, rsa_oid) + _tlv(0x03, b"\x00" + key))
    assert no_null != spki
    assert same_public_key(spki, no_null)
    assert not same_public_key(spki, b"\x30\x00")


def _int(v: int) -> bytes:
    return _tlv(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = (
        bytes([n])
        if n < 128
        else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return bytes([tag]) + length + body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=700))
def test_hostile_bytes_raise_named_errors_only(noise, cut):
    base = _build(AWKWARD_NAMES[1], RSA_KEY, 9, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    for der in (noise, base[:cut], base[:cut] + noise, noise + base[cut:]):
        try:
            cert = parse_certificate(der)
            cert.key_info()
        except (_Malformed, ValueError, IndexError):
            pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=255))
def test_single_byte_corruptions_never_crash_the_key_loader(pos, value):
    spki = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pos %= len(spki)
    bad = spki[:pos] + bytes([value]) + spki[pos + 1 :]
    try:
        public_key_from_spki(bad)
    except (_Malformed, ValueError, IndexError):
        pass
