"""Light intra-procedural data flow of the code analyser (analysis/code.py): taint from
Intent/Uri/input-field sources to watched sinks, folded string concatenations, constant
String[] arrays, secondary String comparisons, ``Override.instantiated``, native marker
strings and layout/FileProvider resources. Hand-built DEX files."""

from __future__ import annotations

from medrisk.analysis.native import marker_strings
from medrisk.analysis.resources import _password_type
from tests.analysis.test_code import STR, _app, calls_of, facts_of
from tests.analysis.test_dex import (
    INVOKE_DIRECT,
    INVOKE_STATIC,
    INVOKE_VIRTUAL,
    RETURN_VOID,
    DexBuilder,
    Resolver,
    const4,
    const_string,
    invoke,
    move_result_object,
    new_array,
    new_instance,
)

MAIN = "Lcom/example/Main;"
INTENT = "Landroid/content/Intent;"
WEBVIEW = "Landroid/webkit/WebView;"
SB = "Ljava/lang/StringBuilder;"


def aput_object(a: int, arr: int, idx: int) -> list[int]:
    return [0x4D | a << 8, arr | idx << 8]


def test_intent_data_reaches_webview_and_startactivity() -> None:
    def body(r: Resolver) -> list[int]:
        return [
            *invoke(INVOKE_VIRTUAL, [0], r.m(MAIN, "getIntent", INTENT)),  # through the app subclass
            *move_result_object(1),
            *const_string(2, r.s("url")),
            *invoke(INVOKE_VIRTUAL, [1, 2], r.m(INTENT, "getStringExtra", STR, (STR,))),
            *move_result_object(3),
            *invoke(INVOKE_VIRTUAL, [4, 3], r.m(WEBVIEW, "loadUrl", "V", (STR,))),
            *invoke(INVOKE_VIRTUAL, [1, 2], r.m(INTENT, "getParcelableExtra", "Landroid/os/Parcelable;", (STR,))),
            *move_result_object(5),
            *invoke(INVOKE_VIRTUAL, [0, 5], r.m(MAIN, "startActivity", "V", (INTENT,))),
            *const_string(6, r.s("https://example.org/")),
            *invoke(INVOKE_VIRTUAL, [4, 6], r.m(WEBVIEW, "loadUrl", "V", (STR,))),
            *RETURN_VOID,
        ]

    c, _ = facts_of(_app([("onCreate", "V", (), 1, 8, body)]))
    loads = calls_of(c, "android.webkit.WebView.loadUrl")
    assert [(x["args"], x["taint"]) for x in loads] == [
        ([None], ["android.content.Intent.getStringExtra"]),
        (["https://example.org/"], [None]),
    ]
    (start,) = [x for x in c["calls"] if x["api"].endswith(".startActivity")]
    assert start["taint"] == ["android.content.Intent.getParcelableExtra"]


def test_provider_parameter_and_file_path() -> None:
    """The Uri parameter of ContentProvider.openFile is a source; new File(dir, uri.getLastPathSegment())."""
    uri = "Landroid/net/Uri;"

    def body(r: Resolver) -> list[int]:
        return [
            *invoke(INVOKE_VIRTUAL, [3], r.m(uri, "getLastPathSegment", STR)),  # p1 = v3 (this = v2)
            *move_result_object(0),
            *new_instance(1, r.t("Ljava/io/File;")),
            *invoke(INVOKE_DIRECT, [1, 0], r.m("Ljava/io/File;", "<init>", "V", (STR,))),
            *RETURN_VOID,
        ]

    c, _ = facts_of(_app([("openFile", "V", (uri, STR), 1, 5, body)], superclass="Landroid/content/ContentProvider;"))
    (f,) = calls_of(c, "java.io.File.<init>")
    assert f["taint"] == ["android.net.Uri.getLastPathSegment"]


