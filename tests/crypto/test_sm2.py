"""SM2 with SM3 (GB/T 32918 / GM/T 0003): standard examples, and both directions against openssl."""

from __future__ import annotations

import pickle
import re

import pytest

from medrisk.crypto import (
    DEFAULT_UID,
    CryptoError,
    SM2PrivateKey,
    SM2PublicKey,
    load_private_key_der,
    load_private_key_pem,
    load_public_key_der,
    load_public_key_pem,
    load_public_key_point,
    self_test,
    sign_file,
    verify_file,
)
from medrisk.crypto import sm2 as sm2_module
from medrisk.crypto.selftest import SM2_EXAMPLE_PUBLIC, SM2_EXAMPLE_R, SM2_EXAMPLE_S, _der_signature

MSG = b"MedRisk report: app com.example.health, grade B\n" * 20


@pytest.fixture(scope="module")
def key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


@pytest.fixture
def files(tmp_path, key):
    (tmp_path / "msg.bin").write_bytes(MSG)
    (tmp_path / "pub.pem").write_bytes(key.public_key().to_pem())
    (tmp_path / "key.pem").write_bytes(key.to_pem())
    return tmp_path


def test_self_test_passes():
    self_test()


def test_default_uid():
    assert DEFAULT_UID == b"1234567812345678"


def test_standard_example_default_uid():
    # GM/T 0003.5-2012 / GB/T 32918.5 example: d = 3945208f..., message "message digest"
    pub = load_public_key_point(SM2_EXAMPLE_PUBLIC)
    sig = _der_signature(SM2_EXAMPLE_R, SM2_EXAMPLE_S)
    assert pub.verify(sig, b"message digest")
    assert pub.verify(sig, b"message digest", uid=b"1234567812345678")
    assert not pub.verify(sig, b"message digest", uid=b"")
    assert not pub.verify(sig, b"message digesT")
    assert not pub.verify(_der_signature(SM2_EXAMPLE_R, SM2_EXAMPLE_S + 1), b"message digest")


def test_standard_example_other_uid():
    # Same key and nonce, uid "ALICE123@YAHOO.COM" (the standard's example identity)
    pub = load_public_key_point(SM2_EXAMPLE_PUBLIC)
    sig = _der_signature(
        0xB0E3E7D4AC2178F833AD73FA9D1191E41C76C8BFEDB5AD89040BA2E5184BDE58,
        0xCC8D096578F7DD2669AC1AC42F7E722BCFA42B9E0BE0B1B5DF7CA0B53FDD5750,
    )
    assert pub.verify(sig, b"message digest", uid=b"ALICE123@YAHOO.COM")
    assert not pub.verify(sig, b"message digest")


def test_private_key_matches_standard_public_key():
    d = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
    from tongsuopy.crypto.asymciphers import ec

    key = SM2PrivateKey(ec.derive_private_key(int.from_bytes(d, "big"), ec.SM2()))
    assert key.public_key().to_point() == SM2_EXAMPLE_PUBLIC
    assert key.public_key() == load_public_key_point(SM2_EXAMPLE_PUBLIC)


def test_curve_constants_match_openssl(openssl):
    text = openssl("ecparam", "-name", "SM2", "-param_enc", "explicit", "-text", "-noout").stdout.decode()

    def field(label: str) -> int:
        m = re.search(rf"^{label}:\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M)
        assert m, label
        return int(re.sub(r"[\s:]", "", m.group(1)), 16)

    assert field("Prime") == sm2_module._P
    assert field("A") == sm2_module._A
    assert field("B") == sm2_module._B
    assert field("Order") == sm2_module._N
    assert field("Generator \\(uncompressed\\)") == int(f"04{sm2_module._GX:064x}{sm2_module._GY:064x}", 16)


def test_sign_verify_round_trip_and_negative_cases(key):
    pub = key.public_key()
    sig = key.sign(MSG)
    assert sig[0] == 0x30 and 8 <= len(sig) <= 72
    assert pub.verify(sig, MSG)
    assert not pub.verify(sig, MSG + b"x")
    assert not pub.verify(sig, MSG[:-1])
    assert not pub.verify(sig, MSG, uid=b"1234567812345679")
    assert not pub.verify(sig, MSG, uid=b"")
    assert not SM2PrivateKey.generate().public_key().verify(sig, MSG)
    other = key.sign(MSG, uid=b"ALICE123@YAHOO.COM")
    assert pub.verify(other, MSG, uid=b"ALICE123@YAHOO.COM")
    assert not pub.verify(other, MSG)


def test_two_signatures_differ_and_both_verify(key):
    a, b = key.sign(MSG), key.sign(MSG)
    assert a != b
    assert key.public_key().verify(a, MSG) and key.public_key().verify(b, MSG)


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x30", b"\x30\x00", b"junk" * 3, b"\x30" * 72, b"\x00" * 500, bytes(range(256)), "not bytes", None, 42],
)
def test_verify_never_raises_on_garbage(key, bad):
    assert key.public_key().verify(bad, MSG) is False


