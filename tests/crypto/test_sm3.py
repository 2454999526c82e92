"""SM3 (GB/T 32905-2016) and HMAC-SM3, checked against the standard and the openssl command line."""

from __future__ import annotations

import os

import pytest

from medrisk.crypto import CryptoError, hmac_sm3, new_sm3, sm3, sm3_hex, verify_hmac_sm3

# GB/T 32905-2016 Appendix A
ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
ABCD16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
EMPTY = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"

# Computed with: printf abc | openssl mac -digest SM3 -macopt hexkey:000102...1f HMAC
HMAC_KEY_0_31_ABC = "a8f95cf26f204957e7ca73c9602a25dda35f168b28103b51dfc968c810416b63"
# Computed with: printf abc | openssl dgst -sm3 -hmac medrisk-webhook-key
HMAC_TEXT_KEY_ABC = "23b118cc0a0fea078a58fcde74391eabc99e086b71f2d861787e443d348b213b"


def test_sm3_standard_vectors():
    assert sm3(b"abc").hex() == ABC
    assert sm3_hex(b"abcd" * 16) == ABCD16
    assert len(sm3(b"abc")) == 32
    assert sm3_hex(b"") == EMPTY


def test_sm3_accepts_bytes_like_and_rejects_text():
    assert sm3(bytearray(b"abc")).hex() == ABC
    assert sm3(memoryview(b"abc")).hex() == ABC
    with pytest.raises(TypeError):
        sm3("abc")  # type: ignore[arg-type]


def test_incremental_sm3_matches_one_shot():
    data = os.urandom(200_000)
    h = new_sm3()
    for i in range(0, len(data), 4096):
        h.update(data[i : i + 4096])
    assert h.finalize() == sm3(data)


def test_sm3_matches_openssl(openssl):
    data = os.urandom(5000)
    out = openssl("dgst", "-sm3", "-r", input=data).stdout.decode()
    assert out.split()[0] == sm3_hex(data)


def test_hmac_sm3_fixed_vectors():
    assert hmac_sm3(bytes(range(32)), b"abc").hex() == HMAC_KEY_0_31_ABC
    assert hmac_sm3(b"medrisk-webhook-key", b"abc").hex() == HMAC_TEXT_KEY_ABC


@pytest.mark.parametrize("key_len", [1, 16, 32, 64, 100])
def test_hmac_sm3_matches_openssl(openssl, key_len):
    key, msg = os.urandom(key_len), os.urandom(333)
    out = openssl("mac", "-digest", "SM3", "-macopt", f"hexkey:{key.hex()}", "HMAC", input=msg).stdout
    assert out.decode().strip().lower() == hmac_sm3(key, msg).hex()


def test_hmac_sm3_text_key_matches_openssl_dgst(openssl):
    out = openssl("dgst", "-sm3", "-hmac", "medrisk-webhook-key", "-r", input=b"abc").stdout.decode()
    assert out.split()[0] == HMAC_TEXT_KEY_ABC


def test_verify_hmac_sm3():
    key, msg = os.urandom(32), b'{"event":"scan.finished"}'
    tag = hmac_sm3(key, msg)
    assert verify_hmac_sm3(key, msg, tag)
    assert verify_hmac_sm3(key, msg, bytearray(tag))
    assert not verify_hmac_sm3(key, msg + b" ", tag)
    assert not verify_hmac_sm3(os.urandom(32), msg, tag)
    assert not verify_hmac_sm3(key, msg, tag[:-1])
    assert not verify_hmac_sm3(key, msg, tag + b"\x00")
    assert not verify_hmac_sm3(key, msg, b"")
    assert not verify_hmac_sm3(key, msg, tag.hex())  # type: ignore[arg-type]
    assert not verify_hmac_sm3(key, msg, None)  # type: ignore[arg-type]


def test_hmac_sm3_rejects_empty_key():
    with pytest.raises(CryptoError, match="empty"):
        hmac_sm3(b"", b"abc")


@pytest.mark.parametrize("size", [0, 1, 55, 56, 64, 65, 1000, 100_000])
def test_hashlib_and_cryptography_give_the_same_digest(size, monkeypatch):
    """sm3() takes hashlib's SM3 where OpenSSL offers it there, else cryptography's: one result."""
    import importlib

    mod = importlib.import_module("medrisk.crypto.sm3")
    data = os.urandom(size)
    fast = sm3(data)
    monkeypatch.setattr(mod, "_FAST", False)
    assert sm3(data) == fast == new_sm3_digest(data)
    assert sm3(bytearray(data)) == fast


def new_sm3_digest(data: bytes) -> bytes:
    h = new_sm3()
    h.update(data)
    return h.finalize()
