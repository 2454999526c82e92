"""Code facts: watched call sites with constant arguments, overrides, field reads, strings,
obfuscation. Hand-built DEX files for exact cases, dexdump cross-checks and documented
findings of known vulnerable apps from the corpus."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from medrisk.analysis.code import (
    MAX_LOCATIONS,
    CodeFacts,
    StringFacts,
    classify_secret,
    code_facts,
    load_catalog,
    shannon_entropy,
)
from medrisk.analysis.errors import LimitExceeded
from medrisk.analysis.limits import Limits
from tests.analysis.test_dex import (
    DEXDUMP,
    INVOKE_DIRECT,
    INVOKE_INTERFACE,
    INVOKE_STATIC,
    INVOKE_STATIC_RANGE,
    INVOKE_VIRTUAL,
    RETURN_VOID,
    DexBuilder,
    Resolver,
    apk_dex,
    array_payload,
    const4,
    const16,
    const_string,
    const_string_jumbo,
    fill_array_data,
    invoke,
    invoke_range,
    iput_object,
    move_object,
    move_result_object,
    needs_corpus,
    needs_dexdump,
    new_array,
    new_instance,
    ret,
    sget_object,
    simple_dex,
)
from tests.conftest import CORPUS, corpus_apks

STR = "Ljava/lang/String;"
CIPHER = "Ljavax/crypto/Cipher;"
CONTEXT_GETSP = ("getSharedPreferences", "Landroid/content/SharedPreferences;", (STR, "I"))


def facts_of(*dexes: bytes) -> tuple[dict, dict]:
    names = ["classes.dex"] + [f"classes{i}.dex" for i in range(2, len(dexes) + 1)]
    code, strings = code_facts(list(zip(names, dexes)))
    assert isinstance(code, CodeFacts) and isinstance(strings, StringFacts)
    c, s = code.to_dict(), strings.to_dict()
    json.dumps([c, s])  # JSON-ready
    return c, s


def calls_of(c: dict, api: str) -> list[dict]:
    return [x for x in c["calls"] if x["api"] == api]


# ======================================================================================
# The catalogue
# ======================================================================================
def test_catalog_loads_and_is_well_formed() -> None:
    cat = load_catalog()
    assert load_catalog() is cat  # loaded once
    apis = {api for members in cat.methods.values() for api in members.values()}
    assert "javax.crypto.Cipher.getInstance" in apis
    assert "android.webkit.SslErrorHandler.proceed" in apis
    assert len(apis) > 150
    for api in apis:
        assert re.fullmatch(r"[a-z][\w.$]*\.[A-Z][\w$]*\.(<init>|[a-zA-Z_][\w$]*)", api), api
        assert cat.categories[api] in {"crypto", "network", "webview", "storage", "platform", "resilience", "privacy"}
    fields = {f for members in cat.fields.values() for f in members.values()}
    assert "android.os.Build.FINGERPRINT" in fields
    assert "org.apache.http.conn.ssl.SSLSocketFactory.ALLOW_ALL_HOSTNAME_VERIFIER" in fields
    bases = {(o[2], o[1]) for o in cat.overrides}
    assert ("javax.net.ssl.X509TrustManager", "checkServerTrusted") in bases
    assert ("android.webkit.WebViewClient", "onReceivedSslError") in bases


# ======================================================================================
# Hand-built DEX: call sites and constant arguments
# ======================================================================================
def _app(
    methods: list[tuple], cls: str = "Lcom/example/Main;", superclass: str = "Landroid/app/Activity;", **kw
) -> bytes:
    b = DexBuilder()
    b.add_class(cls, superclass, methods=methods, **kw)
    return b.build()


def test_cipher_constant_argument() -> None:
    c, _ = facts_of(simple_dex())
    (call,) = calls_of(c, "javax.crypto.Cipher.getInstance")
    assert call["args"] == ["AES/ECB/PKCS5Padding"]
    assert call["location"] == {"file": "classes.dex", "class": "com.example.Main", "method": "run()V", "line": None}
    assert c["dex"] == [
        {"file": "classes.dex", "classes": 1, "methods": 5, "strings": c["dex"][0]["strings"], "version": "035"}
    ]
    assert c["packages"] == ["com.example"]
    assert c["errors"] == []


def test_instance_call_through_app_subclass_excludes_receiver() -> None:
    """this.getSharedPreferences("x", 1) in an Activity subclass is Context.getSharedPreferences."""

    def body(r: Resolver) -> list[int]:
        return [
            *const_string(0, r.s("x")),
            *const4(1, 1),
            *invoke(INVOKE_VIRTUAL, [2, 0, 1], r.m("Lcom/example/Main;", *CONTEXT_GETSP)),
            *move_result_object(0),
            *RETURN_VOID,
        ]

    c, _ = facts_of(_app([("onCreate", "V", (), 1, 3, body)]))
    (call,) = calls_of(c, "android.content.Context.getSharedPreferences")
    assert call["args"] == ["x", 1]


def test_argument_tracking_cases() -> None:
    """Register copies, overwrites, wide and reference parameters, /range invokes, jumbo
    strings, String.getBytes() of a constant and constant byte arrays."""

    def body(r: Resolver) -> list[int]:
        log_d = r.m("Landroid/util/Log;", "d", "I", (STR, STR))
        spec = r.m("Ljavax/crypto/spec/SecretKeySpec;", "<init>", "V", ("[B", STR))
        iv = r.m("Ljavax/crypto/spec/IvParameterSpec;", "<init>", "V", ("[B",))
        get_bytes = r.m(STR, "getBytes", "[B")
        code = [
            *const_string(0, r.s("tag")),
            *move_object(1, 0),  # v1 = "tag"
            *invoke(INVOKE_STATIC, [1, 0], log_d),  # Log.d("tag", "tag")
            *const_string(0, r.s("other")),
            *invoke(INVOKE_STATIC, [1, 0], log_d),  # Log.d("tag", "other")
            *invoke(INVOKE_STATIC, [1, 5], log_d),  # Log.d("tag", <unknown>)
            *new_instance(3, r.t("Ljavax/crypto/spec/SecretKeySpec;")),
            *const_string_jumbo(4, r.s("0123456789abcdef")),
            *invoke(INVOKE_VIRTUAL, [4], get_bytes),
            *move_result_object(4),  # v4 = bytes of the constant: still the constant
            *const_string(0, r.s("AES")),
            *invoke(INVOKE_DIRECT, [3, 4, 0], spec),
            *const4(6, 0),  # null literal for a reference parameter
            *invoke(INVOKE_STATIC, [1, 6], log_d),
            *const16(7, 16),
            *new_array(7, 7, r.t("[B")),
            *fill_array_data(7, 0),  # patched below
            *new_instance(8, r.t("Ljavax/crypto/spec/IvParameterSpec;")),
            *invoke(INVOKE_DIRECT, [8, 7], iv),
            *invoke_range(INVOKE_STATIC_RANGE, 0, 2, log_d),  # Log.d(v0, v1) = ("AES", "tag")
            *RETURN_VOID,
        ]
        fill_at = next(i for i in range(len(code)) if code[i] & 0xFF == 0x26)
        if len(code) % 2:
            code.append(0)  # payloads are 4-byte aligned
        offset = len(code) - fill_at
        code[fill_at + 1 : fill_at + 3] = [offset & 0xFFFF, offset >> 16]
        return code + array_payload(bytes(16))

    c, s = facts_of(_app([("run", "V", (), 1, 10, body)]))
    assert [x["args"] for x in calls_of(c, "android.util.Log.d")] == [
        ["tag", "tag"],
        ["tag", "other"],
        ["tag", None],
        ["tag", None],
        ["AES", "tag"],
    ]
    (spec,) = calls_of(c, "javax.crypto.spec.SecretKeySpec.<init>")
    assert spec["args"] == ["0123456789abcdef", "AES"]
    (iv,) = calls_of(c, "javax.crypto.spec.IvParameterSpec.<init>")
    assert iv["args"] == ["bytes:" + "00" * 16]
    keys = [x for x in s["secrets"] if x["kind"] == "crypto_key"]
    assert [k["value"] for k in keys] == ["0123456789abcdef"]
    assert keys[0]["redacted"].startswith("0123") and "89ab" not in keys[0]["redacted"]


def test_wide_parameters_and_interface_calls() -> None:
    def body(r: Resolver) -> list[int]:
        # Window.setFlags(int, int) and an interface call with a long in between
        set_flags = r.m("Landroid/view/Window;", "setFlags", "V", ("I", "I"))
        put = r.m(
            "Landroid/content/SharedPreferences$Editor;",
            "putString",
            "Landroid/content/SharedPreferences$Editor;",
            (STR, STR),
        )
        exec_ = r.m("Ljava/lang/Runtime;", "exec", "Ljava/lang/Process;", ("J", STR))  # synthetic overload
        return [
            *const16(1, 0x2000),
            *invoke(INVOKE_VIRTUAL, [0, 1, 1], set_flags),
            *const_string(2, r.s("password")),
            *invoke(INVOKE_INTERFACE, [3, 2, 4], put),
            *const_string(4, r.s("id")),
            *invoke(INVOKE_VIRTUAL, [0, 5, 6, 4], exec_),
            *RETURN_VOID,
        ]

    c, _ = facts_of(_app([("run", "V", (), 1, 8, body)]))
    assert calls_of(c, "android.view.Window.setFlags")[0]["args"] == [8192, 8192]
    assert calls_of(c, "android.content.SharedPreferences$Editor.putString")[0]["args"] == ["password", None]
    assert calls_of(c, "java.lang.Runtime.exec")[0]["args"] == [None, "id"]


def test_constructors_are_not_inherited_and_library_code_is_skipped() -> None:
    b = DexBuilder()
    # SecureRandom subclass of Random in the app: new MyRandom() is not java.util.Random.<init>
    b.add_class(
        "Lcom/example/MyRandom;", "Ljava/util/Random;", methods=[("<init>", "V", (), 0x10001, 1, lambda r: RETURN_VOID)]
    )

    def body(r: Resolver) -> list[int]:
        return [
            *new_instance(0, r.t("Lcom/example/MyRandom;")),
            *invoke(INVOKE_DIRECT, [0], r.m("Lcom/example/MyRandom;", "<init>", "V")),
            *new_instance(0, r.t("Ljava/util/Random;")),
            *invoke(INVOKE_DIRECT, [0], r.m("Ljava/util/Random;", "<init>", "V")),
            *RETURN_VOID,
        ]

    b.add_class("Lcom/example/Main;", methods=[("run", "V", (), 1, 2, body)])
    # the same call inside AndroidX code is not the app's behaviour
    b.add_class("Landroidx/core/Helper;", methods=[("run", "V", (), 1, 2, body)])
    c, _ = facts_of(b.build())
    calls = calls_of(c, "java.util.Random.<init>")
    assert [x["location"]["class"] for x in calls] == ["com.example.Main"]


def test_byte_patterns_that_are_not_instructions() -> None:
    """An invoke-static Cipher.getInstance encoded as *data* (inside an array payload, and
    as the operand of const/16) is not reported: hits are confirmed by decoding."""

    def body(r: Resolver) -> list[int]:
        m = r.m(CIPHER, "getInstance", CIPHER, (STR,))
        code = [
            *const16(0, 0x1071),  # the low byte of the literal looks like invoke-static
            *const16(1, m),
            *const16(7, 16),
            *new_array(7, 7, r.t("[B")),
            *fill_array_data(7, 0),
            *RETURN_VOID,
        ]
        if len(code) % 2:
            code.append(0)
        code[9:11] = [len(code) - 8, 0]
        fake = bytes([0x71, 0x10, m & 0xFF, m >> 8, 0, 0, 0x71, 0x10, m & 0xFF, m >> 8, 0, 0])
        return code + array_payload(fake)

    c, _ = facts_of(_app([("run", "V", (), 1, 8, body)]))
    assert calls_of(c, "javax.crypto.Cipher.getInstance") == []
    assert c["errors"] == []


def test_field_reads() -> None:
    def body(r: Resolver) -> list[int]:
        return [
            *sget_object(0, r.f("Landroid/os/Build;", "FINGERPRINT", STR)),
            *sget_object(0, r.f("Landroid/os/Build;", "VERSION_INCREMENTAL_NOT_WATCHED", STR)),
            *sget_object(
                1,
                r.f(
                    "Lorg/apache/http/conn/ssl/SSLSocketFactory;",
                    "ALLOW_ALL_HOSTNAME_VERIFIER",
                    "Lorg/apache/http/conn/ssl/X509HostnameVerifier;",
                ),
            ),
            *RETURN_VOID,
        ]

    c, _ = facts_of(_app([("run", "V", (), 1, 2, body)]))
    assert sorted(f["field"] for f in c["field_reads"]) == [
        "android.os.Build.FINGERPRINT",
        "org.apache.http.conn.ssl.SSLSocketFactory.ALLOW_ALL_HOSTNAME_VERIFIER",
    ]


# ======================================================================================
# Overrides
# ======================================================================================
CERTS = "[Ljava/security/cert/X509Certificate;"


def test_overrides() -> None:
    b = DexBuilder()
    tm = "Ljavax/net/ssl/X509TrustManager;"
    b.add_class(
        "Lcom/example/TrustAll;",
        interfaces=(tm,),
        methods=[
            ("checkServerTrusted", "V", (CERTS, STR), 1, 3, lambda r: RETURN_VOID),
            (
                "checkClientTrusted",  # Kotlin's parameter null checks do not count as a body
                "V",
                (CERTS, STR),
                1,
                3,
                lambda r: [
                    *const_string(0, r.s("chain")),
                    *invoke(
                        INVOKE_STATIC,
                        [1, 0],
                        r.m(
                            "Lkotlin/jvm/internal/Intrinsics;",
                            "checkNotNullParameter",
                            "V",
                            ("Ljava/lang/Object;", STR),
                        ),
                    ),
                    *RETURN_VOID,
                ],
            ),
        ],
    )
    # a subclass of an app class that implements the interface through X509ExtendedTrustManager
    b.add_class("Lcom/example/Base;", "Ljavax/net/ssl/X509ExtendedTrustManager;", access=0x401)
    b.add_class(
        "Lcom/example/Strict;",
        "Lcom/example/Base;",
        methods=[
            (
                "checkServerTrusted",
                "V",
                (CERTS, STR),
                1,
                4,
                lambda r: [
                    *new_instance(0, r.t("Ljava/security/cert/CertificateException;")),
                    *invoke(INVOKE_DIRECT, [0], r.m("Ljava/security/cert/CertificateException;", "<init>", "V")),
                    0x27 | 0 << 8,  # throw v0
                ],
            )
        ],
    )
    b.add_class(
        "Lcom/example/AnyHost;",
        interfaces=("Ljavax/net/ssl/HostnameVerifier;",),
        methods=[("verify", "Z", (STR, "Ljavax/net/ssl/SSLSession;"), 1, 3, lambda r: [*const4(0, 1), *ret(0)])],
    )
    b.add_class(
        "Lcom/example/Client;",
        "Landroid/webkit/WebViewClient;",
        methods=[
            (
                "onReceivedSslError",
                "V",
                ("Landroid/webkit/WebView;", "Landroid/webkit/SslErrorHandler;", "Landroid/net/http/SslError;"),
                1,
                4,
                lambda r: [
                    *invoke(INVOKE_VIRTUAL, [2], r.m("Landroid/webkit/SslErrorHandler;", "proceed", "V")),
                    *RETURN_VOID,
                ],
            )
        ],
    )
    c, _ = facts_of(b.build())
    got = {(o["class"], o["method"]): (o["base"], o["empty"], o["returns_const"], o["calls"]) for o in c["overrides"]}
    assert got == {
        ("com.example.TrustAll", "checkServerTrusted"): ("javax.net.ssl.X509TrustManager", True, None, []),
        ("com.example.TrustAll", "checkClientTrusted"): ("javax.net.ssl.X509TrustManager", True, None, []),
        ("com.example.Strict", "checkServerTrusted"): ("javax.net.ssl.X509TrustManager", False, None, []),
        ("com.example.AnyHost", "verify"): ("javax.net.ssl.HostnameVerifier", False, 1, []),
        ("com.example.Client", "onReceivedSslError"): (
            "android.webkit.WebViewClient",
            False,
            None,
            ["android.webkit.SslErrorHandler.proceed"],
        ),
    }
    loc = next(o["location"] for o in c["overrides"] if o["class"] == "com.example.AnyHost")
    assert loc["method"] == "verify(Ljava/lang/String;Ljavax/net/ssl/SSLSession;)Z"


def test_hierarchy_across_dex_files() -> None:
    """MainActivity in classes2.dex extends BaseActivity in classes.dex extends Activity."""
    b1 = DexBuilder()
    b1.add_class("Lcom/example/BaseActivity;", "Landroid/app/Activity;")
    b2 = DexBuilder()

    def body(r: Resolver) -> list[int]:
        return [
            *const_string(0, r.s("prefs")),
            *const4(1, 0),
            *invoke(INVOKE_VIRTUAL, [2, 0, 1], r.m("Lcom/example/MainActivity;", *CONTEXT_GETSP)),
            *RETURN_VOID,
        ]

    b2.add_class(
        "Lcom/example/MainActivity;", "Lcom/example/BaseActivity;", methods=[("onCreate", "V", (), 1, 3, body)]
    )
    c, _ = facts_of(b1.build(), b2.build())
    (call,) = calls_of(c, "android.content.Context.getSharedPreferences")
    assert call["args"] == ["prefs", 0] and call["location"]["file"] == "classes2.dex"
    assert c["classes"] == 2 and [d["file"] for d in c["dex"]] == ["classes.dex", "classes2.dex"]


# ======================================================================================
# Strings
# ======================================================================================
AWS = "AKIA" + "IOSFODNN7EXAMPL1"
GOOGLE = "AIza" + "SyDRKQ9d6kfsoZT2lUnZcZnBYvH69HExNPE"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
GENERIC = "q8Vz3LmX0pR7tY2wK9nB4cD6fG1hJ5sE"


def _strings_dex(values: list[str], loads: int = 1, unreferenced: tuple[str, ...] = ()) -> bytes:
    b = DexBuilder()
    for v in unreferenced:
        b.strings.add(v)

    def body(r: Resolver) -> list[int]:
        code: list[int] = []
        for v in values:
            for _ in range(loads):
                code += const_string(0, r.s(v))
        return code + RETURN_VOID

    b.add_class("Lcom/example/Config;", methods=[("load", "V", (), 1, 1, body)])
    return b.build()


def test_string_extraction() -> None:
    values = [
        "http://api.example-health.com/v1/records?id=1",
        "https://10.0.2.2:8443/login",
        "wss://stream.example.org/socket",
        "http://schemas.android.com/apk/res/android",  # XML namespace, not an endpoint
        "see https://docs.example.net/help for details.",
        "Contact support@example-health.com",
        "192.168.1.20",
        "api.example-health.com",
        "com.example.app",  # a package name, not a domain
        "index.html",
        AWS,
        GOOGLE,
        "Bearer " + JWT,
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "https://medrisk-demo.firebaseio.com",
        GENERIC,
        "AccessibilityNodeProviderApi16",  # identifier, not a key
        "0123456789abcdef0123456789abcdef",
    ]
    _, s = facts_of(_strings_dex(values, unreferenced=("Zx8Kq2Lm9Vb4Nc7Xr1Tp6Wy3Hd5Js0Gf",)))
    urls = {u["value"]: (u["scheme"], u["host"]) for u in s["urls"]}
    assert urls == {
        "http://api.example-health.com/v1/records?id=1": ("http", "api.example-health.com"),
        "https://10.0.2.2:8443/login": ("https", "10.0.2.2"),
        "wss://stream.example.org/socket": ("wss", "stream.example.org"),
        "https://docs.example.net/help": ("https", "docs.example.net"),
        "https://medrisk-demo.firebaseio.com": ("https", "medrisk-demo.firebaseio.com"),
    }
    assert {i["value"]: i["private"] for i in s["ips"]} == {"10.0.2.2": True, "192.168.1.20": True}
    assert [e["value"] for e in s["emails"]] == ["support@example-health.com"]
    assert "api.example-health.com" in s["domains"] and "com.example.app" not in s["domains"]
    assert "index.html" not in s["domains"] and "schemas.android.com" not in s["domains"]
    kinds = {(x["kind"], x["value"]) for x in s["secrets"]}
    assert ("aws_access_key", AWS) in kinds
    assert ("google_api_key", GOOGLE) in kinds
    assert ("jwt", JWT) in kinds
    assert ("private_key", values[13]) in kinds
    assert ("firebase_url", "https://medrisk-demo.firebaseio.com") in kinds
    assert ("generic_api_key", GENERIC) in kinds
    values_found = {x["value"] for x in s["secrets"]}
    assert "AccessibilityNodeProviderApi16" not in values_found
    assert "Zx8Kq2Lm9Vb4Nc7Xr1Tp6Wy3Hd5Js0Gf" not in values_found  # never loaded by code
    for group in ("urls", "ips", "emails", "secrets"):
        for item in s[group]:
            assert item["locations"], item
            assert item["locations"][0]["class"] == "com.example.Config"


def test_locations_are_capped() -> None:
    b = DexBuilder()
    for i in range(12):
        b.add_class(
            f"Lcom/example/C{i};",
            methods=[
                ("load", "V", (), 1, 1, lambda r: [*const_string(0, r.s("https://api.example.com/")), *RETURN_VOID])
            ],
        )
    _, s = facts_of(b.build())
    (url,) = s["urls"]
    assert len(url["locations"]) == MAX_LOCATIONS
    assert [loc["class"] for loc in url["locations"]] == sorted(loc["class"] for loc in url["locations"])


def test_secret_classifier_false_positives() -> None:
    for text in [
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsGTfWjLhZ3x4Q",  # public key
        "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "Base_TextAppearance_AppCompat_Display1",
        "abc_ic_menu_share_mtrl_alpha2",
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij",
        "ApplicationPackageManagerV21Impl",
    ]:
        assert classify_secret(text) == [], text
    assert classify_secret("db password=hunter22!") == [("password", "db password=hunter22!")]
    assert shannon_entropy("aaaa") == 0.0 and round(shannon_entropy("ab"), 3) == 1.0


def test_secret_named_field_store() -> None:
    """String key = "This is the super secret key 123" (InsecureBankv2's CryptoClass)."""

    def body(r: Resolver) -> list[int]:
        return [
            *const_string(0, r.s("This is the super secret key 123")),
            *iput_object(0, 1, r.f("Lcom/example/Crypto;", "key", STR)),
            *const_string(0, r.s("username")),  # a preference name, not a secret
            *iput_object(0, 1, r.f("Lcom/example/Crypto;", "PREF_KEY", STR)),
            *RETURN_VOID,
        ]

    b = DexBuilder()
    b.add_class(
        "Lcom/example/Crypto;",
        methods=[("<init>", "V", (), 0x10001, 2, body)],
        fields=[("key", STR, 0), ("PREF_KEY", STR, 0)],
    )
    _, s = facts_of(b.build())
    assert [(x["kind"], x["value"]) for x in s["secrets"]] == [("generic_api_key", "This is the super secret key 123")]


# ======================================================================================
# Obfuscation, errors, limits
# ======================================================================================
def test_obfuscation_ratio() -> None:
    b = DexBuilder()
    for name in ("a", "b", "c", "d", "ab", "LoginActivity", "R", "BuildConfig", "Helper$1"):
        b.add_class(f"Lcom/x/{name};")
    b.add_class("Landroidx/core/a;")  # framework classes are not counted
    c, _ = facts_of(b.build())
    # app classes with a meaningful name: a b c d ab LoginActivity -> 5 of 6 are short
    assert c["obfuscation"] == {"short_class_ratio": round(5 / 6, 4), "obfuscated": True}
    c, _ = facts_of(simple_dex())
    assert c["obfuscation"]["obfuscated"] is False


def test_corrupt_dex_is_recorded_not_raised() -> None:
    good = simple_dex()
    bad = bytearray(simple_dex())
    bad[0x3C:0x40] = (len(bad) + 10).to_bytes(4, "little")  # string_ids_off out of range
    c, _ = facts_of(good, bytes(bad))
    assert len(c["errors"]) == 1 and c["errors"][0].startswith("corrupt_dex: classes2.dex: string_ids")
    assert calls_of(c, "javax.crypto.Cipher.getInstance")  # the good file is still analysed
    c, _ = facts_of(b"not a dex file at all")
    assert c["errors"] and c["classes"] == 0


def test_dex_size_limit() -> None:
    with pytest.raises(LimitExceeded) as exc:
        code_facts([("classes.dex", simple_dex())], Limits(max_dex_bytes=100))
    assert exc.value.code == "dex_too_large"


def test_no_dex() -> None:
    c, s = facts_of()
    assert c["classes"] == 0 and c["calls"] == [] and s["urls"] == []


# ======================================================================================
# Real apps: documented findings (MANIFEST.tsv documented_findings), confirmed with dexdump
# ======================================================================================
_CACHE: dict[str, tuple[dict, dict]] = {}


def app_facts(apk: str) -> tuple[dict, dict]:
    if apk not in _CACHE:
        code, strings = code_facts(apk_dex(CORPUS / apk))
        _CACHE[apk] = (code.to_dict(), strings.to_dict())
    return _CACHE[apk]


def app_calls(apk: str, api: str, cls_prefix: str = "") -> list[tuple]:
    c, _ = app_facts(apk)
    return [
        (tuple(x["args"]), x["location"]["class"], x["location"]["method"].split("(")[0])
        for x in c["calls"]
        if x["api"] == api and x["location"]["class"].startswith(cls_prefix)
    ]


def overrides_of(apk: str, prefix: str) -> dict[tuple[str, str], dict]:
    c, _ = app_facts(apk)
    return {(o["class"], o["method"]): o for o in c["overrides"] if o["class"].startswith(prefix)}


@needs_corpus
def test_insecurebankv2() -> None:
    """weak cryptography (hard-coded AES key), insecure logging, SharedPreferences, SD card,
    root detection (su), WebView with JavaScript."""
    apk = "InsecureBankv2.apk"
    crypto = "com.android.insecurebankv2.CryptoClass"
    assert (("AES/CBC/PKCS5Padding",), crypto, "aes256encrypt") in app_calls(apk, "javax.crypto.Cipher.getInstance")
    assert ((None, "AES"), crypto, "aes256encrypt") in app_calls(apk, "javax.crypto.spec.SecretKeySpec.<init>")
    _, s = app_facts(apk)
    key = next(x for x in s["secrets"] if x["value"] == "This is the super secret key 123")
    assert key["locations"][0]["class"] == crypto and key["locations"][0]["method"] == "<init>()V"
    # the message is a concatenation: folded with '*' for the unknown parts
    assert (
        ("Successful Login:", ", account=*:*"),
        "com.android.insecurebankv2.DoLogin$RequestTask",
        "postData",
    ) in app_calls(apk, "android.util.Log.d")
    assert (("mySharedPreferences", 0),) == tuple(
        {
            a
            for a, *_ in app_calls(
                apk, "android.content.Context.getSharedPreferences", "com.android.insecurebankv2.DoLogin"
            )
        }
    )
    assert app_calls(apk, "android.os.Environment.getExternalStorageDirectory", "com.android.insecurebankv2")
    exec_calls = app_calls(apk, "java.lang.Runtime.exec")
    assert (("/system/xbin/which su",), "com.android.insecurebankv2.PostLogin", "doesSUexist") in exec_calls
    assert ((1,), "com.android.insecurebankv2.ViewStatement", "onCreate") in app_calls(
        apk, "android.webkit.WebSettings.setJavaScriptEnabled"
    )
    c, _ = app_facts(apk)
    loc = next(
        x["location"]
        for x in c["calls"]
        if x["api"] == "javax.crypto.Cipher.getInstance" and x["location"]["method"].startswith("aes256encrypt")
    )
    assert loc["line"] == 55


@needs_corpus
def test_uncrackable_level1() -> None:
    """AES-encrypted secret with the key in Java code; root and debuggable detection."""
    apk = "UnCrackable-Level1.apk"
    assert app_calls(apk, "javax.crypto.Cipher.getInstance") == [(("AES",), "sg.vantagepoint.a.a", "a")]
    assert app_calls(apk, "javax.crypto.spec.SecretKeySpec.<init>") == [
        ((None, "AES/ECB/PKCS7Padding"), "sg.vantagepoint.a.a", "a")
    ]
    c, s = app_facts(apk)
    assert {x["location"]["class"] for x in c["calls"] if x["api"] == "java.io.File.exists"} == {"sg.vantagepoint.a.c"}
    assert [(f["field"], f["location"]["class"]) for f in c["field_reads"]] == [
        ("android.content.pm.ApplicationInfo.flags", "sg.vantagepoint.a.b"),  # FLAG_DEBUGGABLE check
        ("android.os.Build.TAGS", "sg.vantagepoint.a.c"),
    ]
    assert any(x["value"] == "5UJiFctbmgbDoLXmpL12mkno8HT4Lv8dlat8FxR2GOc=" for x in s["secrets"])
    assert c["obfuscation"]["obfuscated"] is True


@needs_corpus
def test_pivaa() -> None:
    """TrustManager accepting everything, hostname verifier returning true, ECB, static IV and
    key, java.util.Random, dynamic code loading, WebView JavaScript + file access."""
    apk = "pivaa.apk"
    ov = overrides_of(apk, "com.htbridge")
    assert ov[("com.htbridge.pivaa.handlers.API$2", "checkServerTrusted")]["empty"] is True
    assert ov[("com.htbridge.pivaa.handlers.API$1", "verify")]["returns_const"] == 1
    enc = "com.htbridge.pivaa.handlers.Encryption"
    assert (("AES/ECB/PKCS5Padding",), enc, "encryptAES_ECB_PKCS5Padding") in app_calls(
        apk, "javax.crypto.Cipher.getInstance"
    )
    assert (("bytes:" + "00" * 16,), enc, "encryptAES_CBC_PKCS5Padding") in app_calls(
        apk, "javax.crypto.spec.IvParameterSpec.<init>"
    )
    _, s = app_facts(apk)
    assert ("crypto_key", "bytes:01020304050607080807060504030201") in {(x["kind"], x["value"]) for x in s["secrets"]}
    assert app_calls(apk, "java.util.Random.<init>", enc) == [((), enc, "rng")]
    assert app_calls(apk, "dalvik.system.DexClassLoader.<init>", "com.htbridge")
    assert ((1,), "com.htbridge.pivaa.WebviewActivity", "onCreate") in app_calls(
        apk, "android.webkit.WebSettings.setAllowUniversalAccessFromFileURLs"
    )
    assert (("TLS",), "com.htbridge.pivaa.handlers.API", "trustAllHosts") in app_calls(
        apk, "javax.net.ssl.SSLContext.getInstance"
    )
    assert (("lockfile", 2), "com.htbridge.pivaa.handlers.Authentication", "createLockFile") in app_calls(
        apk, "android.content.Context.openFileOutput"
    )  # MODE_WORLD_WRITEABLE


@needs_corpus
def test_insecureshop() -> None:
    """onReceivedSslError -> proceed(), universal file access, credentials logged,
    package-context code loading."""
    apk = "InsecureShop.apk"
    ov = overrides_of(apk, "com.insecureshop")
    assert ov[("com.insecureshop.util.CustomWebViewClient", "onReceivedSslError")]["calls"] == [
        "android.webkit.SslErrorHandler.proceed"
    ]
    assert ((1,), "com.insecureshop.WebViewActivity", "onCreate") in app_calls(
        apk, "android.webkit.WebSettings.setAllowUniversalAccessFromFileURLs"
    )
    assert (("password", None), "com.insecureshop.LoginActivity", "onLogin") in app_calls(apk, "android.util.Log.d")
    assert ((None, 3), "com.insecureshop.LoginActivity", "onLogin") in app_calls(
        apk, "android.content.Context.createPackageContext"
    )
    _, s = app_facts(apk)
    url = next(u for u in s["urls"] if u["value"] == "https://www.insecureshopapp.com")
    assert {loc["class"] for loc in url["locations"]} >= {"com.insecureshop.PrivateActivity"}


@needs_corpus
def test_ovaa() -> None:
    """Hard-coded AES key (WeakCrypto), setAllowFileAccessFromFileURLs, Log.d credentials,
    DEX loaded at run time, third-party package contexts."""
    apk = "ovaa.apk"
    assert app_calls(apk, "javax.crypto.spec.SecretKeySpec.<init>", "oversecured") == [
        (("49u5gh249gh24985ghf429gh4ch8f23f", "AES"), "oversecured.ovaa.utils.WeakCrypto", "encrypt")
    ]
    _, s = app_facts(apk)
    assert ("crypto_key", "49u5gh249gh24985ghf429gh4ch8f23f") in {(x["kind"], x["value"]) for x in s["secrets"]}
    assert ((1,), "oversecured.ovaa.activities.WebViewActivity", "setupWebView") in app_calls(
        apk, "android.webkit.WebSettings.setAllowFileAccessFromFileURLs"
    )
    assert app_calls(apk, "android.util.Log.d", "oversecured")
    assert app_calls(apk, "dalvik.system.DexClassLoader.<init>", "oversecured")
    assert ((None, 3), "oversecured.ovaa.OversecuredApplication", "invokePlugins") in app_calls(
        apk, "android.content.Context.createPackageContext"
    )


@needs_corpus
def test_androgoat() -> None:
    """Logging, SharedPreferences/SQLite/temp files/SD card, clipboard, WebView JS, root detection."""
    apk = "AndroGoat.apk"
    p = "owasp.sat.agoat"
    for api in (
        "android.util.Log.e",
        "android.content.Context.getSharedPreferences",
        "android.database.sqlite.SQLiteDatabase.rawQuery",
        "java.io.File.createTempFile",
        "android.os.Environment.getExternalStorageDirectory",
        "android.content.ClipboardManager.setPrimaryClip",
        "android.webkit.WebSettings.setJavaScriptEnabled",
        "java.io.File.exists",
    ):
        assert app_calls(apk, api, p), api
    assert (("users", 0), f"{p}.InsecureStorageSharedPrefs$onCreate$1", "onClick") in app_calls(
        apk, "android.content.Context.getSharedPreferences"
    )


# ======================================================================================
# dexdump cross-check of call sites, whole-corpus run
# ======================================================================================
SKIPPED = ("android.", "androidx.", "kotlin", "java.", "javax.", "dalvik.", "com.google.")
_INVOKE_LINE = re.compile(r"\|[0-9a-f]{4}: invoke-\S+ \{[^}]*\}, L([^;]+);\.([^:]+):\(")
_METHOD_LINE = re.compile(r"\|\[[0-9a-f]{6}\] ([\w.$]+)\.([^.:]+):\(")


@needs_dexdump
@needs_corpus
@pytest.mark.parametrize(
    "apk", ["UnCrackable-Level1.apk", "ExploitMe-FalseSecureMobile.apk", "InsecureBankv2.apk", "ovaa.apk"]
)
def test_calls_match_dexdump(apk: str, tmp_path: Path) -> None:
    """Every invoke of a watched class's method in app code (dexdump -d) is reported with the
    same caller, and nothing else is reported for direct references."""
    cat = load_catalog()
    expected: set[tuple[str, str, str]] = set()
    for name, data in apk_dex(CORPUS / apk):
        p = tmp_path / name
        p.write_bytes(data)
        out = subprocess.run([DEXDUMP, "-d", str(p)], capture_output=True, text=True, errors="replace", timeout=300)
        caller = None
        for line in out.stdout.splitlines():
            m = _METHOD_LINE.search(line)
            if m:
                caller = (m.group(1), m.group(2))
                continue
            m = _INVOKE_LINE.search(line)
            if m and caller and not caller[0].startswith(SKIPPED):
                api = cat.methods.get("L" + m.group(1) + ";", {}).get(m.group(2))
                if api and api not in cat.secondary:  # secondary APIs are reported conditionally
                    expected.add((api, caller[0], caller[1]))
    c, _ = app_facts(apk)
    reported = {
        (x["api"], x["location"]["class"], x["location"]["method"].split("(")[0])
        for x in c["calls"]
        if not x["location"]["class"].startswith(SKIPPED)
    }
    assert expected, "no watched calls found by dexdump"
    assert expected <= reported, sorted(expected - reported)[:10]


@needs_corpus
def test_whole_corpus(corpus_dir: Path) -> None:
    """Every corpus APK: no errors, JSON-ready facts, counts equal to the DEX headers."""
    slow = []
    for apk in corpus_apks():
        dexes = apk_dex(apk)
        start = time.perf_counter()
        code, strings = code_facts(dexes)
        elapsed = time.perf_counter() - start
        c = code.to_dict()
        json.dumps([c, strings.to_dict()])
        assert c["errors"] == [], (apk.name, c["errors"])
        assert [d["file"] for d in c["dex"]] == [n for n, _ in dexes]
        assert c["methods"] == sum(d["methods"] for d in c["dex"])
        keys = [
            (x["api"], x["location"]["file"], x["location"]["class"] or "", x["location"]["method"] or "")
            for x in c["calls"]
        ]
        assert keys == sorted(keys)
        if elapsed > 2.0:
            slow.append((apk.name, elapsed))
    assert not slow, slow
