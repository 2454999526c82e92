"""Tests of analysis/signing.py, checked against Debian's apksigner on the whole corpus."""

from __future__ import annotations

import base64
import json
import re
import shutil
import struct
import subprocess
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medrisk.analysis.signing import SigningFacts, signing_facts
from tests.conftest import CORPUS, corpus_apks

APKS = corpus_apks()
SCHEME_KEYS = ("v1", "v2", "v3", "v31", "v4")
NO_JAR_SIGNATURE = ("ERROR: No JAR signatures", "ERROR: Missing META-INF/MANIFEST.MF")


# ----------------------------------------------------------------------------- helpers


def _reader(path: Path) -> Callable[[str], bytes | None]:
    zf = zipfile.ZipFile(path)

    def read(name: str) -> bytes | None:
        try:
            return zf.read(name)
        except KeyError:
            return None

    return read


def _facts(name: str, min_sdk: int | None = None) -> SigningFacts:
    path = CORPUS / name
    return signing_facts(path.read_bytes(), _reader(path), min_sdk)


def _meta_inf(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n.startswith("META-INF/")}


def _check_shape(d: dict) -> None:
    """Exactly the `signing` object of docs/indicators.md, JSON-serialisable."""
    json.dumps(d)
    assert set(d) == {
        "schemes",
        "certificates",
        "v1_digest_algorithms",
        "v1_only",
        "janus_vulnerable",
        "weak_algorithms",
        "errors",
    }
    assert set(d["schemes"]) == set(SCHEME_KEYS)
    assert all(isinstance(v, bool) for v in d["schemes"].values())
    for key in ("v1_only", "janus_vulnerable"):
        assert isinstance(d[key], bool)
    for key in ("v1_digest_algorithms", "weak_algorithms", "errors"):
        assert isinstance(d[key], list) and all(isinstance(x, str) for x in d[key])
    assert d["weak_algorithms"] == sorted(d["weak_algorithms"])
    assert d["v1_only"] == (
        d["schemes"]["v1"] and not (d["schemes"]["v2"] or d["schemes"]["v3"] or d["schemes"]["v31"])
    )
    shas = [c["sha256"] for c in d["certificates"]]
    assert shas == sorted(set(shas))
    for c in d["certificates"]:
        assert set(c) == {
            "schemes",
            "subject",
            "issuer",
            "serial",
            "not_before",
            "not_after",
            "key_algorithm",
            "key_size",
            "signature_algorithm",
            "sha256",
            "sha1",
            "is_debug",
            "self_signed",
        }
        assert c["schemes"] and all(d["schemes"][s] for s in c["schemes"])
        assert c["schemes"] == sorted(c["schemes"], key=SCHEME_KEYS.index)
        assert re.fullmatch(r"[0-9a-f]{64}", c["sha256"]) and re.fullmatch(r"[0-9a-f]{40}", c["sha1"])
        assert re.fullmatch(r"-?[0-9a-f]+", c["serial"])
        for key in ("not_before", "not_after"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c[key])
        assert c["key_size"] is None or isinstance(c["key_size"], int)
        for key in ("subject", "issuer", "key_algorithm", "signature_algorithm"):
            assert isinstance(c[key], str)
        assert isinstance(c["is_debug"], bool) and isinstance(c["self_signed"], bool)


# ---------------------------------------------------------------------- apksigner


@dataclass
class Verdict:
    verifies: bool
    schemes: set[str] = field(default_factory=set)  # "verified using" true
    signers: list[str] = field(default_factory=list)  # certificate SHA-256 of Signer #1, #2, ...
    key_algorithms: list[tuple[str, int]] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    first_error: str = ""