def test_verify_rejects_malleated_encodings(key):
    pub, sig = key.public_key(), key.sign(MSG)
    assert not pub.verify(sig + b"\x00", MSG)  # trailing data
    assert not pub.verify(sig[:-1], MSG)  # truncated
    flipped = bytearray(sig)
    flipped[-1] ^= 1
    assert not pub.verify(bytes(flipped), MSG)
    # r, s re-encoded with a superfluous leading zero (non-DER) must not be accepted
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(sig)
    padded_r = b"\x02" + bytes([33 + (r >> 255)]) + b"\x00" + r.to_bytes(32 + (r >> 255), "big")
    s_enc = _der_signature(0, s)[2 + 3 :]
    body = padded_r + s_enc
    assert not pub.verify(b"\x30" + bytes([len(body)]) + body, MSG)
    # the well-formed re-encoding still verifies
    assert pub.verify(_der_signature(r, s), MSG)


def test_sign_rejects_bad_arguments(key):
    with pytest.raises(TypeError):
        key.sign("text")  # type: ignore[arg-type]
    with pytest.raises(CryptoError, match="user id too long"):
        key.sign(b"x", uid=b"u" * 8192)
    assert key.public_key().verify(key.sign(b"x", uid=b"u" * 8191), b"x", uid=b"u" * 8191)


# -- against the openssl command line --------------------------------------------------------------


def test_ours_verified_by_openssl_dgst_and_pkeyutl(openssl, files, key):
    (files / "msg.sig").write_bytes(key.sign(MSG))
    paths = {"pub": files / "pub.pem", "sig": files / "msg.sig", "msg": files / "msg.bin"}
    out = openssl.cmd(
        "dgst -sm3 -verify {pub} -sigopt distid:1234567812345678 -signature {sig} {msg}",
        **paths,
    )
    assert b"Verified OK" in out.stdout
    out = openssl.cmd(
        "pkeyutl -verify -in {msg} -sigfile {sig} -pubin -inkey {pub} -rawin -digest sm3"
        " -pkeyopt distid:1234567812345678",
        **paths,
    )
    assert b"Signature Verified Successfully" in out.stdout
    # the OpenSSL 3.0 pitfall: without distid it uses an empty id, and a standard signature fails
    out = openssl.cmd("dgst -sm3 -verify {pub} -signature {sig} {msg}", check=False, **paths)
    assert out.returncode == 1 and b"Verification failure" in out.stdout


def test_ours_with_custom_uid_verified_by_openssl(openssl, files, key):
    uid = b"medrisk-report\x00\xff"
    (files / "msg.sig").write_bytes(key.sign(MSG, uid=uid))
    out = openssl.cmd(
        "dgst -sm3 -verify {pub} -sigopt hexdistid:{uid} -signature {sig} {msg}",
        pub=files / "pub.pem",
        uid=uid.hex(),
        sig=files / "msg.sig",
        msg=files / "msg.bin",
    )
    assert b"Verified OK" in out.stdout


