"""The platform's key files: an SM2 signing key and an SM4 data key, both protected by one password.

Layout of the key directory (created 0700, files 0600):

* ``sm2-signing-key.pem``: encrypted PKCS#8 (PBKDF2-HMAC-SHA256, SM4-CBC), readable by
  ``openssl pkey -passin env:MEDRISK_KEYSTORE_PASSWORD``;
* ``sm2-signing-key.pub.pem``: its public key (SubjectPublicKeyInfo), for verifiers;
* ``sm4-data-key.json``: a random 16-byte SM4 key, SM4-GCM-wrapped under a key derived
  from the password with PBKDF2-HMAC-SM3 (random 16-byte salt), with the key id as
  associated data.

Keys are generated on first use. Creation is atomic (temporary file, then a hard link
that fails if another process got there first, in which case its key is used).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from medrisk.crypto._pkcs8 import MAX_ITERATIONS, MIN_ITERATIONS, PBKDF2_ITERATIONS
from medrisk.crypto.errors import CryptoError
from medrisk.crypto.sm2 import SM2PrivateKey, SM2PublicKey, load_private_key_pem, load_public_key_pem
from medrisk.crypto.sm4 import FieldCipher, generate_sm4_key, sm4_gcm_decrypt, sm4_gcm_encrypt

log = logging.getLogger(__name__)

PASSWORD_ENV = "MEDRISK_KEYSTORE_PASSWORD"  # noqa: S105 - the variable name, not a password
MIN_PASSWORD_LEN = 12

_DATA_KEY_FORMAT = "medrisk-sm4-data-key"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise CryptoError(f"data key file: {what} missing or not a string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError(f"data key file: {what} is not valid base64") from None


def _kek(password: bytes, salt: bytes, iterations: int) -> bytes:
    return PBKDF2HMAC(hashes.SM3(), 16, salt, iterations).derive(password)


def _data_key_aad(kid: str) -> bytes:
    return f"{_DATA_KEY_FORMAT}:v1:{kid}".encode()


class KeyStore:
    """Loads, or on first use creates, the platform's keys in ``directory``.

    The password comes from ``password`` or else the environment variable ``password_env``
    (default ``MEDRISK_KEYSTORE_PASSWORD``); it is at least 12 characters and never logged.
    """

    SIGNING_KEY_FILE = "sm2-signing-key.pem"
    SIGNING_PUBLIC_FILE = "sm2-signing-key.pub.pem"
    DATA_KEY_FILE = "sm4-data-key.json"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        password: str | bytes | None = None,
        *,
        password_env: str = PASSWORD_ENV,
        iterations: int = PBKDF2_ITERATIONS,
    ) -> None:
        self.directory = Path(directory)
        if password is None:
            password = os.environ.get(password_env)
            if not password:
                raise CryptoError(f"key store password not configured: set {password_env} (or pass password=)")
        if isinstance(password, str):
            password = password.encode("utf-8")
        if not isinstance(password, bytes):
            raise TypeError("password must be str or bytes")
        if len(password) < MIN_PASSWORD_LEN:
            raise CryptoError(f"key store password too short: use at least {MIN_PASSWORD_LEN} characters")
        if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
            raise CryptoError(f"iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}")
        self._password = password
        self._iterations = iterations
        self._lock = threading.Lock()
        self._signing_key: SM2PrivateKey | None = None
        self._data_key: tuple[str, bytes] | None = None

    def __repr__(self) -> str:
        return f"KeyStore({str(self.directory)!r})"

    # -- files -------------------------------------------------------------------------------

    def _create_exclusive(self, name: str, content: bytes) -> bool:
        """Atomically create ``name`` with ``content`` (mode 0600); False if it already exists."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, self.directory / name)
            except FileExistsError:
                return False
            return True
        finally:
            os.unlink(tmp)

    # -- SM2 signing key --------------------------------------------------------------------------

    def signing_key(self) -> SM2PrivateKey:
        """The platform's SM2 signing key, generated and stored (encrypted) on first use."""
        with self._lock:
            if self._signing_key is None:
                self._signing_key = self._load_or_create_signing_key()
            return self._signing_key

    def public_key(self) -> SM2PublicKey:
        return self.signing_key().public_key()

    def _load_or_create_signing_key(self) -> SM2PrivateKey:
        path = self.directory / self.SIGNING_KEY_FILE
        if not path.exists():
            key = SM2PrivateKey.generate()
            if self._create_exclusive(self.SIGNING_KEY_FILE, key.to_pem(self._password, iterations=self._iterations)):
                log.info("generated SM2 signing key %s in %s", key.public_key().fingerprint(), self.directory)
        try:
            key = load_private_key_pem(path.read_bytes(), self._password)
        except CryptoError as exc:
            raise CryptoError(f"cannot open {path}: {exc}") from None
        self._write_public(key.public_key())
        return key

    def _write_public(self, public: SM2PublicKey) -> None:
        pub_path = self.directory / self.SIGNING_PUBLIC_FILE
        pem = public.to_pem()
        try:
            if load_public_key_pem(pub_path.read_bytes()) == public:
                return
            log.warning("%s did not match the signing key; rewriting it", pub_path)
        except (OSError, CryptoError):
            pass
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{self.SIGNING_PUBLIC_FILE}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.chmod(tmp, 0o644)
        os.replace(tmp, pub_path)

    # -- SM4 data key -----------------------------------------------------------------------------

    def data_key(self) -> tuple[str, bytes]:
        """``(kid, key)`` of the SM4 data key, generated and stored (wrapped) on first use."""
        with self._lock:
            if self._data_key is None:
                self._data_key = self._load_or_create_data_key()
            return self._data_key

    def field_cipher(self) -> FieldCipher:
        kid, key = self.data_key()
        return FieldCipher(key, kid)

    def _load_or_create_data_key(self) -> tuple[str, bytes]:
        path = self.directory / self.DATA_KEY_FILE
        if not path.exists():
            kid = "dk-" + os.urandom(6).hex()
            key = generate_sm4_key()
            salt = os.urandom(16)
            wrapped = sm4_gcm_encrypt(_kek(self._password, salt, self._iterations), key, _data_key_aad(kid))
            doc = {
                "format": _DATA_KEY_FORMAT,
                "version": 1,
                "kid": kid,
                "kdf": {"alg": "pbkdf2-hmac-sm3", "salt": _b64(salt), "iterations": self._iterations, "length": 16},
                "wrap": "sm4-gcm",
                "wrapped_key": _b64(wrapped),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            if self._create_exclusive(self.DATA_KEY_FILE, (json.dumps(doc, indent=2) + "\n").encode()):
                log.info("generated SM4 data key %s in %s", kid, self.directory)
        return self._read_data_key(path)

    def _read_data_key(self, path: Path) -> tuple[str, bytes]:
        try:
            doc = json.loads(path.read_bytes())
        except ValueError:
            raise CryptoError(f"{path}: not a data key file (invalid JSON)") from None
        if not isinstance(doc, dict) or doc.get("format") != _DATA_KEY_FORMAT or doc.get("version") != 1:
            raise CryptoError(f"{path}: not a version-1 {_DATA_KEY_FORMAT} file")
        kdf = doc.get("kdf")
        kid = doc.get("kid")
        if not isinstance(kdf, dict) or kdf.get("alg") != "pbkdf2-hmac-sm3" or doc.get("wrap") != "sm4-gcm":
            raise CryptoError(f"{path}: unsupported key derivation or wrapping algorithm")
        iterations = kdf.get("iterations")
        if not isinstance(iterations, int) or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
            raise CryptoError(f"{path}: iterations out of range")
        if not isinstance(kid, str):
            raise CryptoError(f"{path}: kid missing")
        salt = _unb64(kdf.get("salt"), "salt")
        wrapped = _unb64(doc.get("wrapped_key"), "wrapped_key")
        try:
            key = sm4_gcm_decrypt(_kek(self._password, salt, iterations), wrapped, _data_key_aad(kid))
        except CryptoError:
            raise CryptoError(
                f"cannot unwrap the data key in {path}: wrong password, or the file was modified"
            ) from None
        FieldCipher(key, kid)  # validates kid and key length
        return kid, key
