"""SM4 (GB/T 32907-2016), SM4-GCM (RFC 8998) and FieldCipher."""

from __future__ import annotations

import base64
import os
import re

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from medrisk.crypto import CryptoError, FieldCipher, generate_sm4_key, sm4_gcm_decrypt, sm4_gcm_encrypt

GBT_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")

# RFC 8998 Appendix A.1
RFC_NONCE = bytes.fromhex("00001234567800000000ABCD")
RFC_AAD = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
RFC_PT = bytes.fromhex(
    "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
)
RFC_CT = bytes.fromhex(
    "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
    "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
)
RFC_TAG = bytes.fromhex("83DE3541E4C2B58177E065A9BF7B62EC")


def test_sm4_block_vector_gbt32907():
    enc = Cipher(algorithms.SM4(GBT_KEY), modes.ECB()).encryptor()
    assert (enc.update(GBT_KEY) + enc.finalize()).hex() == "681edf34d206965e86b3e94f536e4246"
    dec = Cipher(algorithms.SM4(GBT_KEY), modes.ECB()).decryptor()
    assert dec.update(bytes.fromhex("681edf34d206965e86b3e94f536e4246")) + dec.finalize() == GBT_KEY


def test_sm4_block_matches_openssl(openssl):
    block = os.urandom(16)
    out = openssl("enc", "-sm4-ecb", "-K", GBT_KEY.hex(), "-nopad", input=block).stdout
    enc = Cipher(algorithms.SM4(GBT_KEY), modes.ECB()).encryptor()
    assert enc.update(block) + enc.finalize() == out


def test_sm4_gcm_rfc8998_vector():
    assert sm4_gcm_decrypt(GBT_KEY, RFC_NONCE + RFC_CT + RFC_TAG, RFC_AAD) == RFC_PT
    enc = Cipher(algorithms.SM4(GBT_KEY), modes.GCM(RFC_NONCE)).encryptor()
    enc.authenticate_additional_data(RFC_AAD)
    assert enc.update(RFC_PT) + enc.finalize() == RFC_CT
    assert enc.tag == RFC_TAG


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 100_000])
def test_sm4_gcm_round_trip(size):
    key, pt, aad = generate_sm4_key(), os.urandom(size), b"patients.phone:42"
    blob = sm4_gcm_encrypt(key, pt, aad)
    assert len(blob) == 12 + size + 16
    assert sm4_gcm_decrypt(key, blob, aad) == pt


def test_sm4_gcm_random_nonce():
    key = generate_sm4_key()
    a, b = sm4_gcm_encrypt(key, b"same"), sm4_gcm_encrypt(key, b"same")
    assert a[:12] != b[:12] and a != b
    assert sm4_gcm_decrypt(key, a) == sm4_gcm_decrypt(key, b) == b"same"


def test_sm4_gcm_detects_tampering():
    key, pt = generate_sm4_key(), b"13800138000"
    blob = sm4_gcm_encrypt(key, pt, b"ctx")
    for i in range(len(blob)):  # every byte: nonce, ciphertext and tag
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(CryptoError, match="authentication failed"):
            sm4_gcm_decrypt(key, bytes(bad), b"ctx")
    with pytest.raises(CryptoError, match="authentication failed"):
        sm4_gcm_decrypt(key, blob, b"other ctx")
    with pytest.raises(CryptoError, match="authentication failed"):
        sm4_gcm_decrypt(key, blob)
    with pytest.raises(CryptoError, match="authentication failed"):
        sm4_gcm_decrypt(generate_sm4_key(), blob, b"ctx")
    with pytest.raises(CryptoError, match="authentication failed"):
        sm4_gcm_decrypt(key, blob[:-1] + b"", b"ctx")
    with pytest.raises(CryptoError, match="too short"):
        sm4_gcm_decrypt(key, blob[:27], b"ctx")


def test_sm4_gcm_error_messages_carry_no_secrets():
    key, pt = generate_sm4_key(), b"110101199003074518"
    blob = bytearray(sm4_gcm_encrypt(key, pt))
    blob[20] ^= 1
    with pytest.raises(CryptoError) as info:
        sm4_gcm_decrypt(key, bytes(blob))
    text = str(info.value) + repr(info.value)
    for secret in (key.hex(), key.hex().upper(), pt.decode(), bytes(blob).hex()):
        assert secret not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("bad_key", [b"", b"k" * 15, b"k" * 17, b"k" * 32])
