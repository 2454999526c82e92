"""Known-answer self-test: call ``self_test()`` once at service start-up.

It catches a ``cryptography`` built against an OpenSSL without SM3/SM4 (distro or FIPS
builds), a missing or incompatible tongsuopy, and any drift in how Z is computed.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from medrisk.crypto.errors import CryptoError

# GB/T 32905-2016 Appendix A, example 1
_SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
# GB/T 32907-2016 Appendix A, example 1 (key = plaintext)
_SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
_SM4_CT = "681edf34d206965e86b3e94f536e4246"
# RFC 8998 Appendix A.1 (SM4-GCM)
_GCM_NONCE = bytes.fromhex("00001234567800000000abcd")
_GCM_AAD = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
_GCM_PT = bytes.fromhex("aa" * 8 + "bb" * 8 + "cc" * 8 + "dd" * 8 + "ee" * 8 + "ff" * 8 + "ee" * 8 + "aa" * 8)
_GCM_CT_TAG = bytes.fromhex(
    "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735"
    "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d"
    "83de3541e4c2b58177e065a9bf7b62ec"
)
# GM/T 0003.5-2012 / GB/T 32918.5 example on the recommended curve: message "message digest",
# uid 1234567812345678, d = 3945208f...c5b8, k = 59276e27...bc21.
SM2_EXAMPLE_PUBLIC = bytes.fromhex(
    "04"
    "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
    "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
)
SM2_EXAMPLE_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
SM2_EXAMPLE_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA


def _der_signature(r: int, s: int) -> bytes:
    def integer(v: int) -> bytes:
        raw = v.to_bytes(v.bit_length() // 8 + 1, "big")
        return b"\x02" + bytes([len(raw)]) + raw

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


def self_test() -> None:
    """Run the known-answer tests; raise :class:`CryptoError` naming the first that fails."""
    from medrisk.crypto.sm2 import DEFAULT_UID, SM2PrivateKey, load_public_key_point
    from medrisk.crypto.sm3 import sm3_hex
    from medrisk.crypto.sm4 import sm4_gcm_decrypt

    try:
        ok = sm3_hex(b"abc") == _SM3_ABC
    except Exception as exc:
        raise CryptoError(f"self-test: SM3 unavailable in this cryptography build ({type(exc).__name__})") from None
    if not ok:
        raise CryptoError("self-test: SM3 known answer mismatch")

    try:
        enc = Cipher(algorithms.SM4(_SM4_KEY), modes.ECB()).encryptor()  # noqa: S305 - single-block KAT
        ok = (enc.update(_SM4_KEY) + enc.finalize()).hex() == _SM4_CT
        ok = ok and sm4_gcm_decrypt(_SM4_KEY, _GCM_NONCE + _GCM_CT_TAG, _GCM_AAD) == _GCM_PT
    except CryptoError:
        ok = False
    except Exception as exc:
        raise CryptoError(
            f"self-test: SM4/SM4-GCM unavailable in this cryptography build ({type(exc).__name__})"
        ) from None
    if not ok:
        raise CryptoError("self-test: SM4 known answer mismatch")

    example = load_public_key_point(SM2_EXAMPLE_PUBLIC)
    sig = _der_signature(SM2_EXAMPLE_R, SM2_EXAMPLE_S)
    if not example.verify(sig, b"message digest", DEFAULT_UID) or example.verify(sig, b"message digesT"):
        raise CryptoError("self-test: SM2 standard example does not verify")

    # Our Z for the default uid must equal the one Tongsuo computes on its own.
    from tongsuopy.crypto import hashes as t_hashes
    from tongsuopy.crypto.asymciphers import ec as t_ec
    from tongsuopy.crypto.exceptions import InvalidSignature

    key = SM2PrivateKey.generate()
    ours = key.sign(b"self-test")
    try:
        key.public_key()._key.verify(ours, b"self-test", t_ec.ECDSA(t_hashes.SM3()))
    except InvalidSignature:
        raise CryptoError("self-test: SM2 signature not accepted by the backend's own verifier") from None
    theirs = key._key.sign(b"self-test", t_ec.ECDSA(t_hashes.SM3()))
    if not key.public_key().verify(theirs, b"self-test"):
        raise CryptoError("self-test: backend SM2 signature not accepted by our verifier")
