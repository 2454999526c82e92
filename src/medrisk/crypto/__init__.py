"""国密 (SM2/SM3/SM4) for MedRisk: one small interface for the whole platform.

* SM3 / HMAC-SM3: authorisation codes, audit-log chaining, webhook MACs (``cryptography``);
* SM2 with SM3 and Z over a user id: signed reports (tongsuopy, i.e. Tongsuo in C);
* SM4-GCM and :class:`FieldCipher`: personal data encrypted at rest (``cryptography``);
* :class:`KeyStore`: the platform's signing and data keys on disk, password-protected.

See docs/crypto.md for formats, choices and the openssl commands that check our output.
"""

from medrisk.crypto.errors import CryptoError
from medrisk.crypto.keystore import PASSWORD_ENV, KeyStore
from medrisk.crypto.selftest import self_test
from medrisk.crypto.sm2 import (
    DEFAULT_UID,
    SM2PrivateKey,
    SM2PublicKey,
    load_private_key_der,
    load_private_key_pem,
    load_public_key_der,
    load_public_key_pem,
    load_public_key_point,
    sign_file,
    verify_file,
)
from medrisk.crypto.sm3 import hmac_sm3, new_sm3, sm3, sm3_hex, verify_hmac_sm3
from medrisk.crypto.sm4 import FieldCipher, generate_sm4_key, sm4_gcm_decrypt, sm4_gcm_encrypt

__all__ = [
    "DEFAULT_UID",
    "PASSWORD_ENV",
    "CryptoError",
    "FieldCipher",
    "KeyStore",
    "SM2PrivateKey",
    "SM2PublicKey",
    "generate_sm4_key",
    "hmac_sm3",
    "load_private_key_der",
    "load_private_key_pem",
    "load_public_key_der",
    "load_public_key_pem",
    "load_public_key_point",
    "new_sm3",
    "self_test",
    "sign_file",
    "sm3",
    "sm3_hex",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
    "verify_file",
    "verify_hmac_sm3",
]
