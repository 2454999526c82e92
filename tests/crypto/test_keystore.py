"""KeyStore: keys generated on first use, stored encrypted, reopened, and readable by openssl."""

from __future__ import annotations

import json
import logging
import stat
import threading

import pytest

from medrisk.crypto import PASSWORD_ENV, CryptoError, FieldCipher, KeyStore

PASSWORD = "medrisk-test-pass-0001"
FAST = 100_000  # the minimum; the default (600,000) is used where the stored format is checked


def test_password_from_env_and_missing_or_short(tmp_path, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(CryptoError, match=PASSWORD_ENV):
        KeyStore(tmp_path)
    with pytest.raises(CryptoError, match="MY_PW"):
        KeyStore(tmp_path, password_env="MY_PW")
    with pytest.raises(CryptoError, match="too short"):
        KeyStore(tmp_path, "short")
    with pytest.raises(CryptoError, match="iterations"):
        KeyStore(tmp_path, PASSWORD, iterations=1000)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    ks = KeyStore(tmp_path / "keys", iterations=FAST)
    assert ks.signing_key().public_key() == KeyStore(tmp_path / "keys", PASSWORD).public_key()


def test_first_use_creates_protected_files_and_reopens(tmp_path, caplog):
    directory = tmp_path / "keys"
    with caplog.at_level(logging.DEBUG, logger="medrisk.crypto"):
        ks = KeyStore(directory, PASSWORD)
        key = ks.signing_key()
        kid, data_key = ks.data_key()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in (KeyStore.SIGNING_KEY_FILE, KeyStore.DATA_KEY_FILE):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [KeyStore.SIGNING_KEY_FILE, KeyStore.SIGNING_PUBLIC_FILE, KeyStore.DATA_KEY_FILE]
    )
    assert (directory / KeyStore.SIGNING_KEY_FILE).read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert data_key.hex() not in (directory / KeyStore.DATA_KEY_FILE).read_text()
    assert key.public_key().fingerprint() in caplog.text and kid in caplog.text
    assert PASSWORD not in caplog.text and data_key.hex() not in caplog.text
    assert ks.signing_key() is key  # cached

    again = KeyStore(directory, PASSWORD)
    assert again.public_key() == key.public_key()
    assert again.data_key() == (kid, data_key)
    token = ks.field_cipher().encrypt_str("张三 13800138000")
    assert token.startswith(f"sm4gcm:v1:{kid}:")
    assert again.field_cipher().decrypt_str(token) == "张三 13800138000"
    assert isinstance(again.field_cipher(), FieldCipher)
    assert key.public_key().verify(again.signing_key().sign(b"audit"), b"audit")
    assert PASSWORD not in repr(ks)


def test_wrong_password(tmp_path):
    ks = KeyStore(tmp_path, PASSWORD, iterations=FAST)
    ks.signing_key()
    ks.data_key()
    bad = KeyStore(tmp_path, "not-the-right-password", iterations=FAST)
    with pytest.raises(CryptoError, match="wrong password") as info:
        bad.signing_key()
    assert "not-the-right" not in str(info.value)
    with pytest.raises(CryptoError, match="wrong password") as info:
        bad.data_key()
    assert "not-the-right" not in str(info.value)


def test_tampered_data_key_file(tmp_path):
    KeyStore(tmp_path, PASSWORD, iterations=FAST).data_key()
    path = tmp_path / KeyStore.DATA_KEY_FILE
    original = json.loads(path.read_text())

    def reopen_with(**changes):
        path.write_text(json.dumps({**original, **changes}))
        return KeyStore(tmp_path, PASSWORD, iterations=FAST).data_key()

    with pytest.raises(CryptoError, match="file was modified"):
        reopen_with(kid="dk-000000000000")  # the kid is bound as associated data
    with pytest.raises(CryptoError, match="file was modified"):
        reopen_with(kdf={**original["kdf"], "iterations": original["kdf"]["iterations"] + 1})
    with pytest.raises(CryptoError, match="out of range"):
        reopen_with(kdf={**original["kdf"], "iterations": 10**12})
    with pytest.raises(CryptoError, match="unsupported"):
        reopen_with(wrap="aes-gcm")
    with pytest.raises(CryptoError, match="not valid base64"):
        reopen_with(wrapped_key="!!")
    path.write_text("{not json")
    with pytest.raises(CryptoError, match="invalid JSON"):
        KeyStore(tmp_path, PASSWORD, iterations=FAST).data_key()


def test_openssl_reads_the_stored_signing_key(openssl, tmp_path, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    ks = KeyStore(tmp_path)
    ks.signing_key()
    pub = openssl.cmd(
        "pkey -in {key} -passin env:MEDRISK_KEYSTORE_PASSWORD -pubout", key=tmp_path / KeyStore.SIGNING_KEY_FILE
    ).stdout
    assert pub == (tmp_path / KeyStore.SIGNING_PUBLIC_FILE).read_bytes() == ks.public_key().to_pem()


def test_public_file_is_repaired(tmp_path):
    ks = KeyStore(tmp_path, PASSWORD, iterations=FAST)
    pub = ks.public_key()
    (tmp_path / KeyStore.SIGNING_PUBLIC_FILE).write_bytes(b"stale")
    assert KeyStore(tmp_path, PASSWORD, iterations=FAST).public_key() == pub
    assert (tmp_path / KeyStore.SIGNING_PUBLIC_FILE).read_bytes() == pub.to_pem()


def test_concurrent_first_use_agrees_on_one_key(tmp_path):
    stores = [KeyStore(tmp_path, PASSWORD, iterations=FAST) for _ in range(4)]
    results: list = [None] * len(stores)

    def work(i: int) -> None:
        results[i] = (stores[i].public_key().to_point(), stores[i].data_key())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == results[0] for r in results)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