def test_concatenation_arrays_and_files_are_folded() -> None:
    def body(r: Resolver) -> list[int]:
        return [
            *new_instance(1, r.t(SB)),
            *invoke(INVOKE_DIRECT, [1], r.m(SB, "<init>", "V")),
            *const_string(2, r.s("card: ")),
            *invoke(INVOKE_VIRTUAL, [1, 2], r.m(SB, "append", SB, (STR,))),
            *move_result_object(1),
            *invoke(INVOKE_VIRTUAL, [1, 9], r.m(SB, "append", SB, (STR,))),  # v9 unknown
            *invoke(INVOKE_VIRTUAL, [1], r.m(SB, "toString", STR)),
            *move_result_object(2),
            *const_string(0, r.s("tag")),
            *invoke(INVOKE_STATIC, [0, 2], r.m("Landroid/util/Log;", "e", "I", (STR, STR))),
            *const4(3, 2),
            *new_array(3, 3, r.t("[Ljava/lang/String;")),
            *const4(4, 0),
            *const_string(5, r.s("su")),
            *aput_object(5, 3, 4),
            *invoke(INVOKE_VIRTUAL, [6, 3], r.m("Ljava/lang/Runtime;", "exec", "Ljava/lang/Process;", ("[" + STR,))),
            *new_instance(7, r.t("Ljava/io/File;")),
            *const_string(8, r.s("/sdcard/u.apk")),
            *invoke(INVOKE_DIRECT, [7, 8], r.m("Ljava/io/File;", "<init>", "V", (STR,))),
            *invoke(INVOKE_VIRTUAL, [7], r.m("Ljava/io/File;", "getAbsolutePath", STR)),
            *move_result_object(8),
            *invoke(INVOKE_STATIC, [0, 8], r.m("Landroid/util/Log;", "e", "I", (STR, STR))),
            *RETURN_VOID,
        ]

    c, _ = facts_of(_app([("run", "V", (), 1, 10, body)]))
    assert [x["args"] for x in calls_of(c, "android.util.Log.e")] == [["tag", "card: *"], ["tag", "/sdcard/u.apk"]]
    assert calls_of(c, "java.lang.Runtime.exec")[0]["args"] == ["su *"]


def test_constant_compared_with_input_is_a_secondary_call() -> None:
    edit = "Landroid/widget/EditText;"

    def compare(r: Resolver) -> list[int]:
        return [
            *invoke(INVOKE_VIRTUAL, [2], r.m(edit, "getText", "Landroid/text/Editable;")),
            *move_result_object(0),
            *invoke(INVOKE_VIRTUAL, [0], r.m("Ljava/lang/Object;", "toString", STR)),
            *move_result_object(0),
            *const_string(1, r.s("s3cr3tPIN")),
            *invoke(INVOKE_VIRTUAL, [0, 1], r.m(STR, "equals", "Z", ("Ljava/lang/Object;",))),
            *RETURN_VOID,
        ]

    def equals_only(r: Resolver) -> list[int]:
        return [
            *const_string(1, r.s("s3cr3tPIN")),
            *invoke(INVOKE_VIRTUAL, [0, 1], r.m(STR, "equals", "Z", ("Ljava/lang/Object;",))),
            *RETURN_VOID,
        ]

    c, _ = facts_of(_app([("check", "V", (), 1, 3, compare), ("other", "V", (), 1, 3, equals_only)]))
    (eq,) = calls_of(c, "java.lang.String.equals")
    assert eq["args"] == ["s3cr3tPIN"] and eq["receiver_taint"] == "android.widget.EditText.getText"
    assert eq["location"]["method"] == "check()V"


def test_trust_manager_instantiated_flag() -> None:
    tm = "Ljavax/net/ssl/X509TrustManager;"
    certs = "[Ljava/security/cert/X509Certificate;"
    b = DexBuilder()
    for name in ("Lcom/example/Unused;", "Lcom/example/Used;"):
        b.add_class(
            name, interfaces=(tm,), methods=[("checkServerTrusted", "V", (certs, STR), 1, 3, lambda r: RETURN_VOID)]
        )
    b.add_class(
        MAIN,
        methods=[("run", "V", (), 1, 2, lambda r: [*new_instance(0, r.t("Lcom/example/Used;")), *RETURN_VOID])],
    )
    c, _ = facts_of(b.build())
    assert {o["class"]: o["instantiated"] for o in c["overrides"]} == {
        "com.example.Unused": False,
        "com.example.Used": True,
    }


def test_native_marker_strings_and_password_input_types() -> None:
    data = b"\x7fELF\x00junk\x00frida-server\x00/proc/self/maps\x00/system/xbin/su\x00hello\x00"
    assert marker_strings(data) == [
        {"kind": "anti_instrumentation", "value": "/proc/self/maps"},
        {"kind": "root_check", "value": "/system/xbin/su"},
        {"kind": "anti_instrumentation", "value": "frida-server"},
    ]
    assert _password_type(0x81) and _password_type(0x12) and _password_type(0xE1)
    assert not _password_type(0x1) and not _password_type(0x80001)