def test_openssl_signature_verified_by_ours(openssl, tmp_path):
    d = tmp_path
    (d / "m").write_bytes(MSG)
    openssl.cmd("genpkey -algorithm SM2 -out {d}/k.pem", d=d)
    openssl.cmd("pkey -in {d}/k.pem -pubout -out {d}/p.pem", d=d)
    openssl.cmd("dgst -sm3 -sign {d}/k.pem -sigopt distid:1234567812345678 -out {d}/s1 {d}/m", d=d)
    openssl.cmd(
        "pkeyutl -sign -inkey {d}/k.pem -rawin -digest sm3 -pkeyopt distid:1234567812345678 -in {d}/m -out {d}/s2", d=d
    )
    openssl.cmd("dgst -sm3 -sign {d}/k.pem -sigopt distid:ALICE123@YAHOO.COM -out {d}/s3 {d}/m", d=d)
    pub = load_public_key_pem((tmp_path / "p.pem").read_bytes())
    s1, s2, s3 = (tmp_path / "s1").read_bytes(), (tmp_path / "s2").read_bytes(), (tmp_path / "s3").read_bytes()
    assert pub.verify(s1, MSG) and pub.verify(s2, MSG)
    assert not pub.verify(s1, MSG + b"!")
    assert not pub.verify(s1, MSG, uid=b"ALICE123@YAHOO.COM")
    assert pub.verify(s3, MSG, uid=b"ALICE123@YAHOO.COM") and not pub.verify(s3, MSG)
    assert verify_file(pub, tmp_path / "m", tmp_path / "s1")
    # an openssl-generated private key works with our signer, and openssl verifies the result
    priv = load_private_key_pem((tmp_path / "k.pem").read_bytes())
    assert priv.public_key() == pub
    (tmp_path / "ours").write_bytes(priv.sign(MSG))
    openssl.cmd("dgst -sm3 -verify {d}/p.pem -sigopt distid:1234567812345678 -signature {d}/ours {d}/m", d=d)


def test_detached_signature_files(openssl, files, key):
    sig_path = sign_file(key, files / "msg.bin")
    assert sig_path == files / "msg.bin.sig"
    assert verify_file(key.public_key(), files / "msg.bin")
    out = openssl.cmd(
        "dgst -sm3 -verify {pub} -sigopt distid:1234567812345678 -signature {sig} {msg}",
        pub=files / "pub.pem",
        sig=sig_path,
        msg=files / "msg.bin",
    )
    assert b"Verified OK" in out.stdout
    custom = sign_file(key, files / "msg.bin", files / "custom.der", uid=b"ALICE123@YAHOO.COM")
    assert verify_file(key.public_key(), files / "msg.bin", custom, uid=b"ALICE123@YAHOO.COM")
    assert not verify_file(key.public_key(), files / "msg.bin", custom)
    # a file larger than one read chunk hashes the same as in memory
    big = files / "big.bin"
    big.write_bytes(b"\xab" * (3 * 1024 * 1024 + 5))
    sign_file(key, big)
    assert key.public_key().verify((files / "big.bin.sig").read_bytes(), big.read_bytes())
    # tampering, missing and malformed signature files give False
    (files / "msg.bin").write_bytes(MSG + b"tampered")
    assert not verify_file(key.public_key(), files / "msg.bin")
    assert not verify_file(key.public_key(), files / "msg.bin", files / "absent.sig")
    (files / "empty.sig").write_bytes(b"")
    assert not verify_file(key.public_key(), files / "msg.bin", files / "empty.sig")
    (files / "huge.sig").write_bytes(b"\x30" * 100_000)
    assert not verify_file(key.public_key(), files / "msg.bin", files / "huge.sig")


# -- key serialisation ------------------------------------------------------------------------------


def test_public_key_pem_der_round_trip_and_openssl_parses_it(openssl, files, key):
    pub = key.public_key()
    pem = pub.to_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert load_public_key_pem(pem) == pub
    assert load_public_key_der(pub.to_der()) == pub
    assert load_public_key_point(pub.to_point()) == pub
    text = openssl("pkey", "-pubin", "-in", str(files / "pub.pem"), "-noout", "-text").stdout.decode()
    assert "ASN1 OID: SM2" in text
    assert pub.to_point().hex() in re.sub(r"[\s:]", "", text)
    # openssl's own re-encoding of the key is byte-identical
    der = openssl("pkey", "-pubin", "-in", str(files / "pub.pem"), "-outform", "DER").stdout
    assert der == pub.to_der()
    assert len(pub.fingerprint()) == 64


def test_private_key_round_trips(key):
    assert load_private_key_pem(key.to_pem()).public_key() == key.public_key()
    assert load_private_key_der(key.to_der()).public_key() == key.public_key()
    enc = key.to_pem("correct horse battery", iterations=100_000)
    assert enc.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert load_private_key_pem(enc, "correct horse battery").public_key() == key.public_key()
    assert load_private_key_pem(enc, b"correct horse battery").public_key() == key.public_key()
    assert (
        load_private_key_der(key.to_der("pw-123456", iterations=100_000), "pw-123456").public_key() == key.public_key()
    )
    loaded = load_private_key_pem(enc, "correct horse battery")
    assert key.public_key().verify(loaded.sign(MSG), MSG)


