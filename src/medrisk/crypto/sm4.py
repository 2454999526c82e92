"""SM4 (GB/T 32907-2016) in GCM mode (RFC 8998), via ``cryptography``, and field encryption.

Blob layout of :func:`sm4_gcm_encrypt`: ``nonce (12) || ciphertext || tag (16)``.
Nonces are random (``os.urandom``), so one key must not encrypt more than about
2**32 values (NIST SP 800-38D, section 8.3): rotate data keys long before that.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from medrisk.crypto.errors import CryptoError
from medrisk.crypto.sm3 import _as_bytes

SM4_KEY_SIZE = 16
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16

_KID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def generate_sm4_key() -> bytes:
    """A fresh random 16-byte SM4 key."""
    return os.urandom(SM4_KEY_SIZE)


def _check_key(key: bytes) -> bytes:
    key = _as_bytes(key, "key")
    if len(key) != SM4_KEY_SIZE:
        raise CryptoError(f"SM4 key must be {SM4_KEY_SIZE} bytes, got {len(key)}")
    return key


def sm4_gcm_encrypt(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Encrypt and authenticate; returns ``nonce || ciphertext || tag``.

    ``aad`` is authenticated but not encrypted: bind the value to where it belongs
    (table, column, row id) so a ciphertext cannot be moved to another record.
    """
    key = _check_key(key)
    nonce = os.urandom(GCM_NONCE_SIZE)
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(_as_bytes(aad, "aad"))
    ct = enc.update(_as_bytes(plaintext, "plaintext")) + enc.finalize()
    return nonce + ct + enc.tag


def sm4_gcm_decrypt(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    """Check and decrypt a blob from :func:`sm4_gcm_encrypt`; :class:`CryptoError` if it was tampered with."""
    key = _check_key(key)
    blob = _as_bytes(blob, "blob")
    if len(blob) < GCM_NONCE_SIZE + GCM_TAG_SIZE:
        raise CryptoError(
            f"SM4-GCM ciphertext too short ({len(blob)} bytes; at least {GCM_NONCE_SIZE + GCM_TAG_SIZE} expected)"
        )
    nonce, ct, tag = blob[:GCM_NONCE_SIZE], blob[GCM_NONCE_SIZE:-GCM_TAG_SIZE], blob[-GCM_TAG_SIZE:]
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(_as_bytes(aad, "aad"))
    try:
        return dec.update(ct) + dec.finalize()
    except InvalidTag:
        raise CryptoError(
            "SM4-GCM authentication failed: the ciphertext or associated data was modified, or the key is wrong"
        ) from None


class FieldCipher:
    """Encrypts personal data for storage as text: ``sm4gcm:v1:<kid>:<base64(nonce||ct||tag)>``.

    The header (``sm4gcm:v1:<kid>:``) and an optional caller ``context`` (say
    ``"patients.id_card:1234"``) are the GCM associated data, so a value cannot be
    re-labelled with another key id or copied into another field unnoticed.
    ``old_keys`` (kid -> key) are used only to decrypt values written before a key rotation.
    """

    PREFIX = "sm4gcm"
    VERSION = "v1"

    def __init__(self, key: bytes, kid: str, *, old_keys: Mapping[str, bytes] | None = None) -> None:
        self._kid = self._check_kid(kid)
        self._keys: dict[str, bytes] = {}
        for old_kid, old_key in (old_keys or {}).items():
            self._keys[self._check_kid(old_kid)] = _check_key(old_key)
        self._keys[self._kid] = _check_key(key)

    @staticmethod
    def _check_kid(kid: str) -> str:
        if not isinstance(kid, str) or not _KID_RE.fullmatch(kid):
            raise CryptoError("key id must be 1-64 characters of A-Z, a-z, 0-9, '_', '-', '.'")
        return kid

    @property
    def kid(self) -> str:
        """Key id that new values are encrypted under."""
        return self._kid

    def __repr__(self) -> str:
        return f"FieldCipher(kid={self._kid!r}, keys={sorted(self._keys)!r})"

    def _aad(self, kid: str, context: str) -> bytes:
        return f"{self.PREFIX}:{self.VERSION}:{kid}:".encode() + context.encode("utf-8")

    @classmethod
    def is_encrypted(cls, value: object) -> bool:
        """True if ``value`` looks like a token of this format (for migrations; no decryption)."""
        return isinstance(value, str) and value.startswith(f"{cls.PREFIX}:")

    def encrypt_bytes(self, data: bytes, context: str = "") -> str:
        blob = sm4_gcm_encrypt(self._keys[self._kid], data, self._aad(self._kid, context))
        return f"{self.PREFIX}:{self.VERSION}:{self._kid}:{base64.b64encode(blob).decode('ascii')}"

    def decrypt_bytes(self, token: str, context: str = "") -> bytes:
        if not isinstance(token, str):
            raise CryptoError(f"encrypted field must be a str, not {type(token).__name__}")
        parts = token.split(":")
        if len(parts) != 4 or parts[0] != self.PREFIX:
            raise CryptoError(f"not an encrypted field (expected '{self.PREFIX}:{self.VERSION}:<kid>:<base64>')")
        _, version, kid, b64 = parts
        if version != self.VERSION:
            raise CryptoError(f"unsupported encrypted-field version {version[:16]!r} (this code reads {self.VERSION})")
        key = self._keys.get(kid)
        if key is None:
            raise CryptoError(f"no key with id {kid[:64]!r} for this encrypted field")
        try:
            blob = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("encrypted field is not valid base64") from None
        return sm4_gcm_decrypt(key, blob, self._aad(kid, context))

    def encrypt_str(self, s: str, context: str = "") -> str:
        """Encrypt a text value; the result is ASCII text safe for any string column."""
        if not isinstance(s, str):
            raise TypeError(f"encrypt_str expects str, not {type(s).__name__}")
        return self.encrypt_bytes(s.encode("utf-8"), context)

    def decrypt_str(self, token: str, context: str = "") -> str:
        """Decrypt a value from :meth:`encrypt_str`; :class:`CryptoError` if it was tampered with."""
        data = self.decrypt_bytes(token, context)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError("decrypted field is not UTF-8 text (was it written with encrypt_bytes?)") from None
