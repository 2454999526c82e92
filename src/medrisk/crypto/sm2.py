"""SM2 signatures (GB/T 32918.2-2016 / GM/T 0003.2-2012) with SM3, backed by tongsuopy (Tongsuo, C).

A signature here is always *SM2 with SM3 over Z*: ``e = SM3(Z || M)`` with
``Z = SM3(ENTL || uid || a || b || xG || yG || xA || yA)`` (GB/T 32918.2 section 5.5),
and the DER ``SEQUENCE { r INTEGER, s INTEGER }`` that OpenSSL writes and reads.

We compute Z ourselves, from the uid the caller passes (``DEFAULT_UID`` =
``1234567812345678``, GM/T 0009), instead of relying on a library default: OpenSSL 3.0
defaults to an *empty* uid and tongsuopy's high-level API offers no uid at all. The
nonce k and the curve arithmetic stay in Tongsuo's C code (``EVP_PKEY_sign`` on e,
k from OpenSSL's CSPRNG). That uses tongsuopy's cffi binding (``backend._lib``), which
is why the dependency is pinned to one tongsuopy version; ``self_test()`` checks it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medrisk.crypto._pkcs8 import PBKDF2_ITERATIONS, encrypt_pkcs8, pem_encode
from medrisk.crypto.errors import CryptoError
from medrisk.crypto.sm3 import _as_bytes, new_sm3, sm3

try:  # tongsuopy has no linux-aarch64 wheel; SM3/SM4 work without it
    from tongsuopy.backends.tongsuo.backend import backend as _backend
    from tongsuopy.crypto import serialization as _ser
    from tongsuopy.crypto.asymciphers import ec as _ec
    from tongsuopy.crypto.exceptions import UnsupportedAlgorithm as _UnsupportedAlgorithm

    _IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - depends on the platform
    _IMPORT_ERROR = str(exc)

DEFAULT_UID = b"1234567812345678"
MAX_UID_LEN = 8191  # ENTL is the uid length in bits, in two bytes

# SM2 recommended curve parameters (GB/T 32918.5-2017), used in Z.
_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
_GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
_CURVE_PREFIX = b"".join(v.to_bytes(32, "big") for v in (_A, _B, _GX, _GY))

_MAX_SIG_LEN = 80  # DER of two 256-bit INTEGERs is at most 72 bytes
_CHUNK = 1 << 20


def _require_backend() -> None:
    if _IMPORT_ERROR is not None:
        raise CryptoError(
            "SM2 needs the 'tongsuopy' package (wheels for x86_64 Linux, Windows and macOS only); "
            f"it could not be imported: {_IMPORT_ERROR}"
        )
    for name in ("EVP_PKEY_CTX_new", "EVP_PKEY_sign_init", "EVP_PKEY_sign", "EVP_PKEY_verify_init", "EVP_PKEY_id"):
        if not hasattr(_backend._lib, name):
            raise CryptoError(f"unsupported tongsuopy version: its binding lacks {name}; use tongsuopy 1.0.1")


def _check_uid(uid: bytes) -> bytes:
    uid = _as_bytes(uid, "uid")
    if len(uid) > MAX_UID_LEN:
        raise CryptoError(f"SM2 user id too long ({len(uid)} bytes; at most {MAX_UID_LEN})")
    return uid


def _password_bytes(password: str | bytes | None) -> bytes | None:
    if password is None:
        return None
    if isinstance(password, str):
        password = password.encode("utf-8")
    password = _as_bytes(password, "password")
    if not password:
        raise CryptoError("password must not be empty (pass None for an unencrypted key)")
    return password


def _ensure_sm2_evp(key: Any) -> None:
    """Refuse anything that is not an SM2-curve key whose EVP_PKEY is typed SM2 (not plain ECDSA)."""
    if not isinstance(getattr(key, "curve", None), _ec.SM2):
        curve = getattr(getattr(key, "curve", None), "name", type(key).__name__)
        raise CryptoError(f"not an SM2 key (got {curve})")
    lib = _backend._lib
    if lib.EVP_PKEY_id(key._evp_pkey) != lib.EVP_PKEY_SM2:
        lib.EVP_PKEY_set_alias_type(key._evp_pkey, lib.EVP_PKEY_SM2)
    if lib.EVP_PKEY_id(key._evp_pkey) != lib.EVP_PKEY_SM2:  # pragma: no cover - defensive
        raise CryptoError("backend did not type the key as SM2")


def _pkey_ctx(evp_pkey: Any, init_name: str) -> Any:
    lib, ffi = _backend._lib, _backend._ffi
    ctx = lib.EVP_PKEY_CTX_new(evp_pkey, ffi.NULL)
    if ctx == ffi.NULL:  # pragma: no cover - out of memory
        _backend._consume_errors()
        raise CryptoError("SM2 backend could not create a key context")
    ctx = ffi.gc(ctx, lib.EVP_PKEY_CTX_free)
    if getattr(lib, init_name)(ctx) != 1:  # pragma: no cover - defensive
        _backend._consume_errors()
        raise CryptoError("SM2 backend could not initialise the operation")
    return ctx


def _digest_e(z: bytes, chunks: Any) -> bytes:
    h = new_sm3()
    h.update(z)
    for chunk in chunks:
        h.update(chunk)
    return h.finalize()


def _file_chunks(path: Path):
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


class SM2PublicKey:
    """An SM2 public key. Build it with :func:`load_public_key_pem`/``_der`` or ``SM2PrivateKey.public_key()``."""

    __slots__ = ("_key", "_x", "_y", "_z_default")

    def __init__(self, _key: Any) -> None:
        _require_backend()
        _ensure_sm2_evp(_key)
        self._key = _key
        numbers = _key.public_numbers()
        self._x, self._y = numbers.x, numbers.y
        self._z_default = self.z_value(DEFAULT_UID)

    def z_value(self, uid: bytes = DEFAULT_UID) -> bytes:
        """Z_A of GB/T 32918.2 section 5.5 for this key and ``uid`` (32 bytes)."""
        uid = _check_uid(uid)
        if uid == DEFAULT_UID and getattr(self, "_z_default", None) is not None:
            return self._z_default
        entl = (len(uid) * 8).to_bytes(2, "big")
        return sm3(entl + uid + _CURVE_PREFIX + self._x.to_bytes(32, "big") + self._y.to_bytes(32, "big"))

    def _verify_e(self, signature: Any, e: bytes) -> bool:
        if not isinstance(signature, bytes | bytearray | memoryview):
            return False
        signature = bytes(signature)
        if not 8 <= len(signature) <= _MAX_SIG_LEN:
            return False
        ctx = _pkey_ctx(self._key._evp_pkey, "EVP_PKEY_verify_init")
        res = _backend._lib.EVP_PKEY_verify(ctx, signature, len(signature), e, len(e))
        if res != 1:
            _backend._consume_errors()
        return res == 1

    def verify(self, signature: bytes, data: bytes, uid: bytes = DEFAULT_UID) -> bool:
        """True if ``signature`` (DER) is a valid SM2-with-SM3 signature of ``data`` for ``uid``.

        Malformed, truncated or non-canonical signatures give False, never an exception.
        """
        return self._verify_e(signature, _digest_e(self.z_value(uid), [_as_bytes(data, "data")]))

    def to_der(self) -> bytes:
        """SubjectPublicKeyInfo, DER."""
        return self._key.public_bytes(_ser.Encoding.DER, _ser.PublicFormat.SubjectPublicKeyInfo)

    def to_pem(self) -> bytes:
        """SubjectPublicKeyInfo, PEM (``-----BEGIN PUBLIC KEY-----``), as ``openssl pkey -pubin`` reads it."""
        return self._key.public_bytes(_ser.Encoding.PEM, _ser.PublicFormat.SubjectPublicKeyInfo)

    def to_point(self) -> bytes:
        """Uncompressed point ``04 || x || y`` (65 bytes), the form most 国密 tools exchange."""
        return b"\x04" + self._x.to_bytes(32, "big") + self._y.to_bytes(32, "big")

    def fingerprint(self) -> str:
        """SM3 of the DER SubjectPublicKeyInfo, hex: a stable, non-secret key identifier for logs."""
        return sm3(self.to_der()).hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and (self._x, self._y) == (other._x, other._y)

    def __hash__(self) -> int:
        return hash((self._x, self._y))

    def __repr__(self) -> str:
        return f"SM2PublicKey(fingerprint={self.fingerprint()[:16]}…)"


class SM2PrivateKey:
    """An SM2 private key. ``repr()`` shows only the public fingerprint."""

    __slots__ = ("_key", "_public")

    def __init__(self, _key: Any) -> None:
        _require_backend()
        _ensure_sm2_evp(_key)
        self._key = _key
        self._public = SM2PublicKey(_key.public_key())

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        """A new random key pair (Tongsuo's key generation, OpenSSL CSPRNG)."""
        _require_backend()
        return cls(_ec.generate_private_key(_ec.SM2()))

    def public_key(self) -> SM2PublicKey:
        return self._public

    def _sign_e(self, e: bytes) -> bytes:
        lib, ffi = _backend._lib, _backend._ffi
        ctx = _pkey_ctx(self._key._evp_pkey, "EVP_PKEY_sign_init")
        siglen = ffi.new("size_t *")
        if lib.EVP_PKEY_sign(ctx, ffi.NULL, siglen, e, len(e)) != 1:  # pragma: no cover - defensive
            _backend._consume_errors()
            raise CryptoError("SM2 signing failed (backend could not size the signature)")
        buf = ffi.new("unsigned char[]", siglen[0])
        if lib.EVP_PKEY_sign(ctx, buf, siglen, e, len(e)) != 1:  # pragma: no cover - defensive
            _backend._consume_errors()
            raise CryptoError("SM2 signing failed")
        return bytes(ffi.buffer(buf)[: siglen[0]])

    def sign(self, data: bytes, uid: bytes = DEFAULT_UID) -> bytes:
        """DER SM2-with-SM3 signature of ``data`` with Z over ``uid``; a fresh random nonce every call."""
        return self._sign_e(_digest_e(self._public.z_value(uid), [_as_bytes(data, "data")]))

    def to_der(self, password: str | bytes | None = None, *, iterations: int = PBKDF2_ITERATIONS) -> bytes:
        """PKCS#8 DER; with a password, EncryptedPrivateKeyInfo (PBKDF2-HMAC-SHA256 + SM4-CBC)."""
        pw = _password_bytes(password)
        der = self._key.private_bytes(_ser.Encoding.DER, _ser.PrivateFormat.PKCS8, _ser.NoEncryption())
        return der if pw is None else encrypt_pkcs8(der, pw, iterations)

    def to_pem(self, password: str | bytes | None = None, *, iterations: int = PBKDF2_ITERATIONS) -> bytes:
        """PKCS#8 PEM (``PRIVATE KEY``, or ``ENCRYPTED PRIVATE KEY`` with a password)."""
        pw = _password_bytes(password)
        if pw is None:
            return self._key.private_bytes(_ser.Encoding.PEM, _ser.PrivateFormat.PKCS8, _ser.NoEncryption())
        return pem_encode(self.to_der(pw, iterations=iterations), "ENCRYPTED PRIVATE KEY")

    def __repr__(self) -> str:
        return f"SM2PrivateKey(public fingerprint={self._public.fingerprint()[:16]}…)"

    def __reduce__(self):  # no accidental pickling of the private key into caches or task queues
        raise TypeError("SM2PrivateKey cannot be pickled; serialise it with to_pem(password)")


def _load_private(loader_name: str, data: bytes, password: str | bytes | None) -> SM2PrivateKey:
    _require_backend()
    data = _as_bytes(data, "data")
    pw = _password_bytes(password)
    try:
        key = getattr(_ser, loader_name)(data, pw)
    except TypeError as exc:
        _backend._consume_errors()
        if "not encrypted" in str(exc):
            raise CryptoError("private key is not encrypted, but a password was given") from None
        if "encrypted" in str(exc):
            raise CryptoError("private key is encrypted: a password is required") from None
        raise
    except _UnsupportedAlgorithm:
        _backend._consume_errors()
        raise CryptoError("not an SM2 private key (unsupported key type or curve)") from None
    except ValueError:
        _backend._consume_errors()
        raise CryptoError("could not load the SM2 private key: wrong password, or not a PKCS#8/SEC1 key") from None
    if not isinstance(key, _ec.EllipticCurvePrivateKey):
        raise CryptoError(f"not an SM2 private key (got {type(key).__name__})")
    return SM2PrivateKey(key)


def _load_public(loader_name: str, data: bytes) -> SM2PublicKey:
    _require_backend()
    data = _as_bytes(data, "data")
    try:
        key = getattr(_ser, loader_name)(data)
    except _UnsupportedAlgorithm:
        _backend._consume_errors()
        raise CryptoError("not an SM2 public key (unsupported key type or curve)") from None
    except ValueError:
        _backend._consume_errors()
        raise CryptoError("could not load the SM2 public key: not a SubjectPublicKeyInfo") from None
    if not isinstance(key, _ec.EllipticCurvePublicKey):
        raise CryptoError(f"not an SM2 public key (got {type(key).__name__})")
    return SM2PublicKey(key)


def load_private_key_pem(data: bytes, password: str | bytes | None = None) -> SM2PrivateKey:
    """Load a PEM SM2 private key: PKCS#8 (``openssl genpkey``), encrypted PKCS#8, or SEC1.

    SEC1 is accepted under both ``EC PRIVATE KEY`` and the ``SM2 PRIVATE KEY`` label that
    ``openssl ec`` (3.0) writes for SM2 keys; the content is the same ECPrivateKey.
    """
    data = _as_bytes(data, "data")
    if b"-----BEGIN SM2 PRIVATE KEY-----" in data:
        data = data.replace(b"SM2 PRIVATE KEY-----", b"EC PRIVATE KEY-----")
    return _load_private("load_pem_private_key", data, password)


def load_private_key_der(data: bytes, password: str | bytes | None = None) -> SM2PrivateKey:
    """Load a DER SM2 private key (PKCS#8 or encrypted PKCS#8)."""
    return _load_private("load_der_private_key", data, password)


def load_public_key_pem(data: bytes) -> SM2PublicKey:
    """Load a PEM SubjectPublicKeyInfo SM2 public key (``-----BEGIN PUBLIC KEY-----``)."""
    return _load_public("load_pem_public_key", data)


def load_public_key_der(data: bytes) -> SM2PublicKey:
    """Load a DER SubjectPublicKeyInfo SM2 public key."""
    return _load_public("load_der_public_key", data)


def load_public_key_point(point: bytes) -> SM2PublicKey:
    """Load an SM2 public key from an SEC1 point: ``04 || x || y`` (65 bytes) or compressed (33 bytes)."""
    _require_backend()
    point = _as_bytes(point, "point")
    try:
        key = _ec.EllipticCurvePublicKey.from_encoded_point(_ec.SM2(), point)
    except ValueError:
        _backend._consume_errors()
        raise CryptoError("not a point on the SM2 curve") from None
    return SM2PublicKey(key)


def _sig_path(path: Path, signature_path: str | os.PathLike[str] | None) -> Path:
    return Path(signature_path) if signature_path is not None else path.with_name(path.name + ".sig")


def sign_file(
    private_key: SM2PrivateKey,
    path: str | os.PathLike[str],
    signature_path: str | os.PathLike[str] | None = None,
    uid: bytes = DEFAULT_UID,
) -> Path:
    """Write a detached DER signature of the file at ``path`` (default ``<path>.sig``); returns its path.

    The file is hashed in chunks, so large reports need not fit in memory. The result is
    what ``openssl dgst -sm3 -sign ... -sigopt distid:<uid>`` would produce (see docs/crypto.md).
    """
    path = Path(path)
    e = _digest_e(private_key.public_key().z_value(uid), _file_chunks(path))
    signature = private_key._sign_e(e)
    out = _sig_path(path, signature_path)
    out.write_bytes(signature)
    return out


def verify_file(
    public_key: SM2PublicKey,
    path: str | os.PathLike[str],
    signature_path: str | os.PathLike[str] | None = None,
    uid: bytes = DEFAULT_UID,
) -> bool:
    """True if the detached DER signature (default ``<path>.sig``) is valid for the file at ``path``.

    A missing, empty or malformed signature file gives False; a missing data file raises OSError.
    """
    path = Path(path)
    try:
        with open(_sig_path(path, signature_path), "rb") as f:
            signature = f.read(_MAX_SIG_LEN + 1)
    except FileNotFoundError:
        return False
    if not 8 <= len(signature) <= _MAX_SIG_LEN:
        return False
    return public_key._verify_e(signature, _digest_e(public_key.z_value(uid), _file_chunks(path)))