def test_private_key_password_errors(key):
    enc = key.to_pem("correct horse battery", iterations=100_000)
    with pytest.raises(CryptoError, match="wrong password") as info:
        load_private_key_pem(enc, "wrong horse battery")
    assert "horse" not in str(info.value)
    with pytest.raises(CryptoError, match="password is required"):
        load_private_key_pem(enc)
    with pytest.raises(CryptoError, match="not encrypted"):
        load_private_key_pem(key.to_pem(), "some password")
    with pytest.raises(CryptoError, match="must not be empty"):
        key.to_pem("")
    with pytest.raises(CryptoError, match="iterations"):
        key.to_pem("correct horse battery", iterations=2048)


def test_encrypted_pem_envelope_and_openssl_reads_it(openssl, tmp_path, key):
    path = tmp_path / "enc.pem"
    path.write_bytes(key.to_pem("correct horse battery"))
    asn1 = openssl("asn1parse", "-in", str(path)).stdout.decode()
    for expected in ("PBES2", "PBKDF2", "hmacWithSHA256", "sm4-cbc", ":0927C0"):  # 0x927C0 = 600000 iterations
        assert expected in asn1, expected
    pub = openssl("pkey", "-in", str(path), "-passin", "pass:correct horse battery", "-pubout").stdout
    assert load_public_key_pem(pub) == key.public_key()
    bad = openssl("pkey", "-in", str(path), "-passin", "pass:wrong", "-noout", check=False)
    assert bad.returncode != 0


@pytest.mark.parametrize("cipher", ["aes-256-cbc", "sm4-cbc"])
def test_loads_openssl_encrypted_keys(openssl, tmp_path, cipher):
    openssl("genpkey", "-algorithm", "SM2", "-out", str(tmp_path / "k.pem"))
    openssl.cmd("pkcs8 -topk8 -in {d}/k.pem -v2 {c} -passout pass:s3cret-pass -out {d}/e.pem", d=tmp_path, c=cipher)
    plain = load_private_key_pem((tmp_path / "k.pem").read_bytes())
    enc = load_private_key_pem((tmp_path / "e.pem").read_bytes(), "s3cret-pass")
    assert enc.public_key() == plain.public_key()


def test_loads_sec1_keys_written_by_openssl_ec(openssl, tmp_path):
    openssl.cmd("genpkey -algorithm SM2 -out {d}/k.pem", d=tmp_path)
    openssl.cmd("ec -in {d}/k.pem -out {d}/sec1.pem", d=tmp_path)
    sec1 = (tmp_path / "sec1.pem").read_bytes()
    assert sec1.startswith(b"-----BEGIN SM2 PRIVATE KEY-----")
    expected = load_private_key_pem((tmp_path / "k.pem").read_bytes()).public_key()
    assert load_private_key_pem(sec1).public_key() == expected
    assert load_private_key_pem(sec1.replace(b"SM2 PRIVATE", b"EC PRIVATE")).public_key() == expected


def test_rejects_non_sm2_keys(openssl, tmp_path):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(tmp_path / "p256.pem"))
    openssl("pkey", "-in", str(tmp_path / "p256.pem"), "-pubout", "-out", str(tmp_path / "p256.pub"))
    openssl("genpkey", "-algorithm", "ED25519", "-out", str(tmp_path / "ed.pem"))
    openssl("pkey", "-in", str(tmp_path / "ed.pem"), "-pubout", "-out", str(tmp_path / "ed.pub"))
    with pytest.raises(CryptoError, match="not an SM2"):
        load_private_key_pem((tmp_path / "p256.pem").read_bytes())
    with pytest.raises(CryptoError, match="not an SM2"):
        load_public_key_pem((tmp_path / "p256.pub").read_bytes())
    with pytest.raises(CryptoError):
        load_private_key_pem((tmp_path / "ed.pem").read_bytes())
    with pytest.raises(CryptoError):
        load_public_key_pem((tmp_path / "ed.pub").read_bytes())
    with pytest.raises(CryptoError):
        load_public_key_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(CryptoError):
        load_private_key_pem(b"garbage")
    with pytest.raises(CryptoError, match="not a point"):
        load_public_key_point(b"\x04" + b"\x01" * 64)


def test_private_key_does_not_leak(key):
    d = key._key.private_numbers().private_value
    for text in (repr(key), str(key)):
        assert f"{d:x}" not in text and str(d) not in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)
    assert isinstance(key.public_key(), SM2PublicKey)
    assert pickle.loads(pickle.dumps(key.public_key().to_pem())) == key.public_key().to_pem()
