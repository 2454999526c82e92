"""The platform's keys: the SM2 signing key (authorisation codes, audit checkpoints) and the
SM4 field cipher for personal data, both from ``medrisk.crypto.KeyStore``.

The key store lives in its own directory, never in the database. Its password comes from
``MEDRISK_KEYSTORE_PASSWORD``; only the embedded mode (``medrisk serve`` with the default
data directory) may generate one and keep it in a 0600 file beside the keys, and says so.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path

from medrisk.crypto import PASSWORD_ENV, FieldCipher, KeyStore, SM2PublicKey
from medrisk.crypto.errors import CryptoError

GENERATED_PASSWORD_FILE = "keystore-password"  # noqa: S105 - a file name


class PlatformKeys:
    def __init__(self, keystore: KeyStore) -> None:
        self.keystore = keystore

    @cached_property
    def public_key(self) -> SM2PublicKey:
        return self.keystore.public_key()

    @cached_property
    def kid(self) -> str:
        """Key id: the SM3 fingerprint of the public key (SubjectPublicKeyInfo DER)."""
        return self.public_key.fingerprint()

    @cached_property
    def cipher(self) -> FieldCipher:
        return self.keystore.field_cipher()

    def public_pem(self) -> bytes:
        return self.public_key.to_pem()

    def sign(self, data: bytes) -> bytes:
        return self.keystore.signing_key().sign(data)

    def verify(self, signature: bytes, data: bytes) -> bool:
        return self.public_key.verify(signature, data)

    def encrypt(self, value: str | None, context: str) -> str | None:
        return None if value is None else self.cipher.encrypt_str(value, context)

    def decrypt(self, token: str | None, context: str) -> str | None:
        if token is None:
            return None
        try:
            return self.cipher.decrypt_str(token, context)
        except CryptoError:
            return None  # tampered or foreign ciphertext: show nothing rather than fail the whole page


def keystore_password(key_dir: Path, *, allow_generate: bool) -> tuple[str, bool]:
    """The key store password and whether it was generated just now (embedded mode only)."""
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env, False
    path = key_dir / GENERATED_PASSWORD_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8").strip(), False
    if not allow_generate:
        raise CryptoError(f"key store password not configured: set {PASSWORD_ENV}")
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    return password, True


def open_keys(key_dir: Path, *, allow_generate: bool = False, iterations: int | None = None) -> PlatformKeys:
    password, _ = keystore_password(key_dir, allow_generate=allow_generate)
    kwargs = {"iterations": iterations} if iterations else {}
    return PlatformKeys(KeyStore(key_dir, password, **kwargs))


class PublicKeys:
    """Verification only, from the published public key (no key store password needed)."""

    def __init__(self, public_key: SM2PublicKey) -> None:
        self.public_key = public_key
        self.kid = public_key.fingerprint()

    def verify(self, signature: bytes, data: bytes) -> bool:
        return self.public_key.verify(signature, data)


def load_public(path: Path) -> PublicKeys:
    from medrisk.crypto import load_public_key_pem

    return PublicKeys(load_public_key_pem(Path(path).read_bytes()))


def public_key_path(key_dir: Path) -> Path:
    return key_dir / KeyStore.SIGNING_PUBLIC_FILE