def test_sm4_gcm_rejects_bad_key_length(bad_key):
    with pytest.raises(CryptoError, match="16 bytes"):
        sm4_gcm_encrypt(bad_key, b"x")
    with pytest.raises(CryptoError, match="16 bytes"):
        sm4_gcm_decrypt(bad_key, b"x" * 40)


# -- FieldCipher ---------------------------------------------------------------------------------


def test_field_cipher_format_and_round_trip():
    fc = FieldCipher(generate_sm4_key(), "dk-2026")
    for value in ["", "张三", "110101199003074518", "13800138000", "a:b:c", "x" * 10_000]:
        token = fc.encrypt_str(value)
        assert re.fullmatch(r"sm4gcm:v1:dk-2026:[A-Za-z0-9+/]+={0,2}", token)
        assert token.isascii()
        assert fc.decrypt_str(token) == value
        assert FieldCipher.is_encrypted(token)
    assert not FieldCipher.is_encrypted("张三")
    assert fc.encrypt_str("张三") != fc.encrypt_str("张三")


def test_field_cipher_context_binding():
    fc = FieldCipher(generate_sm4_key(), "k1")
    token = fc.encrypt_str("13800138000", context="patients.phone:7")
    assert fc.decrypt_str(token, context="patients.phone:7") == "13800138000"
    with pytest.raises(CryptoError, match="authentication failed"):
        fc.decrypt_str(token, context="patients.phone:8")
    with pytest.raises(CryptoError, match="authentication failed"):
        fc.decrypt_str(token)


def test_field_cipher_detects_tampering_and_relabelling():
    key = generate_sm4_key()
    fc = FieldCipher(key, "k2", old_keys={"k1": key})  # same key under two ids
    token = fc.encrypt_str("张三")
    # moving a value to another key id is caught, because the header is associated data
    with pytest.raises(CryptoError, match="authentication failed"):
        fc.decrypt_str(token.replace(":k2:", ":k1:"))
    raw = bytearray(base64.b64decode(token.split(":")[3]))
    raw[-1] ^= 0x80
    with pytest.raises(CryptoError, match="authentication failed"):
        fc.decrypt_str("sm4gcm:v1:k2:" + base64.b64encode(bytes(raw)).decode())


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("plain text", "not an encrypted field"),
        ("sm4gcm:v1:k1", "not an encrypted field"),
        ("sm4gcm:v9:k1:AAAA", "unsupported encrypted-field version"),
        ("sm4gcm:v1:nope:AAAA", "no key with id 'nope'"),
        ("sm4gcm:v1:k1:not base64!", "not valid base64"),
        ("sm4gcm:v1:k1:AAAA", "too short"),
    ],
)
def test_field_cipher_rejects_malformed_tokens(token, message):
    fc = FieldCipher(generate_sm4_key(), "k1")
    with pytest.raises(CryptoError, match=message):
        fc.decrypt_str(token)


def test_field_cipher_rotation():
    old = FieldCipher(generate_sm4_key(), "k1")
    token = old.encrypt_str("李四")
    new = FieldCipher(generate_sm4_key(), "k2", old_keys={"k1": old._keys["k1"]})
    assert new.decrypt_str(token) == "李四"
    assert new.encrypt_str("李四").startswith("sm4gcm:v1:k2:")
    with pytest.raises(CryptoError, match="no key with id 'k2'"):
        old.decrypt_str(new.encrypt_str("李四"))


def test_field_cipher_validation_and_repr():
    key = generate_sm4_key()
    for kid in ["", "a:b", "x" * 65, "空格 kid"]:
        with pytest.raises(CryptoError, match="key id"):
            FieldCipher(key, kid)
    with pytest.raises(CryptoError, match="16 bytes"):
        FieldCipher(b"short", "k1")
    with pytest.raises(TypeError):
        FieldCipher(key, "k1").encrypt_str(b"bytes")  # type: ignore[arg-type]
    assert key.hex() not in repr(FieldCipher(key, "k1"))
    fc = FieldCipher(key, "k1")
    with pytest.raises(CryptoError, match="not UTF-8"):
        fc.decrypt_str(fc.encrypt_bytes(b"\xff\xfe"))
