"""Password-encrypted PKCS#8 (RFC 5958 EncryptedPrivateKeyInfo, PBES2 of RFC 8018).

tongsuopy's own ``BestAvailableEncryption`` uses PBKDF2 with only 2048 iterations and an
8-byte salt, so we write the envelope ourselves: PBKDF2-HMAC-SHA256 (OpenSSL 3.0 cannot
read the hmacWithSM3 PRF), a 16-byte salt, ``PBKDF2_ITERATIONS`` iterations, and SM4-CBC
with PKCS#7 padding. OpenSSL (``openssl pkey -passin ...``) and tongsuopy read it.
Reading is left to OpenSSL (through tongsuopy), which also accepts other PBES2 ciphers.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from medrisk.crypto.errors import CryptoError

PBKDF2_ITERATIONS = 600_000  # OWASP 2023 figure for PBKDF2-HMAC-SHA256; about 0.1 s here
MIN_ITERATIONS = 100_000
MAX_ITERATIONS = 10_000_000

_OID_PBES2 = "1.2.840.113549.1.5.13"
_OID_PBKDF2 = "1.2.840.113549.1.5.12"
_OID_HMAC_SHA256 = "1.2.840.113549.2.9"
_OID_SM4_CBC = "1.2.156.10197.1.104.2"


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _integer(value: int) -> bytes:
    if value < 0:
        raise ValueError("negative INTEGER not supported")
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _tlv(0x06, bytes(out))


_NULL = b"\x05\x00"


def encrypt_pkcs8(pkcs8_der: bytes, password: bytes, iterations: int = PBKDF2_ITERATIONS) -> bytes:
    """Wrap an unencrypted PKCS#8 PrivateKeyInfo (DER) into an EncryptedPrivateKeyInfo (DER)."""
    if not isinstance(iterations, int) or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise CryptoError(f"PBKDF2 iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}")
    salt = os.urandom(16)
    iv = os.urandom(16)
    kek = PBKDF2HMAC(hashes.SHA256(), 16, salt, iterations).derive(password)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(pkcs8_der) + padder.finalize()
    enc = Cipher(algorithms.SM4(kek), modes.CBC(iv)).encryptor()
    encrypted = enc.update(padded) + enc.finalize()
    pbkdf2 = _seq(_oid(_OID_PBKDF2), _seq(_octets(salt), _integer(iterations), _seq(_oid(_OID_HMAC_SHA256), _NULL)))
    scheme = _seq(_oid(_OID_SM4_CBC), _octets(iv))
    algorithm = _seq(_oid(_OID_PBES2), _seq(pbkdf2, scheme))
    return _seq(algorithm, _octets(encrypted))


def pem_encode(der: bytes, label: str) -> bytes:
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return ("\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n").encode("ascii")