def _run_apksigner(path: Path, min_sdk: int) -> Verdict:
    out = subprocess.run(
        ["apksigner", "verify", "--verbose", "--print-certs", "--min-sdk-version", str(min_sdk), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = out.stdout + out.stderr
    verdict = Verdict(verifies=out.returncode == 0 and text.startswith("Verifies"))
    for m in re.finditer(r"^Verified using v(\d(?:\.\d)?) scheme [^:]*: (true|false)$", text, re.M):
        if m.group(2) == "true":
            verdict.schemes.add("v" + m.group(1).replace(".", ""))
    verdict.signers = re.findall(r"^Signer #\d+ certificate SHA-256 digest: ([0-9a-f]{64})$", text, re.M)
    verdict.dns = re.findall(r"^Signer #\d+ certificate DN: (.*)$", text, re.M)
    algos = re.findall(r"^Signer #\d+ key algorithm: (\S+)$", text, re.M)
    sizes = re.findall(r"^Signer #\d+ key size \(bits\): (\d+)$", text, re.M)
    verdict.key_algorithms = [(a, int(s)) for a, s in zip(algos, sizes)]
    errors = [line for line in text.splitlines() if line.startswith("ERROR")]
    verdict.first_error = errors[0] if errors else ""
    return verdict


@dataclass
class Truth:
    """What apksigner established about one APK.

    kind: "full"      verifies with --min-sdk-version 21: v1 and every v2+ scheme are checked;
          "no-v1"     no JAR signature; verifies with --min-sdk-version 24 (v2+ only);
          "unsigned"  no JAR signature and no v2+ signature;
          "rejected"  apksigner rejects it (e.g. a bad signature): only presence can be compared.
    """

    kind: str
    verdict: Verdict


def _truth(path: Path) -> Truth:
    # minSdk 21 (not 1): older platforms lack SHA-256/SHA-512/MD5-with-RSA JAR signatures, and
    # below 24 apksigner verifies v1 even when v2/v3 are present, so every scheme gets checked.
    first = _run_apksigner(path, 21)
    if first.verifies:
        return Truth("full", first)
    if not first.first_error.startswith(NO_JAR_SIGNATURE):
        return Truth("rejected", first)
    second = _run_apksigner(path, 24)
    if second.verifies:
        return Truth("no-v1", second)
    if second.first_error.startswith(NO_JAR_SIGNATURE):
        return Truth("unsigned", second)
    return Truth("rejected", second)


@pytest.fixture(scope="session")
def apksigner_truth(corpus_dir: Path) -> dict[str, Truth]:
    assert shutil.which("apksigner"), "apksigner is required (apt-get install apksigner)"
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip((p.name for p in APKS), pool.map(_truth, APKS)))


@pytest.mark.parametrize("apk", APKS, ids=[p.name for p in APKS])
def test_agrees_with_apksigner(apk: Path, apksigner_truth: dict[str, Truth]) -> None:
    truth = apksigner_truth[apk.name]
    facts = signing_facts(apk.read_bytes(), _reader(apk), None)
    d = facts.to_dict()
    _check_shape(d)
    ours = {k for k in ("v1", "v2", "v3", "v31") if d["schemes"][k]}
    v = truth.verdict
    if truth.kind == "rejected":
        # apksigner says "verified using ...: false" for every scheme when verification fails,
        # so only presence could be compared; instead we must have found a problem too.
        assert ours, "apksigner rejects a signature we did not even find"
        assert d["errors"], f"apksigner rejects it ({v.first_error}) but we report no error"
        return
    expected = v.schemes if truth.kind != "unsigned" else set()
    if truth.kind == "no-v1":
        expected = expected - {"v1"}
    assert ours == expected
    assert d["errors"] == []
    if truth.kind == "unsigned":
        assert d["certificates"] == []
        return
    # apksigner prints the signers of the newest verified scheme
    top = max(expected, key=SCHEME_KEYS.index)
    top_certs = [c for c in d["certificates"] if top in c["schemes"]]
    assert sorted(c["sha256"] for c in top_certs) == sorted(v.signers)
    by_sha = {c["sha256"]: c for c in top_certs}
    for sha, (algorithm, size), dn in zip(v.signers, v.key_algorithms, v.dns):
        cert = by_sha[sha]
        assert (cert["key_algorithm"], cert["key_size"]) == (algorithm, size)
        if "\\" not in dn and "\\" not in cert["subject"]:
            assert cert["subject"] == dn.replace(", ", ",")


def test_apksigner_agreement_summary(apksigner_truth: dict[str, Truth]) -> None:
    kinds = [t.kind for t in apksigner_truth.values()]
    assert len(kinds) == len(APKS) >= 70
    # every APK but the one with the broken JAR signature is fully compared
    assert kinds.count("rejected") == 1
    assert apksigner_truth["fdroidserver-urzip-badsig.apk"].kind == "rejected"
    assert kinds.count("full") >= 50


# --------------------------------------------------------------------- specific APKs


def test_v1_only_rsa_md5_1024() -> None:
    d = _facts("apksig-v1-only-rsa-md5-1024.apk").to_dict()
    assert d["schemes"] == {"v1": True, "v2": False, "v3": False, "v31": False, "v4": False}
    assert d["v1_only"] is True
    assert d["janus_vulnerable"] is True  # min_sdk unknown
    assert d["v1_digest_algorithms"] == ["SHA-1"]
    assert {"MD5", "RSA-1024", "SHA-1"} <= set(d["weak_algorithms"])
    [cert] = d["certificates"]
    assert cert["schemes"] == ["v1"]
    assert cert["subject"] == cert["issuer"] == "CN=rsa-1024"
    assert cert["self_signed"] is True and cert["is_debug"] is False
    assert (cert["key_algorithm"], cert["key_size"]) == ("RSA", 1024)
    assert cert["sha256"] == "bc5e64eab1c4b5137c0fbc5ed05850b3a148d1c41775cffa4d96eea90bdd0eb8"
    assert cert["sha1"] == "b5cce54e2a4b322b794318a1b3084a9bd7ff2f50"
    assert cert["serial"] == format(18233585640859430344, "x")
    assert cert["not_before"] == "2016-03-31T16:14:43Z"
    assert cert["signature_algorithm"] == "sha256WithRSAEncryption"
    assert d["errors"] == []


@pytest.mark.parametrize(("min_sdk", "expected"), [(None, True), (14, True), (25, True), (26, False), (30, False)])
def test_janus_threshold(min_sdk: int | None, expected: bool) -> None:
    assert _facts("apksig-v1-only-rsa-md5-1024.apk", min_sdk).janus_vulnerable is expected


def test_v2_only_dsa() -> None:
    d = _facts("apksig-v2-only-dsa-sha256-1024.apk", 24).to_dict()
    assert d["schemes"] == {"v1": False, "v2": True, "v3": False, "v31": False, "v4": False}
    assert d["v1_only"] is False and d["janus_vulnerable"] is False
    assert d["v1_digest_algorithms"] == []
    [cert] = d["certificates"]
    assert cert["schemes"] == ["v2"]
    assert (cert["key_algorithm"], cert["key_size"]) == ("DSA", 1024)
    assert "DSA" in d["weak_algorithms"]
    assert d["errors"] == []  # the DSA-SHA256 signature over signed data verifies


def test_fdroid_v2_only() -> None:
    d = _facts("fdroidserver-v2.only.sig_2.apk", 14).to_dict()
    assert d["schemes"]["v2"] and not d["schemes"]["v1"] and not d["schemes"]["v3"]
    assert d["janus_vulnerable"] is False
    [cert] = d["certificates"]
    assert cert["sha256"] == "32a23624c201b949f085996ba5ed53d40f703aca4989476949cae891022e0ed6"
    assert cert["subject"].startswith("CN=Hans-Christoph Steiner,OU=Unknown,O=Guardian Project")
    assert (cert["key_algorithm"], cert["key_size"]) == ("RSA", 4096)
    assert d["weak_algorithms"] == [] and d["errors"] == []


def test_fdroid_janus() -> None:
    d = _facts("fdroidserver-janus.apk", 14).to_dict()
    assert d["v1_only"] is True and d["janus_vulnerable"] is True
    [cert] = d["certificates"]
    assert cert["is_debug"] is True
    assert cert["subject"] == "CN=Android Debug,O=Android,C=US"
    assert cert["sha256"] == "ebb0fedf1942a099b287c3db00ff732162152481abb2b6c7cbcdb2ba5894a768"
    assert _facts("fdroidserver-janus.apk", 26).janus_vulnerable is False


def test_fdroid_bad_signature() -> None:
    d = _facts("fdroidserver-urzip-badsig.apk").to_dict()
    assert d["schemes"]["v1"] is True
    assert len(d["certificates"]) == 1
    assert any("MANIFEST.MF section for AndroidManifest.xml does not match" in e for e in d["errors"])


def test_debug_certificate() -> None:
    d = _facts("DVHMA-featherweight-cordova6.3.0-debug.apk").to_dict()
    [cert] = d["certificates"]
    assert cert["is_debug"] is True and cert["self_signed"] is True
    assert "CN=Android Debug" in cert["subject"]
    assert d["v1_only"] is True


def test_v3_same_key_across_schemes() -> None:
    d = _facts("fdroidserver-SystemWebView-repack.apk", 21).to_dict()
    assert d["schemes"] == {"v1": True, "v2": True, "v3": True, "v31": False, "v4": False}
    [cert] = d["certificates"]
    assert cert["schemes"] == ["v1", "v2", "v3"]
    assert cert["sha256"] == "b5358886cf36cadab87bc992da9f9016ae9370bdd019e48ffb930674d5ed27c4"
    assert d["janus_vulnerable"] is False and d["errors"] == []


def test_duplicate_blocks_and_unknown_signature_algorithms() -> None:
    # two v2 and two v3 blocks, and signature algorithm 0x9901 apksigner does not know
    d = _facts("fdroidserver-issue-1128-poc2.apk").to_dict()
    assert d["schemes"]["v2"] and d["schemes"]["v3"] and not d["schemes"]["v1"]
    assert [c["sha256"][:10] for c in d["certificates"]] == ["1dbb8be012"]
    assert d["errors"] == []


def test_mapping_and_callable_agree() -> None:
    for name in ("apksig-v1-only-rsa-md5-1024.apk", "AndroGoat.apk", "fdroidserver-apk.embedded_1.apk"):
        path = CORPUS / name
        data = path.read_bytes()
        assert signing_facts(data, _meta_inf(path), None) == signing_facts(data, _reader(path), None)


def test_unsigned_and_garbage_inputs() -> None:
    d = _facts("fdroidserver-no_targetsdk_minsdk1_unsigned.apk").to_dict()
    assert not any(d["schemes"].values()) and d["certificates"] == [] and d["errors"] == []
    for data in (b"", b"PK\x05\x06", b"\x00" * 100, b"PK\x05\x06" + b"\xff" * 18):
        d = signing_facts(data, lambda name: None, None).to_dict()
        _check_shape(d)
        assert not any(d["schemes"].values())
    assert signing_facts(b"", {}, None).errors == ["zip: end of central directory record not found"]


def test_unreadable_entry_is_an_error() -> None:
    path = CORPUS / "apksig-v1-only-rsa-md5-1024.apk"

    def broken(name: str) -> bytes | None:
        raise OSError("disk on fire")

    d = signing_facts(path.read_bytes(), broken, None).to_dict()
    assert d["schemes"]["v1"] is True
    assert any("cannot be read" in e for e in d["errors"])


def test_tampered_sf_and_stripped_v2_claim() -> None:
    path = CORPUS / "DVHMA-featherweight-cordova6.3.0-debug.apk"
    entries = _meta_inf(path)
    sf = entries["META-INF/CERT.SF"]
    head, sep, rest = sf.partition(b"\r\n")
    entries["META-INF/CERT.SF"] = head + sep + b"X-Android-APK-Signed: 2\r\n" + rest
    errors = signing_facts(path.read_bytes(), entries, None).errors
    assert "v1 signer CERT.RSA: signature does not verify" in errors
    assert any("X-Android-APK-Signed says APK Signature Scheme v2" in e for e in errors)


def test_manifest_main_digest_mismatch_checks_sections() -> None:
    path = CORPUS / "apksig-v1-only-rsa-md5-1024.apk"
    entries = _meta_inf(path)
    entries["META-INF/MANIFEST.MF"] = entries["META-INF/MANIFEST.MF"].replace(
        b"SHA1-Digest: 6B6miTtKebxPgwp7DOOLZLcjyXk=", b"SHA1-Digest: AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    )
    errors = signing_facts(path.read_bytes(), entries, None).errors
    assert errors == [
        "v1 signer CERT.RSA: SHA-1 digest of MANIFEST.MF section for classes.dex does not match META-INF/CERT.SF"
    ]


# ------------------------------------------------------------ APK Signing Block surgery


def _block_span(data: bytes) -> tuple[int, int]:
    """(start, end) of the APK Signing Block, found independently of the module."""
    eocd = data.rfind(b"PK\x05\x06")
    cd = struct.unpack_from("<I", data, eocd + 16)[0]
    assert data[cd - 16 : cd] == b"APK Sig Block 42"
    size = struct.unpack_from("<Q", data, cd - 24)[0]
    return cd - size - 8, cd


def _first_signature_offset(data: bytes, block_id: int) -> int:
    """Offset of the first signature's bytes of the first signer of block ``block_id``."""
    start, end = _block_span(data)
    pos = start + 8
    while pos < end - 24:
        length, pair_id = struct.unpack_from("<QI", data, pos)
        if pair_id == block_id:
            p = pos + 12 + 4 + 4  # value: signers length, first signer length
            signed_data_len = struct.unpack_from("<I", data, p)[0]
            p += 4 + signed_data_len
            if block_id != 0x7109871A:
                p += 8  # v3 min/max SDK
            p += 4 + 4 + 4  # signatures length, first signature length, algorithm id
            return p + 4  # signature length
        pos += 8 + length
    raise AssertionError("block not found")


@pytest.mark.parametrize(("block_id", "label"), [(0x7109871A, "v2"), (0xF05368C0, "v3")])
def test_bad_v2_v3_signature_is_reported(block_id: int, label: str) -> None:
    path = CORPUS / "fdroidserver-apk.embedded_1.apk"
    data = bytearray(path.read_bytes())
    assert signing_facts(bytes(data), _reader(path), None).errors == []
    offset = _first_signature_offset(bytes(data), block_id)
    data[offset + 10] ^= 0x01
    d = signing_facts(bytes(data), _reader(path), None).to_dict()
    _check_shape(d)
    assert d["errors"] == [f"{label} signer 1: signature does not verify (RSASSA-PKCS1-SHA256)"]
    assert d["schemes"]["v2"] and d["schemes"]["v3"]


def test_truncated_signing_block_is_an_error() -> None:
    path = CORPUS / "fdroidserver-v2.only.sig_2.apk"
    data = bytearray(path.read_bytes())
    start, _ = _block_span(bytes(data))
    struct.pack_into("<Q", data, start, 7)  # header size no longer equals the footer size
    d = signing_facts(bytes(data), _reader(path), None).to_dict()
    assert not d["schemes"]["v2"]
    assert any(e.startswith("APK Signing Block: header size") for e in d["errors"])


def test_idsig_v4() -> None:
    path = CORPUS / "fdroidserver-v2.only.sig_2.apk"
    facts = _facts(path.name)
    cert_der = _first_v2_certificate(path.read_bytes())

    def lp(b: bytes) -> bytes:
        return struct.pack("<I", len(b)) + b

    signing_info = lp(b"\x01" * 32) + lp(cert_der) + lp(b"") + lp(b"") + struct.pack("<I", 0x0103) + lp(b"")
    idsig = struct.pack("<I", 2) + lp(b"hashing") + lp(signing_info) + lp(b"")
    d = signing_facts(path.read_bytes(), _reader(path), None, idsig=idsig).to_dict()
    assert d["schemes"]["v4"] is True
    assert d["certificates"][0]["schemes"] == ["v2", "v4"]
    assert d["certificates"][0]["sha256"] == facts.certificates[0].sha256
    d = signing_facts(path.read_bytes(), _reader(path), None, idsig=b"\x02\x00").to_dict()
    assert d["schemes"]["v4"] is False and d["errors"]


def _first_v2_certificate(data: bytes) -> bytes:
    start, end = _block_span(data)
    pos = start + 8
    length, pair_id = struct.unpack_from("<QI", data, pos)
    assert pair_id == 0x7109871A
    p = pos + 12 + 4 + 4 + 4  # signers, signer, signed data lengths
    p += 4 + struct.unpack_from("<I", data, p)[0]  # digests
    p += 4 + 4  # certificates length, first certificate length
    n = struct.unpack_from("<I", data, p - 4)[0]
    return data[p : p + n]


def _with_pairs(data: bytes, edit: Callable[[list[tuple[int, bytes]]], list[tuple[int, bytes]]]) -> bytes:
    """The APK with its signing block's (id, value) pairs edited; sizes and EOCD fixed up."""
    start, cd = _block_span(data)
    pairs = []
    pos = start + 8
    while pos < cd - 24:
        length, pair_id = struct.unpack_from("<QI", data, pos)
        pairs.append((pair_id, data[pos + 12 : pos + 8 + length]))
        pos += 8 + length
    body = b"".join(struct.pack("<QI", len(v) + 4, i) + v for i, v in edit(pairs))
    size = len(body) + 24
    block = struct.pack("<Q", size) + body + struct.pack("<Q", size) + b"APK Sig Block 42"
    out = bytearray(data[:start] + block + data[cd:])
    eocd = out.rfind(b"PK\x05\x06")
    struct.pack_into("<I", out, eocd + 16, start + len(block))
    return bytes(out)


def test_v31_block() -> None:
    path = CORPUS / "fdroidserver-apk.embedded_1.apk"
    v3 = dict(_with_pairs_probe(path.read_bytes()))[0xF05368C0]
    data = _with_pairs(path.read_bytes(), lambda pairs: [*pairs, (0x1B93AD61, v3)])
    d = signing_facts(data, _reader(path), 33).to_dict()
    _check_shape(d)
    assert d["schemes"] == {"v1": True, "v2": True, "v3": True, "v31": True, "v4": False}
    [cert] = d["certificates"]
    assert cert["schemes"] == ["v1", "v2", "v3", "v31"]
    assert d["errors"] == []


def test_stripped_v3_block() -> None:
    path = CORPUS / "fdroidserver-apk.embedded_1.apk"
    data = _with_pairs(path.read_bytes(), lambda pairs: [p for p in pairs if p[0] != 0xF05368C0])
    d = signing_facts(data, _reader(path), 21).to_dict()
    assert d["schemes"]["v2"] and not d["schemes"]["v3"]
    assert d["errors"] == [
        "v2: stripping protection says a v3 signature was removed",
        "v1: X-Android-APK-Signed says APK Signature Scheme v3 but the v3 block is missing",
    ]


def test_unknown_blocks_are_ignored() -> None:
    path = CORPUS / "fdroidserver-apk.embedded_1.apk"
    extra = [(0x6DFF800D, b"stamp"), (0x2B09189E, b"old stamp"), (0x71777777, b"channel"), (0x42726577, b"\0" * 9)]
    data = _with_pairs(path.read_bytes(), lambda pairs: [*pairs, *extra])
    assert signing_facts(data, _reader(path), 21) == _facts(path.name, 21)


def _with_pairs_probe(data: bytes) -> list[tuple[int, bytes]]:
    found: list[tuple[int, bytes]] = []

    def keep(pairs: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        found.extend(pairs)
        return pairs

    _with_pairs(data, keep)
    return found


def _sign(key, algo_id: int, message: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    h = hashes.SHA512() if algo_id in (0x0102, 0x0104, 0x0202) else hashes.SHA256()
    if isinstance(key, rsa.RSAPrivateKey):
        if algo_id in (0x0101, 0x0102):
            return key.sign(message, padding.PSS(padding.MGF1(h), h.digest_size), h)
        return key.sign(message, padding.PKCS1v15(), h)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(h))
    return key.sign(message, h)


def test_signature_algorithms() -> None:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

    from medrisk.analysis.signing import _verify

    keys = {
        "RSA": rsa.generate_private_key(65537, 2048),
        "EC": ec.generate_private_key(ec.SECP256R1()),
        "DSA": dsa.generate_private_key(2048),
    }
    cases = {0x0101: "RSA", 0x0102: "RSA", 0x0103: "RSA", 0x0104: "RSA", 0x0201: "EC", 0x0202: "EC"}
    cases |= {0x0301: "DSA", 0x0421: "RSA", 0x0423: "EC", 0x0425: "DSA"}
    message = b"signed data"
    for algo_id, kind in cases.items():
        signature = _sign(keys[kind], algo_id, message)
        public = keys[kind].public_key()
        assert _verify(public, algo_id, signature, message) is True, hex(algo_id)
        assert _verify(public, algo_id, signature, message + b"!") is False, hex(algo_id)
        other = keys["EC" if kind != "EC" else "RSA"].public_key()
        assert _verify(other, algo_id, signature, message) is False, hex(algo_id)
    assert _verify(keys["RSA"].public_key(), 0x9901, b"", message) is None


# ------------------------------------------------------------------------------ fuzzing

FUZZ_APK = CORPUS / "fdroidserver-apk.embedded_1.apk"  # v1 + v2 + v3, 17 KB


@pytest.fixture(scope="module")
def fuzz_base() -> tuple[bytes, tuple[int, int], dict[str, bytes]]:
    data = FUZZ_APK.read_bytes()
    return data, _block_span(data), _meta_inf(FUZZ_APK)


_edits = st.lists(
    st.tuples(
        st.sampled_from(["byte", "u32", "u64"]),
        st.floats(min_value=0, max_value=1, exclude_max=True),
        st.one_of(st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.sampled_from([0, 1, 3, 4, 0x7FFFFFFF, 0xFFFFFFFF])),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=_edits)
def test_fuzz_signing_block(fuzz_base: tuple[bytes, tuple[int, int], dict[str, bytes]], edits: list) -> None:
    data, (start, end), entries = fuzz_base
    mutated = bytearray(data)
    for kind, where, value in edits:
        size = {"byte": 1, "u32": 4, "u64": 8}[kind]
        offset = start + int(where * (end - start - size))
        mutated[offset : offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    d = signing_facts(bytes(mutated), entries, 21).to_dict()
    _check_shape(d)
    if bytes(mutated) == data:
        assert d["errors"] == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.floats(min_value=0, max_value=1),
    flips=st.lists(st.tuples(st.floats(min_value=0, max_value=1, exclude_max=True), st.integers(1, 255)), max_size=6),
)
def test_fuzz_pkcs7_and_sf(fuzz_base: tuple[bytes, tuple[int, int], dict[str, bytes]], cut: float, flips: list) -> None:
    data, _, entries = fuzz_base
    entries = dict(entries)
    for name in [n for n in entries if n.endswith((".RSA", ".SF"))]:
        raw = bytearray(entries[name][: max(1, int(len(entries[name]) * cut))])
        for where, xor in flips:
            raw[int(where * len(raw))] ^= xor
        entries[name] = bytes(raw)
    _check_shape(signing_facts(data, entries, None).to_dict())


def test_manifest_parsing_handles_continuations() -> None:
    path = CORPUS / "apksig-v1-only-rsa-md5-1024.apk"
    entries = _meta_inf(path)
    digest = base64.b64encode(b"\x00" * 32).decode()
    long_name = "assets/" + "x" * 120
    # a wrapped (72-byte line) entry name with an unusual digest algorithm
    section = f"Name: {long_name}\r\nSHA-256-Digest: {digest}\r\n\r\n".encode()
    wrapped = section[:70] + b"\r\n " + section[70:]
    entries["META-INF/MANIFEST.MF"] += wrapped
    d = signing_facts(path.read_bytes(), entries, None).to_dict()
    assert d["v1_digest_algorithms"] == ["SHA-1", "SHA-256"]
    assert d["errors"] == []  # the .SF does not cover the new section, so nothing to compare
