"""Code-level facts from DEX bytes: watched API call sites, security-relevant overrides,
static field reads, string constants (URLs, IPs, e-mails, secrets) and obfuscation.

Speed is the design constraint (a scan must stay within a few times the cost of
inflating the DEX files), so nothing here disassembles the whole program:

1. The *ids* of interesting things are computed first, from the sorted id tables: method
   ids of watched APIs (apis.yaml, plus calls made through app subclasses such as
   ``MainActivity.getSharedPreferences``), field ids of watched static fields, string ids of
   interesting strings (found by scanning the string-data bytes with regexes, never by
   decoding every string).
2. The code section is searched for the instruction bytes that could reference those ids
   (``invoke-*`` / ``const-string`` / ``sget*`` followed by a 16-bit index) with compiled
   byte regexes; hits are mapped to their method by bisecting the sorted method bodies.
3. Only methods that contain a hit are decoded, linearly, which confirms that the hit is an
   instruction boundary and gives the constant values held in registers (``const-string``,
   ``const/4`` ... and ``String.getBytes()`` of a constant) at the call, so
   ``Cipher.getInstance("AES/ECB/PKCS5Padding")`` is reported with its argument.

The analysis is intra-procedural and flow-insensitive inside a method (a constant assigned
on one branch is still seen after the merge), which is the usual trade-off of fast
scanners. Problems with one DEX file are recorded in ``errors``; the others are analysed.

Conventions of the output beyond docs/indicators.md:

* ``args`` has one entry per declared parameter (the receiver of instance calls excluded):
  a constant string, an int (``const*``; booleans are 0/1), ``"bytes:<hex>"`` for a constant
  ``byte[]`` (``new-array`` + ``fill-array-data``, e.g. a static IV), else null. A constant 0
  passed for a reference parameter is the ``null`` literal and is reported as null.
* Code inside the bundled platform libraries (``android.*`` incl. the support library,
  ``androidx.*``, ``kotlin(x).*``, ``java(x).*``, ``dalvik.*``) is not the app's behaviour:
  its call sites, field reads and overrides are not reported.
* At most MAX_CALLS_PER_API call sites per API (MAX_FIELD_READS per field) and
  MAX_LOCATIONS locations per string value are reported; a location without debug
  information has ``line`` null, and identical locations are merged.
* Secret kinds: those of docs/indicators.md plus ``crypto_key`` (a constant passed as key
  material to ``SecretKeySpec``), ``stripe_secret_key``, ``sendgrid_key``, ``twilio_key`` and
  ``slack_webhook``. ``password`` also covers ``PBEKeySpec`` constants; a constant stored
  into a secret-named String field (``key``, ``apiKey``, ``AES_KEY``, ``mPassword``) is
  ``password`` or ``generic_api_key`` by the field name. The entropy-based
  ``generic_api_key`` is reported only when app code (outside the framework prefixes)
  loads the constant.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
import struct
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from medrisk.analysis.dex import (
    OPCODE_UNITS,
    TYPE_CODE_ITEM,
    TYPE_STRING_DATA_ITEM,
    DexFile,
    descriptor_to_java,
    java_to_descriptor,
    line_at,
)
from medrisk.analysis.errors import AnalysisError, LimitExceeded
from medrisk.analysis.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "ApiCatalog",
    "CodeFacts",
    "StringFacts",
    "api_category",
    "classify_secret",
    "code_facts",
    "load_catalog",
]

DATA_FILE = Path(__file__).parent / "data" / "apis.yaml"
MAX_LOCATIONS = 5  # per string value
MAX_CALLS_PER_API = 1000  # call sites reported per API and scan (bounds output and time)
MAX_FIELD_READS = 1000  # per field and scan
FRAMEWORK_PREFIXES = ("android.", "androidx.", "kotlin.", "kotlinx.", "java.", "javax.", "com.google.", "dalvik.")
# Code of these bundled platform libraries (support/AndroidX, Kotlin and Java runtime classes) is
# not the app's own behaviour: call sites, field reads and overrides inside it are not reported.
LIBRARY_DESCRIPTORS = ("Landroid/", "Landroidx/", "Lkotlin/", "Lkotlinx/", "Ljava/", "Ljavax/", "Ldalvik/")
_FRAMEWORK_DESCRIPTORS = tuple("L" + p.replace(".", "/") for p in FRAMEWORK_PREFIXES)
OBFUSCATION_THRESHOLD = 0.3  # share of 1-2 character class names above which an app is "obfuscated"
OBFUSCATION_MIN_CLASSES = 5


# ======================================================================================
# The catalogue of watched APIs (data/apis.yaml)
# ======================================================================================
@dataclass(frozen=True)
class ApiCatalog:
    methods: dict[str, dict[str, str]]  # class descriptor -> {method name -> api name}
    fields: dict[str, dict[str, str]]  # class descriptor -> {field name -> field name (Java)}
    categories: dict[str, str]  # api / field name -> category
    overrides: tuple[tuple[str, str, str, str | None], ...]  # (base desc, method, base Java name, descriptor)
    supertypes: dict[str, tuple[str, ...]]  # framework descriptor -> direct supertypes
    secondary: frozenset[str] = frozenset()  # apis reported only in methods with another watched call
    instance_fields: frozenset[str] = frozenset()  # watched fields read with iget*

    @property
    def interesting(self) -> frozenset[str]:
        return self._derived()[0]

    @property
    def subtypes(self) -> dict[str, tuple[str, ...]]:
        """Inverse of ``supertypes``: framework type -> its known framework subtypes."""
        return self._derived()[1]

    def _derived(self) -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
        cached = self.__dict__.get("_cache")
        if cached is None:
            subs: dict[str, list[str]] = {}
            for desc, sups in self.supertypes.items():
                for sup in sups:
                    subs.setdefault(sup, []).append(desc)
            cached = (
                frozenset(self.methods) | frozenset(o[0] for o in self.overrides),
                {k: tuple(v) for k, v in subs.items()},
            )
            object.__setattr__(self, "_cache", cached)
        return cached


def _split_member(name: str) -> tuple[str, str]:
    cls, _, member = name.rpartition(".")
    if not cls or not member:
        raise ValueError(f"apis.yaml: {name!r} is not Class.member")
    return cls, member


@lru_cache(maxsize=4)
def load_catalog(path: str | None = None) -> ApiCatalog:
    """Load (once) and index the watched-API catalogue."""
    text = Path(path or DATA_FILE).read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load(text, Loader=loader)  # noqa: S506 - safe loader
    methods: dict[str, dict[str, str]] = {}
    fields: dict[str, dict[str, str]] = {}
    categories: dict[str, str] = {}
    for category, names in (raw.get("apis") or {}).items():
        for api in names:
            cls, member = _split_member(api)
            methods.setdefault(java_to_descriptor(cls), {})[member] = api
            categories[api] = category
    secondary: set[str] = set()
    for category, names in (raw.get("secondary") or {}).items():
        for api in names:
            cls, member = _split_member(api)
            methods.setdefault(java_to_descriptor(cls), {})[member] = api
            categories[api] = "platform" if category == "compare" else category
            secondary.add(api)
    instance: set[str] = set()
    for key in ("fields", "instance_fields"):
        for category, names in (raw.get(key) or {}).items():
            for fname in names:
                cls, member = _split_member(fname)
                fields.setdefault(java_to_descriptor(cls), {})[member] = fname
                categories[fname] = category
                if key == "instance_fields":
                    instance.add(fname)
    overrides = tuple(
        (java_to_descriptor(o["base"]), o["method"], o["base"], o.get("descriptor"))
        for o in (raw.get("overrides") or [])
    )
    supertypes = {
        java_to_descriptor(k): tuple(java_to_descriptor(v) for v in vs)
        for k, vs in (raw.get("supertypes") or {}).items()
    }
    return ApiCatalog(methods, fields, categories, overrides, supertypes, frozenset(secondary), frozenset(instance))


def api_category(api: str) -> str | None:
    return load_catalog().categories.get(api)


# ======================================================================================
# Result types (to_dict() gives the JSON of docs/indicators.md)
# ======================================================================================
@dataclass(frozen=True, order=True)
class Location:
    file: str
    cls: str | None = None
    method: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "class": self.cls, "method": self.method, "line": self.line}


def _loc_key(loc: Location) -> tuple:
    return (loc.file, loc.cls or "", loc.method or "", loc.line if loc.line is not None else -1)


@dataclass
class DexSummary:
    file: str
    classes: int
    methods: int
    strings: int
    version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "classes": self.classes,
            "methods": self.methods,
            "strings": self.strings,
            "version": self.version,
        }


@dataclass
class Call:
    api: str
    args: list[str | int | None]
    location: Location
    pc: int = 0  # code unit of the invoke in its method (orders calls; not in the JSON)
    taint: list[str | None] = field(default_factory=list)  # per arg: source API of user/intent data
    receiver: str | int | None = None  # constant value of the receiver (instance calls)
    receiver_taint: str | None = None  # source API whose data the receiver holds

    def to_dict(self) -> dict[str, Any]:
        taint = list(self.taint) if self.taint else [None] * len(self.args)
        return {
            "api": self.api,
            "args": list(self.args),
            "taint": taint,
            "receiver": self.receiver,
            "receiver_taint": self.receiver_taint,
            "library": False,
            "location": self.location.to_dict(),
        }


@dataclass
class Override:
    base: str
    method: str
    cls: str
    empty: bool
    returns_const: int | None
    calls: list[str]
    location: Location
    instantiated: bool = True  # new-instance / const-class of the class somewhere outside itself

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "method": self.method,
            "class": self.cls,
            "empty": self.empty,
            "returns_const": self.returns_const,
            "calls": list(self.calls),
            "instantiated": self.instantiated,
            "location": self.location.to_dict(),
        }


@dataclass
class FieldRead:
    field: str
    location: Location

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "location": self.location.to_dict()}


@dataclass
class CodeFacts:
    dex: list[DexSummary] = field(default_factory=list)
    classes: int = 0
    methods: int = 0
    packages: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)
    field_reads: list[FieldRead] = field(default_factory=list)
    short_class_ratio: float = 0.0
    obfuscated: bool = False
    errors: list[str] = field(default_factory=list)
    class_names: frozenset[str] = frozenset()  # Java names of every defined class (not in the JSON)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dex": [d.to_dict() for d in self.dex],
            "classes": self.classes,
            "methods": self.methods,
            "packages": list(self.packages),
            "calls": [c.to_dict() for c in self.calls],
            "overrides": [o.to_dict() for o in self.overrides],
            "field_reads": [f.to_dict() for f in self.field_reads],
            "obfuscation": {"short_class_ratio": self.short_class_ratio, "obfuscated": self.obfuscated},
            "errors": list(self.errors),
        }


@dataclass
class UrlString:
    value: str
    scheme: str
    host: str
    locations: list[Location] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "scheme": self.scheme,
            "host": self.host,
            "locations": [x.to_dict() for x in self.locations],
        }


@dataclass
class IpString:
    value: str
    private: bool
    locations: list[Location] = field(default_factory=list)
    in_url: bool = False  # seen as the host of a URL (else a bare string: kept only if code loads it)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "private": self.private, "locations": [x.to_dict() for x in self.locations]}


@dataclass
class EmailString:
    value: str
    locations: list[Location] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "locations": [x.to_dict() for x in self.locations]}


@dataclass
class Secret:
    kind: str
    value: str
    entropy: float
    locations: list[Location] = field(default_factory=list)

    @property
    def redacted(self) -> str:
        return self.value[:4] + "*" * min(max(len(self.value) - 4, 0), 12)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "value": self.value,
            "redacted": self.redacted,
            "entropy": self.entropy,
            "locations": [x.to_dict() for x in self.locations],
        }


@dataclass
class StringFacts:
    urls: list[UrlString] = field(default_factory=list)
    ips: list[IpString] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    emails: list[EmailString] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "urls": [u.to_dict() for u in self.urls],
            "ips": [i.to_dict() for i in self.ips],
            "domains": list(self.domains),
            "emails": [e.to_dict() for e in self.emails],
            "secrets": [s.to_dict() for s in self.secrets],
        }


# ======================================================================================
# Dalvik instruction classes used by the linear decoder
# ======================================================================================
K_NONE = 0  # writes no register we track
K_W4 = 1  # writes vA (4-bit A)
K_W8 = 2  # writes vAA
K_WW4 = 3  # writes the pair vA, vA+1
K_WW8 = 4  # writes the pair vAA, vAA+1
K_INVOKE35 = 5
K_INVOKE3R = 6
K_CONST4 = 7
K_CONST16 = 8
K_CONST32 = 9
K_CONSTHI = 10
K_STRING = 11
K_STRING_J = 12
K_MOVE4 = 13  # move / move-object 12x
K_MOVE8 = 14  # move/from16 22x
K_MOVE16 = 15  # move/16 32x
K_MRESULT_OBJ = 16
K_WW16 = 17  # move-wide/16: writes the pair at the 16-bit vAAAA
K_OTHER_INVOKE = 18  # invoke-polymorphic/custom, filled-new-array: result via move-result
K_FILL = 19  # fill-array-data: a constant byte[] (static keys and IVs)
MAX_CONST_BYTES = 64


def _build_kinds() -> tuple[int, ...]:
    k = [K_NONE] * 256
    k[0x01] = k[0x07] = K_MOVE4
    k[0x02] = k[0x08] = K_MOVE8
    k[0x03] = k[0x09] = K_MOVE16
    k[0x04] = K_WW4
    k[0x05] = K_WW8
    k[0x06] = K_WW16
    k[0x0A] = K_W8
    k[0x0B] = K_WW8
    k[0x0C] = K_MRESULT_OBJ
    k[0x0D] = K_W8
    k[0x12] = K_CONST4
    k[0x13] = K_CONST16
    k[0x14] = K_CONST32
    k[0x15] = K_CONSTHI
    for op in (0x16, 0x17, 0x18, 0x19):
        k[op] = K_WW8
    k[0x1A] = K_STRING
    k[0x1B] = K_STRING_J
    k[0x1C] = K_W8
    k[0x20] = K_W4
    k[0x21] = K_W4
    k[0x22] = K_W8
    k[0x23] = K_W4
    for op in (0x24, 0x25, 0xFA, 0xFB, 0xFC, 0xFD):
        k[op] = K_OTHER_INVOKE
    for op in range(0x2D, 0x32):
        k[op] = K_W8
    for op in range(0x44, 0x4B):
        k[op] = K_W8
    k[0x45] = K_WW8
    for op in range(0x52, 0x59):
        k[op] = K_W4
    k[0x53] = K_WW4
    for op in range(0x60, 0x67):
        k[op] = K_W8
    k[0x61] = K_WW8
    for op in range(0x6E, 0x73):
        k[op] = K_INVOKE35
    for op in range(0x74, 0x79):
        k[op] = K_INVOKE3R
    for op in range(0x7B, 0x90):
        k[op] = K_W4
    for op in (0x7D, 0x7E, 0x80, 0x81, 0x83, 0x86, 0x88, 0x89, 0x8B):
        k[op] = K_WW4
    for op in range(0x90, 0xB0):
        k[op] = K_W8
    for op in list(range(0x9B, 0xA6)) + list(range(0xAB, 0xB0)):
        k[op] = K_WW8
    for op in range(0xB0, 0xD0):
        k[op] = K_W4
    for op in list(range(0xBB, 0xC6)) + list(range(0xCB, 0xD0)):
        k[op] = K_WW4
    for op in range(0xD0, 0xD8):
        k[op] = K_W4
    for op in range(0xD8, 0xE3):
        k[op] = K_W8
    k[0xFE] = k[0xFF] = K_W8
    k[0x26] = K_FILL
    return tuple(k)


_KIND = _build_kinds()
INVOKE_OPS = frozenset(range(0x6E, 0x73)) | frozenset(range(0x74, 0x79))
STATIC_INVOKES = frozenset((0x71, 0x77))
_SGET_BY_TYPE = {"I": 0x60, "F": 0x60, "J": 0x61, "D": 0x61, "Z": 0x63, "B": 0x64, "C": 0x65, "S": 0x66}
_FOLD_INVOKES = bytes(0x6E if (0x6E <= b <= 0x72 or 0x74 <= b <= 0x78) else b for b in range(256))
_PASSTHROUGH = {"getBytes", "toCharArray", "toString", "trim", "intern"}  # String methods keeping the constant

# Light intra-procedural data flow (see _DexScan._flow): what an invoke does to tracked values.
F_PASS = 1  # result = the receiver's (or static first argument's) value
F_SOURCE = 2  # result = data controlled by the user or another app (taint source)
F_SB_NEW = 3  # StringBuilder.<init>([String]): the receiver becomes a builder
F_SB_APPEND = 4  # builder.append(x): appends, returns the builder
F_SB_STRING = 5  # builder.toString(): the concatenation, '*' for unknown parts
F_CONCAT = 6  # String.concat
F_FILE_NEW = 7  # File.<init>(path) / (parent, child): the receiver holds the path
F_EXTERNAL = 8  # Environment.getExternalStorageDirectory(): modelled as "/sdcard"
_SB_FLOW = {"<init>": F_SB_NEW, "append": F_SB_APPEND, "toString": F_SB_STRING}
_FLOW: dict[str, dict[str, int]] = {
    "Ljava/lang/String;": {**dict.fromkeys(_PASSTHROUGH, F_PASS), "valueOf": F_PASS, "concat": F_CONCAT},
    "Ljava/lang/StringBuilder;": _SB_FLOW,
    "Ljava/lang/StringBuffer;": _SB_FLOW,
    "Ljava/io/File;": {
        "<init>": F_FILE_NEW,
        "getAbsolutePath": F_PASS,
        "getPath": F_PASS,
        "getCanonicalPath": F_PASS,
        "toString": F_PASS,
    },
    "Landroid/os/Environment;": {"getExternalStorageDirectory": F_EXTERNAL},
    "Landroid/net/Uri;": {
        "parse": F_PASS,
        **dict.fromkeys(
            (
                "getQueryParameter",
                "getQueryParameters",
                "getPath",
                "getLastPathSegment",
                "getPathSegments",
                "getHost",
                "getFragment",
                "getEncodedPath",
                "getEncodedQuery",
                "getQuery",
            ),
            F_SOURCE,
        ),
    },
    "Landroid/app/Activity;": {"getIntent": F_SOURCE},
    "Landroid/content/Intent;": dict.fromkeys(
        (
            "getStringExtra",
            "getParcelableExtra",
            "getData",
            "getDataString",
            "getExtras",
            "getBundleExtra",
            "getSerializableExtra",
            "getCharSequenceExtra",
            "getStringArrayExtra",
            "getParcelableArrayExtra",
        ),
        F_SOURCE,
    ),
    "Landroid/os/Bundle;": dict.fromkeys(
        ("get", "getString", "getParcelable", "getSerializable", "getCharSequence", "getStringArray"), F_SOURCE
    ),
    "Landroid/widget/EditText;": {"getText": F_SOURCE},
    "Landroid/widget/TextView;": {"getText": F_SOURCE},
    "Lorg/json/JSONArray;": dict.fromkeys(("getString", "optString", "getJSONObject", "get"), F_SOURCE),
    "Lorg/apache/cordova/CordovaArgs;": dict.fromkeys(("getString", "optString", "getJSONObject", "get"), F_SOURCE),
}
# parameters of these entry points carry another app's (or the web page's) data: (method name,
# parameter descriptor) -> source name reported in `taint`
_PARAM_SOURCES: dict[str, tuple[str, ...]] = {
    "openFile": ("Landroid/net/Uri;",),
    "openAssetFile": ("Landroid/net/Uri;",),
    "openTypedAssetFile": ("Landroid/net/Uri;",),
    "onReceive": ("Landroid/content/Intent;",),
    "onNewIntent": ("Landroid/content/Intent;",),
    "onStartCommand": ("Landroid/content/Intent;",),
    "onHandleIntent": ("Landroid/content/Intent;",),
    "onBind": ("Landroid/content/Intent;",),
    "execute": ("Lorg/json/JSONArray;", "Lorg/apache/cordova/CordovaArgs;"),
}
_PARAM_SOURCE_NAMES = {
    "openFile": "android.content.ContentProvider.openFile",
    "openAssetFile": "android.content.ContentProvider.openAssetFile",
    "openTypedAssetFile": "android.content.ContentProvider.openTypedAssetFile",
    "onReceive": "android.content.BroadcastReceiver.onReceive",
    "onNewIntent": "android.app.Activity.onNewIntent",
    "onStartCommand": "android.app.Service.onStartCommand",
    "onHandleIntent": "android.app.IntentService.onHandleIntent",
    "onBind": "android.app.Service.onBind",
    "execute": "org.apache.cordova.CordovaPlugin.execute",
}
_COMPARE_APIS = frozenset(
    ("java.lang.String.equals", "java.lang.String.equalsIgnoreCase", "java.lang.String.contentEquals")
)
# APIs whose arguments keep a partly known concatenation ("Error with card: *"); for every other
# API such an argument stays null (not a constant: SQL built by concatenation, keys, IVs ...)
_PARTIAL_TEXT_APIS = ("android.util.Log.", "java.io.PrintStream.", "android.webkit.WebView.load")
MAX_FOLDED = 512  # characters of a folded string concatenation
MAX_CONST_ARRAY = 64  # elements of a tracked constant String[]

# constant first arguments of these calls are hard-coded key material (reported as secrets)
_KEY_MATERIAL = {
    "javax.crypto.spec.SecretKeySpec.<init>": "crypto_key",
    "javax.crypto.spec.PBEKeySpec.<init>": "password",
}

# event kinds found by the byte scans
EV_CALL = 0
EV_FIELD = 1
EV_STRING = 2
EV_STORE = 3


def _s16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


def _s32(v: int) -> int:
    return v - 0x100000000 if v & 0x80000000 else v


_U32 = struct.Struct("<I")


# ======================================================================================
# String classification
# ======================================================================================
_URL_SCHEMES = (b"https", b"http", b"wss", b"ftp", b"ws")
_URL_BODY = re.compile(rb"[^\x00-\x20\x7f-\xff\"'<>\\^`{|}]+")
_HOST_RE = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_IP_RE = re.compile(r"^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,12}(?![A-Za-z0-9-])"
)
# whole strings (anchored at the NUL before the uleb128 length) that may be hosts, IPs or tokens
_WHOLE_RE = re.compile(
    rb"\x00(?:[\x04-\x7f]|[\x80-\xff][\x01-\x7f])"
    rb"(?:(?P<ip>\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d{1,5})?)"
    rb"|(?P<dom>[a-z0-9][a-z0-9.-]*+(?:(?<=\.[a-z]{2})|(?<=\.[a-z]{3})|(?<=\.[a-z]{4})|(?<=\.[a-z]{5})))"
    rb"|(?P<tok>(?=[^\x00]{16})[A-Za-z+/=_-]*+[0-9][A-Za-z0-9+/=_-]*+)"
    rb"|(?P<text>(?:-----BEGIN |(?:Bearer |bearer )?eyJ)[^\x00]*+))(?=\x00)"  # PEM blocks, JWTs
)
# identifiers naming a secret (field names): key, mKey, AES_KEY, apiKey, password, clientSecret...
_SECRET_WORDS = ("key", "secret", "password", "passwd", "pwd", "token", "passphrase")
_SECRET_END = re.compile(r"(?i)(?:key|secret|passw(?:or)?d|pwd|token|passphrase)$")


def _secret_name(name: str) -> bool:
    """``key``, ``mKey``, ``aesKey``, ``AES_KEY``, ``api_key``, ``clientSecret``: the last word of
    the identifier (camelCase or snake_case) is a secret word; ``monkey``/``hockey`` are not."""
    low = name.lower()
    for w in _SECRET_WORDS:
        if not low.endswith(w):
            continue
        head = name[: len(name) - len(w)]
        tail = name[len(name) - len(w) :]
        if not head:
            return True
        if head.endswith("_"):
            return True
        if tail[0].isupper() and (head[-1].islower() or head[-1].isdigit()):
            return True
        if tail.isupper() and head.isupper() and head.endswith(("API", "SECRET")):
            return True
    return False


_PASSWORD_NAME = re.compile(r"(?i)pass|pwd")

_TLDS = frozenset(
    """com net org edu gov mil int info biz pro mobi app dev io co ai me tv cc us uk de fr it es nl be
    ch at se no dk fi pl cz ru ua cn jp kr tw hk sg in au nz ca br mx ar cl eu asia xyz online site tech
    cloud health care clinic hospital med network services solutions""".split()
)
_PACKAGE_ROOTS = frozenset(
    "com org net io android androidx java javax kotlin kotlinx dalvik de fr uk edu gov me co".split()
)
_NAMESPACE_HOSTS = frozenset(
    """schemas.android.com www.w3.org w3.org ns.adobe.com xmlpull.org www.xmlpull.org xml.org xml.apache.org
    schemas.xmlsoap.org schemas.openxmlformats.org purl.org java.sun.com apache.org www.apache.org
    xmlns.jcp.org schemas.microsoft.com schema.org www.schema.org ns.android.com""".split()
)

_SPECIFIC_SECRETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("aws_access_key", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])")),
    ("google_api_key", re.compile(r"AIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])")),
    ("jwt", re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")),
    ("slack_token", re.compile(r"xox[abposr]-[0-9A-Za-z\-]{10,}")),
    ("github_token", re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{50,})")),
    ("stripe_secret_key", re.compile(r"(?:sk|rk)_live_[0-9A-Za-z]{20,}")),
    ("aliyun_access_key", re.compile(r"(?<![A-Za-z0-9])LTAI[A-Za-z0-9]{12,20}(?![A-Za-z0-9])")),
    ("tencent_secret_id", re.compile(r"(?<![A-Za-z0-9])AKID[A-Za-z0-9]{32}(?![A-Za-z0-9])")),
    ("sendgrid_key", re.compile(r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}")),
    ("twilio_key", re.compile(r"(?<![A-Za-z0-9])SK[0-9a-f]{32}(?![A-Za-z0-9])")),
)
# cheap pre-check: the literal prefixes of the patterns above
_ANY_SPECIFIC = re.compile(
    r"AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|AIza|eyJ|xox|gh[pousr]_|github_pat_|_live_|LTAI|AKID|SG\.|SK"
)
_PRIVATE_KEY_RE = re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----")
_FIREBASE_RE = re.compile(r"^https?://[a-z0-9.-]+\.(?:firebaseio\.com|firebasedatabase\.app)(?:/|$)")
_URL_CREDENTIALS = re.compile(r"^[a-z]+://([^/@:\s]+):([^/@\s]+)@")
_PASSWORD_ASSIGN = re.compile(r"(?i)(?:password|passwd|pwd)\s*[=:]\s*([^\s&;,'\"]{4,})")
_NOT_SECRET_PREFIXES = (
    "MII",  # DER (certificates, public keys)
    "MFkw",  # EC public key
    "MCow",  # Ed25519 public key
    "iVBORw0KGgo",  # PNG
    "/9j/",  # JPEG
    "R0lGOD",  # GIF
    "UklGR",  # WEBP
    "PHN2Zy",  # SVG
    "sha256/",
    "sha1/",
    "data:",
)
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_SEQUENCES = ("0123", "1234", "2345", "3456", "4567", "5678", "6789", "abcd", "bcde", "cdef", "ABCD", "BCDE", "wxyz")


def shannon_entropy(text: str) -> float:
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _char_classes(text: str) -> int:
    return any(c.islower() for c in text) + any(c.isupper() for c in text) + any(c.isdigit() for c in text)


def _transitions(text: str) -> float:
    """Share of adjacent characters whose class (lower/upper/digit/other) changes: random
    tokens switch class often, identifiers (camelCase, SNAKE_CASE_1) rarely."""

    def cls(c: str) -> int:
        return 0 if c.islower() else 1 if c.isupper() else 2 if c.isdigit() else 3

    prev = cls(text[0])
    changes = 0
    for c in text[1:]:
        k = cls(c)
        if k != prev:
            changes += 1
        prev = k
    return changes / max(len(text) - 1, 1)


def classify_secret(text: str, *, generic: bool = True) -> list[tuple[str, str]]:
    """Secrets in one string constant: [(kind, value)]. ``generic`` adds the entropy-based
    ``generic_api_key`` test for strings that are a single token."""
    found: list[tuple[str, str]] = []
    if "-----BEGIN" in text and _PRIVATE_KEY_RE.search(text):
        found.append(("private_key", text))
    if _ANY_SPECIFIC.search(text):
        for kind, rx in _SPECIFIC_SECRETS:
            for m in rx.finditer(text):
                found.append((kind, m.group(0)))
    if found or not generic:
        return found
    if _FIREBASE_RE.match(text):
        return [("firebase_url", text)]
    m = _URL_CREDENTIALS.match(text)
    if m:
        return [("password", text)]
    m = _PASSWORD_ASSIGN.search(text)
    if m and not m.group(1).startswith(("%", "$", "{", "?")):
        return [("password", text)]
    if _looks_like_generic_key(text):
        return [("generic_api_key", text)]
    return []


def _looks_like_generic_key(text: str) -> bool:
    n = len(text)
    if n < 20 or n > 100 or "." in text or text.startswith(_NOT_SECRET_PREFIXES):
        return False
    if _HEX_RE.match(text) or text.count("/") > 2 or text.count("_") > 2 or text.count("-") > 4:
        return False
    if _char_classes(text) < 3 or any(s in text for s in _SEQUENCES):
        return False
    if shannon_entropy(text) < 4.0:
        return False
    return _transitions(text) >= 0.35


def _value_is_secret_like(text: str) -> bool:
    """Filter for string constants stored into secret-named fields (``key = "..."``)."""
    if len(text) < 6 or len(text) > 512 or text.startswith(("http://", "https://", "/", "%")):
        return False
    if re.fullmatch(r"[a-z0-9_.\-]+|[A-Z0-9_.\-]+", text):  # preference names, constants
        return False
    return shannon_entropy(text) >= 2.5


def _valid_host(host: str) -> bool:
    return bool(host) and len(host) <= 253 and bool(_HOST_RE.match(host))


def _is_ip(text: str) -> bool:
    return bool(_IP_RE.match(text))


def _ip_private(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return addr.is_private or addr.is_loopback or addr.is_link_local


def _domain_ok(dom: str) -> bool:
    """A whole string that looks like a host name (not a Java package or a file name)."""
    labels = dom.split(".")
    return (
        len(labels) >= 2
        and labels[-1] in _TLDS
        and labels[0] not in _PACKAGE_ROOTS
        and not (len(labels) >= 3 and labels[0] in _TLDS)  # nl.example.app: reversed package
        and all(lab and not lab.startswith("-") and not lab.endswith("-") for lab in labels)
        and not labels[-2].isdigit()
    )


def _secondary_relevant(
    api: str, args: list[Any], taints: list[str | None], receiver: Any, receiver_taint: str | None
) -> bool:
    """Secondary calls worth reporting: a constant compared with user/intent data
    (String.equals & co.), a suffix test against a constant (endsWith), every putExtra."""
    if api in _COMPARE_APIS:
        return (isinstance(receiver, str) and any(taints)) or (
            receiver_taint is not None and any(isinstance(a, str) for a in args)
        )
    if "endsWith" in api:
        return any(isinstance(a, str) and "." in a for a in args)
    return True


_PRINTABLE = re.compile(r"^[\x20-\x7e]{6,64}$")


def _decoded_text(value: str) -> str | None:
    """Printable ASCII text (6-64 characters) that a constant Base64 string decodes to."""
    if len(value) < 8 or len(value) > 128:
        return None
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if _PRINTABLE.match(text) else None


def _fold(parts: list[str], taint: str | None) -> tuple | None:
    """A concatenation as a tracked value: ("c", text, taint), or ("t", taint) when nothing of
    it is constant, or None."""
    text = "".join(parts)[:MAX_FOLDED]
    if text.strip("*"):
        return ("c", text, taint)
    return ("t", taint) if taint else None


# ======================================================================================
# The analysis
# ======================================================================================
class _Program:
    """State shared by all DEX files of one package (class hierarchy, results)."""

    def __init__(self, catalog: ApiCatalog, dexes: list[DexFile]) -> None:
        self.catalog = catalog
        self.dexes = dexes
        # descriptor -> (dex index, class_def index, superclass, interfaces); first definition wins
        self.defined: dict[str, tuple[int, int, str | None, tuple[str, ...]]] = {}
        self.class_descs: list[list[str]] = []
        self.calls: list[Call] = []
        self.call_counts: Counter[str] = Counter()
        self.field_reads: list[FieldRead] = []
        self.field_counts: Counter[str] = Counter()
        self.overrides: list[Override] = []
        self.strings = _StringCollector()
        self.relevant: dict[str, frozenset[str]] = {}

    # ---------------------------------------------------------------- hierarchy
    def load_classes(self, di: int, dex: DexFile) -> None:
        """Read the classes of one DEX file into the package-wide hierarchy (all or nothing)."""
        tdescs = dex.type_descriptors()
        dex.type_table()
        ntypes = len(tdescs)
        types = dex.class_type_indices()
        supers = dex.superclass_indices()
        iface_offs = dex.interfaces_offsets()
        no_index = 0xFFFFFFFF
        if types and max(types) >= ntypes:
            raise AnalysisError("corrupt_dex", f"{dex.name}: class_defs: class type index out of range")
        descs = [tdescs[t] for t in types]
        data = dex.data
        limit = len(data)
        unpack = struct.unpack_from
        new: dict[str, tuple[int, int, str | None, tuple[str, ...]]] = {}
        defined = self.defined
        for ci, desc, sup, off in zip(range(len(descs)), descs, supers, iface_offs):
            if desc in new or desc in defined:
                continue
            if sup == no_index:
                sup_desc = None
            elif sup < ntypes:
                sup_desc = tdescs[sup]
            else:
                raise AnalysisError("corrupt_dex", f"{dex.name}: class_defs: superclass index out of range")
            ifaces: tuple[str, ...] = ()
            if off:
                if off & 3 or off + 4 > limit:
                    raise AnalysisError("corrupt_dex", f"{dex.name}: type_list: offset {off:#x} out of range")
                count = _U32.unpack_from(data, off)[0]
                if off + 4 + 2 * count > limit:
                    raise AnalysisError("corrupt_dex", f"{dex.name}: type_list at {off:#x} exceeds the file")
                ifaces = tuple(tdescs[i] if i < ntypes else "?" for i in unpack(f"<{count}H", data, off + 4))
            new[desc] = (di, ci, sup_desc, ifaces)
        defined.update(new)
        self.class_descs.append(descs)

    def compute_relevant(self) -> None:
        """Every type (app classes and known framework classes) that has an *interesting*
        ancestor (a watched API class or an override base), with those ancestors."""
        children: dict[str, list[str]] = {}
        for desc, (_di, _ci, sup, ifaces) in self.defined.items():
            if sup is not None:
                children.setdefault(sup, []).append(desc)
            for i in ifaces:
                children.setdefault(i, []).append(desc)
        for s, subs in self.catalog.subtypes.items():
            lst = children.setdefault(s, [])
            lst.extend(d for d in subs if d not in self.defined)
        relevant: dict[str, set[str]] = {}
        for root in self.catalog.interesting:
            if root not in children:
                continue
            stack = list(children[root])
            seen = {root}
            while stack:  # bounded: every type is visited once per root
                d = stack.pop()
                if d in seen:
                    continue
                seen.add(d)
                relevant.setdefault(d, set()).add(root)
                stack.extend(children.get(d, ()))
        self.relevant = {d: frozenset(r) for d, r in relevant.items()}


class _StringCollector:
    """Interesting string values across DEX files, with their code locations."""

    def __init__(self) -> None:
        self.urls: dict[str, UrlString] = {}
        self.ips: dict[str, IpString] = {}
        self.emails: dict[str, EmailString] = {}
        self.domains: set[str] = set()
        self.secrets: dict[tuple[str, str], Secret] = {}
        # (dex index, string idx) -> value objects that gain a location when the string is used
        self.by_sidx: dict[tuple[int, int], list[Any]] = {}
        # generic secrets must be referenced from code (const-string) to be reported
        self.pending_generic: dict[tuple[int, int], Secret] = {}

    def attach(self, key: tuple[int, int], obj: Any) -> None:
        lst = self.by_sidx.setdefault(key, [])
        if obj not in lst:
            lst.append(obj)

    def needs_location(self, key: tuple[int, int]) -> bool:
        objs = self.by_sidx.get(key)
        return bool(objs) and any(len(o.locations) < MAX_LOCATIONS for o in objs)

    def add_location(self, key: tuple[int, int], loc: Location) -> None:
        for o in self.by_sidx.get(key, ()):
            if len(o.locations) < MAX_LOCATIONS and loc not in o.locations:
                o.locations.append(loc)
        pending = self.pending_generic.get(key)
        if pending is not None and not (loc.cls or "").startswith(FRAMEWORK_PREFIXES):
            del self.pending_generic[key]
            existing = self.secrets.get((pending.kind, pending.value))
            if existing is None:
                self.secrets[(pending.kind, pending.value)] = pending
                pending.locations.append(loc)
            elif loc not in existing.locations and len(existing.locations) < MAX_LOCATIONS:
                existing.locations.append(loc)
            self.attach(key, self.secrets[(pending.kind, pending.value)])

    def secret(self, kind: str, value: str) -> Secret:
        s = self.secrets.get((kind, value))
        if s is None:
            s = Secret(kind, value, round(shannon_entropy(value), 3))
            self.secrets[(kind, value)] = s
        return s


class _DexScan:
    """Per-DEX work: ids of interest, byte scans, decoding of the methods with hits."""

    def __init__(self, prog: _Program, di: int, dex: DexFile) -> None:
        self.prog = prog
        self.di = di
        self.dex = dex
        self.data = dex.data
        self.name = dex.name
        self.watched: dict[int, str] = {}  # method idx -> api
        self.fields: dict[int, str] = {}  # field idx -> watched field name
        self.field_ops: set[int] = set()  # sget opcodes needed
        self.store_fields: dict[int, str] = {}  # field idx -> field name (secret-named fields)
        self.flow: dict[int, int] = {}  # method idx -> F_* (data flow through the invoke)
        self.source_names: dict[int, str] = {}  # method idx of a taint source -> its Java name
        self.secondary: set[int] = set()  # method ids of secondary watched APIs
        self.param_sources: dict[int, str] = {}  # string idx of an entry-point name -> the name
        self.string_array_type = -1
        self.init_sidx = -1
        self.intrinsics: set[int] = set()  # kotlin null-check helpers (ignored in bodies)
        self.str_targets: set[int] = set()  # string ids whose const-string uses we want
        self._widths: dict[int, tuple[int, ...]] = {}
        self._method_names: dict[int, str] = {}

    # ---------------------------------------------------------------- ids of interest
    def find_watched_methods(self) -> None:
        """Method ids of watched APIs: references to the watched classes themselves, and
        references through subclasses known from the hierarchy (``MainActivity.getSharedPreferences``).
        Names are compared as string ids (looked up once), so no method name is decoded."""
        dex = self.dex
        cat = self.prog.catalog
        types = dex.type_table()
        names = dex.method_name_idx
        string = dex.string
        sidx_of: dict[str, int | None] = {}

        def by_sidx(members: dict[str, str], inherited: bool) -> dict[int, str]:
            out: dict[int, str] = {}
            for name, api in members.items():
                if inherited and name in ("<init>", "<clinit>"):
                    continue  # constructors are not inherited
                if name not in sidx_of:
                    sidx_of[name] = dex.find_string(name)
                sidx = sidx_of[name]
                if sidx is not None:
                    out.setdefault(sidx, api)
            return out

        for desc, members in cat.methods.items():  # direct references to watched classes
            t = types.get(desc)
            if t is None:
                continue
            lo, hi = dex.method_range(t)
            if lo == hi:
                continue
            wanted = by_sidx(members, False)
            for m in range(lo, hi):
                api = wanted.get(names[m])
                if api is not None:
                    self.watched[m] = api
        combined: dict[frozenset[str], dict[int, str]] = {}
        for desc, roots in self.prog.relevant.items():  # references through subclasses
            t = types.get(desc)
            if t is None:
                continue
            lo, hi = dex.method_range(t)
            if lo == hi:
                continue
            wanted = combined.get(roots)
            if wanted is None:
                wanted = {}
                for r in sorted(roots):
                    if r in cat.methods:
                        for k, v in by_sidx(cat.methods[r], True).items():
                            wanted.setdefault(k, v)
                combined[roots] = wanted
            if not wanted:
                continue
            for m in range(lo, hi):
                if m not in self.watched:
                    api = wanted.get(names[m])
                    if api is not None:
                        self.watched[m] = api
        # data flow helpers: String/StringBuilder/File methods, taint sources (also reached
        # through app subclasses such as MainActivity.getIntent)
        flow_classes = [(d, d) for d in _FLOW] + [
            (d, r) for d, roots in self.prog.relevant.items() for r in sorted(roots) if r in _FLOW
        ]
        for desc, root in flow_classes:
            t = types.get(desc)
            if t is None:
                continue
            lo, hi = dex.method_range(t)
            table = _FLOW[root]
            for m in range(lo, hi):
                if m in self.flow:
                    continue
                name = string(names[m])
                f = table.get(name)
                if f is None or (desc != root and name == "<init>"):
                    continue
                self.flow[m] = f
                if f == F_SOURCE:
                    self.source_names[m] = descriptor_to_java(root) + "." + name
        t = types.get("Lkotlin/jvm/internal/Intrinsics;")
        if t is not None:
            lo, hi = dex.method_range(t)
            self.intrinsics = {m for m in range(lo, hi) if string(names[m]).startswith("check")}
        if cat.secondary:
            self.secondary = {m for m, api in self.watched.items() if api in cat.secondary}
        self.string_array_type = types.get("[Ljava/lang/String;", -1)
        init = dex.find_string("<init>")
        self.init_sidx = -1 if init is None else init
        for name in _PARAM_SOURCES:
            sidx = dex.find_string(name)
            if sidx is not None:
                self.param_sources[sidx] = name

    def find_watched_fields(self) -> None:
        dex = self.dex
        types = dex.type_table()
        for desc, members in self.prog.catalog.fields.items():
            t = types.get(desc)
            if t is None:
                continue
            lo, hi = dex.field_range(t)
            for f in range(lo, hi):
                name = members.get(dex.string(dex.field_name_idx[f]))
                if name is not None:
                    self.fields[f] = name
                    tdesc = dex.type_descriptor(dex.field_type_idx[f])
                    op = _SGET_BY_TYPE.get(tdesc, 0x62)
                    self.field_ops.add(op - 0x0E if name in self.prog.catalog.instance_fields else op)

    def find_secret_fields(self) -> None:
        """String fields of app classes whose name says they hold a secret; stores of
        constants into them are reported as secrets (``key = "This is the super secret key 123"``)."""
        dex = self.dex
        types = dex.type_table()
        string_type = types.get("Ljava/lang/String;")
        if string_type is None:
            return
        names = dex.field_name_idx
        ftypes = dex.field_type_idx
        string = dex.string
        verdict: dict[int, bool] = {}
        for desc, t in zip(self.prog.class_descs[self.di], dex.class_type_indices()):
            if desc.startswith(_FRAMEWORK_DESCRIPTORS):
                continue
            lo, hi = dex.field_range(t)
            for f in range(lo, hi):
                if ftypes[f] != string_type:
                    continue
                n = names[f]
                ok = verdict.get(n)
                if ok is None:
                    name = string(n)
                    ok = verdict[n] = bool(_SECRET_END.search(name)) and _secret_name(name)
                if ok:
                    self.store_fields[f] = string(n)

    # ---------------------------------------------------------------- strings
    def _setup_strings(self) -> None:
        offs = self.dex.string_offsets
        # string data is normally laid out in id order; check a sample (a wrong guess only
        # loses hits: _string_at verifies that the string found contains the position)
        sample = offs[:: max(1, len(offs) // 256)]
        if sorted(sample) == sample.tolist():
            self._soffs = offs
            self._sidx = None
        else:
            order = sorted(range(len(offs)), key=offs.__getitem__)
            self._soffs = [offs[i] for i in order]
            self._sidx = order

    def _string_at(self, pos: int) -> tuple[int, int, int] | None:
        """(string idx, data start, data end) of the string whose bytes contain ``pos``."""
        i = bisect_right(self._soffs, pos) - 1
        if i < 0:
            return None
        sidx = self._sidx[i] if self._sidx is not None else i
        data = self.data
        p = self._soffs[i]
        for _ in range(5):
            if p >= len(data):
                return None
            b = data[p]
            p += 1
            if b < 0x80:
                break
        if pos < p:
            return None
        end = data.find(b"\x00", p)
        if end < 0 or pos > end:
            return None
        return sidx, p, end

    def collect_strings(self) -> None:
        dex = self.dex
        data = self.data
        col = self.prog.strings
        di = self.di
        self._setup_strings()
        ss, se = dex.section_range(TYPE_STRING_DATA_ITEM)
        done: set[int] = set()

        def text_of(sidx: int) -> str:
            return dex.string(sidx)

        # URLs: anchored on "://"
        find = data.find
        p = find(b"://", ss, se)
        while p >= 0:
            hit = self._string_at(p)
            if hit is not None and hit[0] not in done:
                done.add(hit[0])
                self._urls_in(hit[0], text_of(hit[0]))
            p = find(b"://", p + 3, se)
        # e-mail addresses
        p = find(b"@", ss, se)
        while p >= 0:
            hit = self._string_at(p)
            if hit is not None:
                if hit[0] not in done:
                    text = text_of(hit[0])
                    for m in _EMAIL_RE.finditer(text):
                        email = m.group(0)
                        if email.rsplit(".", 1)[1].lower() in (
                            "png",
                            "jpg",
                            "jpeg",
                            "gif",
                            "webp",
                            "xml",
                            "json",
                            "js",
                        ):
                            continue
                        obj = col.emails.setdefault(email, EmailString(email))
                        col.attach((di, hit[0]), obj)
                        self.str_targets.add(hit[0])
                p = find(b"@", hit[2], se) if hit[2] > p else find(b"@", p + 1, se)
            else:
                p = find(b"@", p + 1, se)
        # whole strings: IPs, host names, single tokens
        for m in _WHOLE_RE.finditer(data, max(ss - 1, 0), se):
            group = m.lastgroup
            start = m.start(group)
            hit = self._string_at(start)
            if hit is None or hit[1] != start or hit[0] in done:
                continue
            sidx = hit[0]
            if group == "text":
                self._secrets_in(sidx, text_of(sidx), generic=False)
                continue
            value = m.group(group).decode("ascii")
            if group == "ip":
                ip = value.split(":", 1)[0]
                if _is_ip(ip):
                    obj = col.ips.setdefault(ip, IpString(ip, _ip_private(ip)))
                    col.attach((di, sidx), obj)
                    self.str_targets.add(sidx)
            elif group == "dom":
                if _domain_ok(value):
                    col.domains.add(value)
            else:
                self._secrets_in(sidx, value, generic=True)

    def _urls_in(self, sidx: int, text: str) -> None:
        col = self.prog.strings
        key = (self.di, sidx)
        raw = text.encode("utf-8", "replace")
        p = raw.find(b"://")
        while p >= 0:
            start = -1
            for scheme in _URL_SCHEMES:
                if raw[max(p - len(scheme), 0) : p].lower() == scheme and p >= len(scheme):
                    start = p - len(scheme)
                    break
            if start >= 0:
                m = _URL_BODY.match(raw, p + 3)
                if m:
                    url = raw[start : m.end()].decode("ascii", "replace").rstrip(".,;:)]'\"")
                    self._add_url(key, url)
            p = raw.find(b"://", p + 3)
        self._secrets_in(sidx, text, generic=False)
        m = _URL_CREDENTIALS.match(text)
        if m or _FIREBASE_RE.match(text):
            kind = "firebase_url" if not m else "password"
            col.attach(key, col.secret(kind, text if m else text.split("?")[0]))
            self.str_targets.add(sidx)

    def _add_url(self, key: tuple[int, int], url: str) -> None:
        col = self.prog.strings
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            scheme = parts.scheme.lower()
        except ValueError:
            return
        if not _valid_host(host) or host in _NAMESPACE_HOSTS:
            return
        if "." not in host and host != "localhost":
            return
        obj = col.urls.get(url)
        if obj is None:
            obj = col.urls[url] = UrlString(url, scheme, host)
        col.attach(key, obj)
        self.str_targets.add(key[1])
        if _is_ip(host):
            ipo = col.ips.setdefault(host, IpString(host, _ip_private(host)))
            ipo.in_url = True
            col.attach(key, ipo)
        elif host != "localhost":
            col.domains.add(host)
        if _FIREBASE_RE.match(url):
            col.attach(key, col.secret("firebase_url", f"{scheme}://{host}"))
        elif host == "hooks.slack.com" and "/services/" in url:
            col.attach(key, col.secret("slack_webhook", url))

    def _secrets_in(self, sidx: int, text: str, generic: bool) -> None:
        col = self.prog.strings
        key = (self.di, sidx)
        for kind, value in classify_secret(text, generic=generic):
            if kind == "generic_api_key":
                # reported only if some code loads the constant (see add_location)
                col.pending_generic[key] = Secret(kind, value, round(shannon_entropy(value), 3))
            else:
                col.attach(key, col.secret(kind, value))
            self.str_targets.add(sidx)

    # ---------------------------------------------------------------- byte scans
    @staticmethod
    def _tail(indices: set[int] | dict[int, Any], fold: bytes | None = None) -> bytes:
        """Regex for a little-endian u16 in ``indices``: grouped by high byte when that is
        compact, else a (looser) pair of byte classes that the caller re-checks. With
        ``fold``, the bytes are mapped through that translation table first (the scan runs
        over translated bytes)."""
        by_hi: dict[int, list[int]] = {}
        for i in indices:
            lo, hi = i & 0xFF, i >> 8
            if fold is not None:
                lo, hi = fold[lo], fold[hi]
            by_hi.setdefault(hi, []).append(lo)

        def cls(values: list[int]) -> bytes:
            return b"[" + b"".join(re.escape(bytes([v])) for v in sorted(set(values))) + b"]"

        his = cls(list(by_hi))
        if len(by_hi) <= 64:  # cheap high-byte check first, then the exact (low set, high) pairs
            alts = b"|".join(cls(los) + re.escape(bytes([hi])) for hi, los in sorted(by_hi.items()))
            return b"(?=[\x00-\xff]" + his + b")(?:" + alts + b")"
        return cls([lo for los in by_hi.values() for lo in los]) + his

    def scan(self) -> dict[int, tuple[int, Any]]:
        """Candidate positions -> (event kind, payload), before boundary confirmation."""
        data = self.data
        cs, ce = self.dex.section_range(TYPE_CODE_ITEM)
        out: dict[int, tuple[int, Any]] = {}
        watched = {m: a for m, a in self.watched.items() if m < 0x10000}
        if watched:
            folded = data[cs:ce].translate(_FOLD_INVOKES)
            rx = re.compile(b"\x6e[\x00-\xff]" + self._tail(watched, _FOLD_INVOKES), re.DOTALL)
            for m in rx.finditer(folded):
                pos = cs + m.start()
                if pos & 1 or data[pos] not in INVOKE_OPS:
                    continue
                midx = data[pos + 2] | data[pos + 3] << 8
                api = watched.get(midx)
                if api is not None:
                    out[pos] = (EV_CALL, midx)
        fields = {f: n for f, n in self.fields.items() if f < 0x10000}
        if fields:
            tail = self._tail(fields)
            for op in sorted(self.field_ops):
                rx = re.compile(re.escape(bytes([op])) + b"[\x00-\xff]" + tail, re.DOTALL)
                for m in rx.finditer(data, cs, ce):
                    pos = m.start()
                    f = data[pos + 2] | data[pos + 3] << 8
                    if not pos & 1 and f in fields:
                        out[pos] = (EV_FIELD, fields[f])
        stores = {f: n for f, n in self.store_fields.items() if f < 0x10000}
        if stores:
            tail = self._tail(stores)
            for op in (0x5B, 0x69):  # iput-object, sput-object
                rx = re.compile(re.escape(bytes([op])) + b"[\x00-\xff]" + tail, re.DOTALL)
                for m in rx.finditer(data, cs, ce):
                    pos = m.start()
                    f = data[pos + 2] | data[pos + 3] << 8
                    if not pos & 1 and f in stores:
                        out[pos] = (EV_STORE, stores[f])
        targets = self.str_targets | {k[1] for k in self.prog.strings.pending_generic if k[0] == self.di}
        small = {s for s in targets if s < 0x10000}
        if small:
            rx = re.compile(b"\x1a[\x00-\xff]" + self._tail(small), re.DOTALL)
            for m in rx.finditer(data, cs, ce):
                pos = m.start()
                s = data[pos + 2] | data[pos + 3] << 8
                if not pos & 1 and s in small:
                    out[pos] = (EV_STRING, s)
        if targets:  # const-string/jumbo: compilers also use it for small indices
            large = sorted(s for s in targets if s >= 0x10000)
            tail = self._tail(small) + b"\x00\x00" if small else b""
            if large:
                tail = (
                    b"(?:" + b"|".join([tail] * bool(small) + [re.escape(struct.pack("<I", s)) for s in large]) + b")"
                )
            rx = re.compile(b"\x1b[\x00-\xff]" + tail, re.DOTALL)
            for m in rx.finditer(data, cs, ce):
                pos = m.start()
                s = _U32.unpack_from(data, pos + 2)[0]
                if not pos & 1 and s in targets:
                    out[pos] = (EV_STRING, s)
        return out

    # ---------------------------------------------------------------- decoding
    def _param_widths(self, midx: int) -> tuple[int, ...]:
        """Register width of each parameter: 1, 2 (long/double) or 0 for references (1
        register; a constant 0 in it is the null literal)."""
        w = self._widths.get(midx)
        if w is None:
            _ret, params = self.dex.proto(self.dex.method_proto_idx[midx])
            w = tuple(2 if p in ("J", "D") else 0 if p[:1] in ("L", "[") else 1 for p in params)
            self._widths[midx] = w
        return w

    def _method_label(self, midx: int) -> str:
        label = self._method_names.get(midx)
        if label is None:
            _cls, name, desc = self.dex.method_ref(midx)
            label = self._method_names[midx] = f"{name}{desc}"
        return label

    def _value(self, v: Any) -> str | int | None:
        """JSON form of a tracked constant: strings as themselves, ints, and constant byte
        arrays (``new-array`` + ``fill-array-data``) as ``"bytes:<hex>"``."""
        if isinstance(v, tuple):
            tag = v[0]
            if tag == "s":
                return self.dex.string(v[1])
            if tag == "b":
                return "bytes:" + v[1].hex()
            if tag == "c":
                return v[1]
            if tag == "a":  # a String[] (Runtime.exec's command line): its elements joined by spaces
                if any(e is not None for e in v[1]):
                    return " ".join("*" if e is None else e for e in v[1])
            return None
        return v

    def resolve(self, candidates: dict[int, tuple[int, Any]]) -> None:
        """Group candidates by method, decode each such method once, emit the events."""
        if not candidates:
            return
        dex = self.dex
        prog = self.prog
        col = prog.strings
        class_descs = prog.class_descs[self.di]
        by_method: dict[int, tuple[int, tuple[int, int], list[int]]] = {}
        cur_start = cur_end = -1
        cur: list[int] = []
        for pos in sorted(candidates):
            if cur_start <= pos < cur_end:
                cur.append(pos)
                continue
            hit = dex.method_at(pos)
            if hit is None:
                continue
            code_off, end, owner = hit
            if owner[0] >= len(class_descs) or class_descs[owner[0]].startswith(LIBRARY_DESCRIPTORS):
                cur = []  # code of the bundled platform libraries: not the app's behaviour
                cur_start, cur_end = code_off + 16, end
                continue
            entry = by_method.get(code_off)
            if entry is None:
                entry = by_method[code_off] = (end, owner, [])
            cur = entry[2]
            cur.append(pos)
            cur_start, cur_end = code_off + 16, end
        secondary = self.secondary
        for code_off, (end, owner, positions) in by_method.items():
            if secondary and all(candidates[p][0] == EV_CALL and candidates[p][1] in secondary for p in positions):
                continue  # only secondary calls (String.equals, putExtra): not decoded
            wanted = {}
            for pos in positions:
                kind, payload = candidates[pos]
                if kind == EV_CALL and prog.call_counts[self.watched[payload]] >= MAX_CALLS_PER_API:
                    continue
                if kind == EV_FIELD and prog.field_counts[payload] >= MAX_FIELD_READS:
                    continue
                if (
                    kind == EV_STRING
                    and not col.needs_location((self.di, payload))
                    and (self.di, payload) not in col.pending_generic
                ):
                    continue
                wanted[pos] = (kind, payload)
            if not wanted:
                continue
            ci, midx = owner
            events = self._walk(code_off + 16, end, wanted, self._param_taint(code_off, midx))
            if not events:
                continue
            cls_name = descriptor_to_java(class_descs[ci]) if ci < len(class_descs) else None
            label = self._method_label(midx)
            positions_table = None
            for pc, kind, payload, extra in events:
                if positions_table is None:
                    debug_off = _U32.unpack_from(self.data, code_off + 8)[0]
                    positions_table = dex.positions(debug_off, events[-1][0])
                loc = Location(self.name, cls_name, label, line_at(positions_table, pc))
                if kind == EV_CALL:
                    api = self.watched[payload]
                    raw, taints, recv, recv_taint = extra
                    args = [self._value(v) for v in raw]
                    if not api.startswith(_PARTIAL_TEXT_APIS):  # partial folds ('*') only for messages/URLs
                        args = [
                            None if v.__class__ is tuple and v[0] == "c" and "*" in v[1] else a
                            for v, a in zip(raw, args, strict=True)
                        ]
                    receiver = self._value(recv) if recv.__class__ is tuple else None
                    if payload in secondary and not _secondary_relevant(api, args, taints, receiver, recv_taint):
                        continue
                    if prog.call_counts[api] < MAX_CALLS_PER_API:
                        prog.call_counts[api] += 1
                        prog.calls.append(Call(api, args, loc, pc, taints, receiver, recv_taint))
                    if api == "android.util.Base64.decode" and args and isinstance(args[0], str):
                        decoded = _decoded_text(args[0])
                        if decoded:
                            s = col.secret("base64_encoded", decoded)
                            if loc not in s.locations and len(s.locations) < MAX_LOCATIONS:
                                s.locations.append(loc)
                    key_kind = _KEY_MATERIAL.get(api)
                    if key_kind and args and isinstance(args[0], str) and args[0]:
                        s = col.secret(key_kind, args[0])
                        if loc not in s.locations and len(s.locations) < MAX_LOCATIONS:
                            s.locations.append(loc)
                elif kind == EV_FIELD:
                    if prog.field_counts[payload] < MAX_FIELD_READS:
                        prog.field_counts[payload] += 1
                        prog.field_reads.append(FieldRead(payload, loc))
                elif kind == EV_STRING:
                    col.add_location((self.di, payload), loc)
                elif kind == EV_STORE and isinstance(extra, tuple) and extra[0] == "s":
                    value = dex.string(extra[1])
                    if _value_is_secret_like(value):
                        kind_name = "password" if _PASSWORD_NAME.search(payload) else "generic_api_key"
                        s = col.secret(kind_name, value)
                        if loc not in s.locations and len(s.locations) < MAX_LOCATIONS:
                            s.locations.append(loc)

    def _walk(
        self, start: int, end: int, wanted: dict[int, tuple[int, Any]], init: dict[int, Any] | None = None
    ) -> list[tuple]:
        """Decode [start, end) linearly up to the last wanted position, tracking constants
        in registers; return (pc, kind, payload, extra) for wanted positions that are real
        instruction starts. ``extra`` is the argument list of a call or the stored value.

        Register values: ints, ``("s", string idx)``, ``("b", bytes)`` (constant byte[]),
        ``("c", text, taint)`` (a folded concatenation, '*' for unknown parts), ``("t", source)``
        (user/intent data), ``("sb", parts, taints)`` (a StringBuilder), ``("a", elements)``
        (a constant String[])."""
        data = self.data
        units = OPCODE_UNITS
        kinds = _KIND
        flow = self.flow
        consts: dict[int, Any] = dict(init) if init else {}
        tainted = bool(init)  # some register holds user/intent data: check every invoke's inputs
        fieldvals: dict[int, Any] = {}  # instance field idx -> value stored by this method
        events: list[tuple] = []
        order = sorted(wanted)
        wi = 0
        nxt = order[0]
        last = order[-1]
        after_invoke = -1
        result: Any = None
        pos = start
        end = min(end, len(data) - 8)  # every read below stays inside the buffer
        while pos <= last and pos < end:
            op = data[pos]
            if pos >= nxt:
                while nxt < pos:  # skipped over: not an instruction boundary
                    wi += 1
                    nxt = order[wi] if wi < len(order) else end + 1
                if pos == nxt:
                    kind, payload = wanted[pos]
                    extra = None
                    if kind == EV_CALL:
                        extra = self._args(op, pos, payload, consts)
                    elif kind == EV_STORE:
                        reg = data[pos + 1] & 0xF if op == 0x5B else data[pos + 1]
                        extra = consts.get(reg)
                    events.append(((pos - start) >> 1, kind, payload, extra))
                    wi += 1
                    nxt = order[wi] if wi < len(order) else end + 1
            k = kinds[op]
            if k:
                if k == K_INVOKE35 or k == K_INVOKE3R:
                    midx = data[pos + 2] | data[pos + 3] << 8
                    f = flow.get(midx)
                    if f is not None:
                        result = self._flow(f, op, pos, midx, consts)
                        if result is not None and result[0] in ("t", "c"):
                            tainted = tainted or result[0] == "t" or result[2] is not None
                        elif f == F_SB_APPEND or f == F_FILE_NEW:
                            tainted = True  # may have stored a taint in the receiver
                    elif tainted:
                        result = self._propagate(op, pos, midx, consts)
                    else:
                        result = None
                    after_invoke = pos + 6
                elif k == K_STRING:
                    consts[data[pos + 1]] = ("s", data[pos + 2] | data[pos + 3] << 8)
                elif k == K_W4:
                    if op == 0x23:  # new-array vA, vB (size), type
                        b = data[pos + 1]
                        n = consts.get(b >> 4)
                        if (
                            n.__class__ is int
                            and 0 < n <= MAX_CONST_ARRAY
                            and (data[pos + 2] | data[pos + 3] << 8) == self.string_array_type
                        ):
                            consts[b & 0xF] = ("a", [None] * n)
                        else:
                            consts.pop(b & 0xF, None)
                    elif op == 0x54 and fieldvals:  # iget-object of a field stored earlier in the method
                        v = fieldvals.get(data[pos + 2] | data[pos + 3] << 8)
                        if v is None:
                            consts.pop(data[pos + 1] & 0xF, None)
                        else:
                            consts[data[pos + 1] & 0xF] = v
                    elif consts:
                        consts.pop(data[pos + 1] & 0xF, None)
                elif k == K_W8:
                    if op == 0x46 and consts:  # aget-object vAA, vBB[vCC]
                        arr = consts.get(data[pos + 2])
                        if arr.__class__ is tuple and arr[0] == "a":
                            i = consts.get(data[pos + 3])
                            elems = arr[1]
                            if i.__class__ is int and 0 <= i < len(elems):
                                v = elems[i]
                            else:  # variable index: the alternatives
                                v = "|".join(e for e in elems if e is not None) or None
                            if v is None:
                                consts.pop(data[pos + 1], None)
                            else:
                                consts[data[pos + 1]] = ("c", v, None)
                        else:
                            consts.pop(data[pos + 1], None)
                    elif consts:
                        consts.pop(data[pos + 1], None)
                elif k == K_CONST4:
                    b = data[pos + 1]
                    v = b >> 4
                    consts[b & 0xF] = v - 16 if v & 8 else v
                elif k == K_MRESULT_OBJ:
                    if pos == after_invoke and result is not None:
                        consts[data[pos + 1]] = result
                    elif consts:
                        consts.pop(data[pos + 1], None)
                elif k == K_MOVE4:
                    b = data[pos + 1]
                    v = consts.get(b >> 4)
                    if v is None:
                        consts.pop(b & 0xF, None)
                    else:
                        consts[b & 0xF] = v
                elif k == K_CONST16:
                    consts[data[pos + 1]] = _s16(data[pos + 2] | data[pos + 3] << 8)
                elif k == K_CONST32:
                    consts[data[pos + 1]] = _s32(_U32.unpack_from(data, pos + 2)[0])
                elif k == K_CONSTHI:
                    consts[data[pos + 1]] = _s32((data[pos + 2] | data[pos + 3] << 8) << 16)
                elif k == K_STRING_J:
                    consts[data[pos + 1]] = ("s", _U32.unpack_from(data, pos + 2)[0])
                elif k == K_WW4:
                    if consts:
                        a = data[pos + 1] & 0xF
                        consts.pop(a, None)
                        consts.pop(a + 1, None)
                elif k == K_WW8:
                    if consts:
                        a = data[pos + 1]
                        consts.pop(a, None)
                        consts.pop(a + 1, None)
                elif k == K_MOVE8:
                    a = data[pos + 1]
                    v = consts.get(data[pos + 2] | data[pos + 3] << 8)
                    if v is None:
                        consts.pop(a, None)
                    else:
                        consts[a] = v
                elif k == K_MOVE16:
                    a = data[pos + 2] | data[pos + 3] << 8
                    v = consts.get(data[pos + 4] | data[pos + 5] << 8)
                    if v is None:
                        consts.pop(a, None)
                    else:
                        consts[a] = v
                elif k == K_WW16:
                    a = data[pos + 2] | data[pos + 3] << 8
                    consts.pop(a, None)
                    consts.pop(a + 1, None)
                elif k == K_OTHER_INVOKE:
                    result = None
                    if op == 0x24 and (data[pos + 2] | data[pos + 3] << 8) == self.string_array_type:
                        b = data[pos + 1]  # filled-new-array {vC..}, [Ljava/lang/String;
                        regs = (
                            data[pos + 4] & 0xF,
                            data[pos + 4] >> 4,
                            data[pos + 5] & 0xF,
                            data[pos + 5] >> 4,
                            b & 0xF,
                        )
                        result = ("a", [self._text(consts.get(r)) for r in regs[: min(b >> 4, 5)]])
                    after_invoke = pos + 6
                elif k == K_FILL:
                    a = data[pos + 1]
                    payload = pos + 2 * _s32(_U32.unpack_from(data, pos + 2)[0])
                    consts.pop(a, None)
                    if start <= payload and payload + 8 <= end and data[payload] == 0 and data[payload + 1] == 3:
                        width = data[payload + 2] | data[payload + 3] << 8
                        size = _U32.unpack_from(data, payload + 4)[0]
                        if width == 1 and size <= MAX_CONST_BYTES and payload + 8 + size <= end:
                            consts[a] = ("b", data[payload + 8 : payload + 8 + size])
            elif op == 0x5B and tainted:  # iput-object: user/intent data kept in a field
                v = consts.get(data[pos + 1] & 0xF)
                if v.__class__ is tuple and v[0] in ("t", "c"):
                    fieldvals[data[pos + 2] | data[pos + 3] << 8] = v
            elif op == 0x4D and consts:  # aput-object vAA, vBB[vCC]
                arr = consts.get(data[pos + 2])
                if arr.__class__ is tuple and arr[0] == "a":
                    i = consts.get(data[pos + 3])
                    if i.__class__ is int and 0 <= i < len(arr[1]):
                        arr[1][i] = self._text(consts.get(data[pos + 1]))
            if op:
                pos += units[op] << 1
            else:
                pos += _payload_bytes(data, pos)
        return events

    def _args(self, op: int, pos: int, midx: int, consts: dict[int, Any]) -> tuple:
        """(argument values, their taints, receiver value, receiver taint) of a call."""
        regs = self._regs(op, pos)
        i = 0 if op in STATIC_INVOKES else 1
        recv = consts.get(regs[0]) if i and regs else None
        args: list[Any] = []
        taints: list[str | None] = []
        n = len(regs)
        for w in self._param_widths(midx):
            if w == 2 or i >= n:
                args.append(None)
                taints.append(None)
                i += 2 if w == 2 else 1
                continue
            v = consts.get(regs[i])
            args.append(None if w == 0 and not isinstance(v, tuple) else v)
            taints.append(self._taint(v))
            i += 1
        return args, taints, recv, self._taint(recv)

    # ---------------------------------------------------------------- data flow
    def _param_taint(self, code_off: int, midx: int) -> dict[int, Any] | None:
        """Registers of entry-point parameters that carry another app's data (the Uri of
        ContentProvider.openFile, the Intent of onReceive/onNewIntent, Cordova plugin args)."""
        sources = self.param_sources
        if not sources:
            return None
        name = sources.get(self.dex.method_name_idx[midx])
        if name is None:
            return None
        wanted = _PARAM_SOURCES[name]
        params = self._params(midx)
        if not any(p in wanted for p in params):
            return None
        data = self.data
        registers = data[code_off] | data[code_off + 1] << 8
        ins = data[code_off + 2] | data[code_off + 3] << 8
        width = sum(2 if p in ("J", "D") else 1 for p in params)
        r = registers - width  # parameters are the last registers; `this` (if any) before them
        if r < 0 or ins < width:
            return None
        out: dict[int, Any] = {}
        for p in params:
            if p in wanted:
                out[r] = ("t", _PARAM_SOURCE_NAMES[name])
            r += 2 if p in ("J", "D") else 1
        return out

    def _regs(self, op: int, pos: int) -> tuple[int, ...]:
        data = self.data
        if op <= 0x72:
            b = data[pos + 1]
            c, d = data[pos + 4] & 0xF, data[pos + 4] >> 4
            e, f = data[pos + 5] & 0xF, data[pos + 5] >> 4
            return (c, d, e, f, b & 0xF)[: min(b >> 4, 5)]
        first = data[pos + 4] | data[pos + 5] << 8
        return tuple(range(first, first + data[pos + 1]))

    def _text(self, v: Any) -> str | None:
        """A tracked value as constant text (None when unknown or user-controlled)."""
        if v.__class__ is tuple:
            if v[0] == "s":
                return self.dex.string(v[1])
            if v[0] == "c" and "*" not in v[1]:
                return v[1]
        return None

    @staticmethod
    def _taint(v: Any) -> str | None:
        if v.__class__ is tuple:
            tag = v[0]
            if tag == "t":
                return v[1]
            if tag == "c":
                return v[2]
            if tag == "sb" and v[2]:
                return v[2][0]
        return None

    def _piece(self, v: Any, ptype: str) -> tuple[str, str | None]:
        """(text, taint) of one concatenated part."""
        if v.__class__ is tuple:
            tag = v[0]
            if tag == "s":
                return self.dex.string(v[1]), None
            if tag == "c":
                return v[1], v[2]
            if tag == "t":
                return "*", v[1]
        elif v.__class__ is int and ptype in ("I", "J", "S", "B"):
            return str(v), None
        elif v.__class__ is int and ptype == "C" and 32 <= v < 127:
            return chr(v), None
        return "*", None

    def _params(self, midx: int) -> tuple[str, ...]:
        return self.dex.proto(self.dex.method_proto_idx[midx])[1]

    def _flow(self, f: int, op: int, pos: int, midx: int, consts: dict[int, Any]) -> Any:
        regs = self._regs(op, pos)
        if f == F_SOURCE:
            return ("t", self.source_names.get(midx, "?"))
        if f == F_EXTERNAL:
            return ("c", "/sdcard", None)
        if not regs:
            return None
        recv = consts.get(regs[0])
        if f == F_PASS:
            return recv if recv.__class__ is tuple and recv[0] != "sb" else None
        if f == F_SB_NEW:
            params = self._params(midx)
            parts: list[str] = []
            taints: list[str] = []
            if params and params[0] in ("Ljava/lang/String;", "Ljava/lang/CharSequence;") and len(regs) > 1:
                text, taint = self._piece(consts.get(regs[1]), params[0])
                parts.append(text)
                if taint:
                    taints.append(taint)
            consts[regs[0]] = ("sb", parts, taints)
            return None
        if f == F_SB_APPEND:
            if recv.__class__ is tuple and recv[0] == "sb":
                params = self._params(midx)
                if len(regs) > 1 and params and sum(len(x) for x in recv[1]) < MAX_FOLDED:
                    text, taint = self._piece(consts.get(regs[1]), params[0])
                    recv[1].append(text)
                    if taint and taint not in recv[2]:
                        recv[2].append(taint)
                return recv
            return None
        if f == F_SB_STRING:
            if recv.__class__ is tuple and recv[0] == "sb":
                return _fold(recv[1], recv[2][0] if recv[2] else None)
            return None
        if f == F_CONCAT:
            if len(regs) < 2:
                return None
            a, ta = self._piece(recv, "L")
            b, tb = self._piece(consts.get(regs[1]), "L")
            return _fold([a, b], ta or tb)
        if f == F_FILE_NEW:
            params = self._params(midx)
            pieces = [self._piece(consts.get(r), p) for r, p in zip(regs[1:], params)]
            if not pieces or params[-1] != "Ljava/lang/String;":
                consts.pop(regs[0], None)
                return None
            taint = next((tt for _x, tt in pieces if tt), None)
            value = _fold(["/".join(x for x, _t in pieces).replace("//", "/")], taint)
            if value is None:
                consts.pop(regs[0], None)
            else:
                consts[regs[0]] = value
            return None
        return None

    def _propagate(self, op: int, pos: int, midx: int, consts: dict[int, Any]) -> Any:
        """Any other invoke while user/intent data is around: its result (or, for a
        constructor, the new object) carries the data of its receiver or arguments."""
        regs = self._regs(op, pos)
        taint = None
        for r in regs:
            v = consts.get(r)
            if v.__class__ is tuple and (taint := self._taint(v)):
                break
        if taint is None:
            return None
        if regs and self.dex.method_name_idx[midx] == self.init_sidx:
            consts[regs[0]] = ("t", taint)
            return None
        return ("t", taint)

    # ---------------------------------------------------------------- overrides
    def find_overrides(self) -> None:
        prog = self.prog
        cat = prog.catalog
        dex = self.dex
        descs = prog.class_descs[self.di]
        bases = {o[0] for o in cat.overrides}
        for desc, roots in prog.relevant.items():
            hit_bases = roots & bases
            if not hit_bases:
                continue
            info = prog.defined.get(desc)
            if info is None or info[0] != self.di or desc.startswith(LIBRARY_DESCRIPTORS):
                continue
            ci = info[1]
            cdef_off = dex.class_data_offsets()[ci]
            if not cdef_off:
                continue
            cdata = dex.class_data(cdef_off)
            for midx, _access, code_off in cdata.direct_methods + cdata.virtual_methods:
                if not code_off:
                    continue
                name = dex.method_ref(midx)[1]  # range-checked
                for base_desc, mname, base_java, descriptor in cat.overrides:
                    if mname != name or base_desc not in hit_bases:
                        continue
                    if descriptor and dex.proto_descriptor(dex.method_proto_idx[midx]) != descriptor:
                        continue
                    item = dex.code_item(code_off)
                    empty, const, calls = self._summarise(item.insns_off, item.insns_off + 2 * item.insns_size)
                    lines = dex.positions(item.debug_info_off)
                    loc = Location(
                        self.name, descriptor_to_java(descs[ci]), self._method_label(midx), line_at(lines, 0)
                    )
                    prog.overrides.append(
                        Override(base_java, mname, descriptor_to_java(desc), empty, const, calls, loc)
                    )

    def _summarise(self, start: int, end: int) -> tuple[bool, int | None, list[str]]:
        """Classify a method body: only ``return-void`` (empty), ``const vX, N; return vX``
        (returns_const), and the watched APIs it calls. Kotlin parameter null checks
        (const-string + Intrinsics.check*) and nops are ignored."""
        data = self.data
        end = min(end, len(data) - 8)
        body: list[tuple[int, int]] = []
        calls: set[str] = set()
        pos = start
        while pos < end:
            op = data[pos]
            if op in INVOKE_OPS:
                midx = data[pos + 2] | data[pos + 3] << 8
                api = self.watched.get(midx)
                if api is not None:
                    calls.add(api)
                if midx not in self.intrinsics:
                    body.append((op, pos))
            elif op not in (0x00, 0x1A, 0x1B):
                body.append((op, pos))
            pos += (OPCODE_UNITS[op] << 1) if op else _payload_bytes(data, pos)
        empty = len(body) == 1 and body[0][0] == 0x0E
        const = None
        if len(body) == 2 and body[1][0] in (0x0F, 0x11):
            (op, p), (_rop, rp) = body
            ret_reg = data[rp + 1]
            if op == 0x12 and data[p + 1] & 0xF == ret_reg:
                v = data[p + 1] >> 4
                const = v - 16 if v & 8 else v
            elif op == 0x13 and data[p + 1] == ret_reg:
                const = _s16(data[p + 2] | data[p + 3] << 8)
            elif op == 0x14 and data[p + 1] == ret_reg:
                const = _s32(_U32.unpack_from(data, p + 2)[0])
        return empty, const, sorted(calls)


def _payload_bytes(data: bytes, pos: int) -> int:
    """Size in bytes of a nop or payload pseudo-instruction at ``pos`` (opcode 0x00)."""
    ident = data[pos + 1]
    if ident == 0:
        return 2
    if ident == 1:  # packed-switch-payload
        return (4 + (data[pos + 2] | data[pos + 3] << 8) * 2) << 1
    if ident == 2:  # sparse-switch-payload
        return (2 + (data[pos + 2] | data[pos + 3] << 8) * 4) << 1
    if ident == 3:  # fill-array-data-payload
        width = data[pos + 2] | data[pos + 3] << 8
        size = _U32.unpack_from(data, pos + 4)[0]
        return (4 + (size * width + 1) // 2) << 1
    return 2


# ======================================================================================
# Entry point
# ======================================================================================
def _simple_name(java_name: str) -> str | None:
    """Simple name used by the obfuscation ratio; None for classes that never carry a
    meaningful name (anonymous/synthetic classes, R and BuildConfig)."""
    simple = java_name.rsplit(".", 1)[-1]
    outer = simple.split("$", 1)[0]
    if outer in ("R", "BuildConfig") or "$$" in simple or "-$" in simple:
        return None
    inner = simple.rsplit("$", 1)[-1]
    if not inner or inner.isdigit():
        return None
    return inner


def code_facts(dex_files: list[tuple[str, bytes]], limits: Limits = DEFAULT_LIMITS) -> tuple[CodeFacts, StringFacts]:
    """Analyse the DEX files of a package (``[(name, bytes)]`` in Android load order)."""
    catalog = load_catalog()
    facts = CodeFacts()
    dexes: list[DexFile] = []
    for name, data in dex_files:
        if len(data) > limits.max_dex_bytes:
            raise LimitExceeded("dex_too_large", f"{name} is {len(data)} bytes (limit {limits.max_dex_bytes})")
        try:
            dexes.append(DexFile(data, name))
        except AnalysisError as exc:
            facts.errors.append(f"{exc.code}: {exc.message}")
    prog = _Program(catalog, [])
    loaded: list[DexFile] = []
    for dex in dexes:
        try:
            prog.load_classes(len(loaded), dex)
        except (AnalysisError, IndexError, ValueError, struct.error) as exc:
            facts.errors.append(_describe(dex.name, exc))
            continue
        loaded.append(dex)
    prog.dexes = loaded
    prog.compute_relevant()

    for di, dex in enumerate(loaded):
        scan = _DexScan(prog, di, dex)
        try:
            scan.find_watched_methods()
            scan.find_watched_fields()
            scan.collect_strings()
            scan.find_secret_fields()
            scan.resolve(scan.scan())
            scan.find_overrides()
        except (AnalysisError, IndexError, ValueError, KeyError, struct.error, RecursionError) as exc:
            facts.errors.append(_describe(dex.name, exc))

    _mark_instantiated(prog, loaded)

    # ------------------------------------------------------------ assemble
    facts.dex = [DexSummary(d.name, d.class_defs_size, d.method_ids_size, d.string_ids_size, d.version) for d in loaded]
    facts.classes = len(prog.defined)
    facts.methods = sum(d.method_ids_size for d in loaded)
    java_names = [descriptor_to_java(d) for d in prog.defined]
    facts.class_names = frozenset(java_names)
    facts.packages = sorted({n.rsplit(".", 1)[0] for n in java_names if "." in n})
    app = [s for n in java_names if not n.startswith(FRAMEWORK_PREFIXES) and (s := _simple_name(n)) is not None]
    if app:
        facts.short_class_ratio = round(sum(1 for s in app if len(s) <= 2) / len(app), 4)
    facts.obfuscated = len(app) >= OBFUSCATION_MIN_CLASSES and facts.short_class_ratio >= OBFUSCATION_THRESHOLD
    facts.calls = sorted(prog.calls, key=lambda c: (c.api, _loc_key(c.location), c.pc))
    facts.field_reads = sorted(prog.field_reads, key=lambda f: (f.field, _loc_key(f.location)))
    facts.overrides = sorted(prog.overrides, key=lambda o: (o.base, o.method, o.cls, _loc_key(o.location)))

    col = prog.strings
    sfacts = StringFacts()
    for obj in [*col.urls.values(), *col.ips.values(), *col.emails.values(), *col.secrets.values()]:
        obj.locations.sort(key=_loc_key)
    sfacts.urls = sorted(col.urls.values(), key=lambda u: u.value)
    sfacts.ips = sorted((i for i in col.ips.values() if i.in_url or i.locations), key=lambda i: i.value)
    sfacts.emails = sorted(col.emails.values(), key=lambda e: e.value)
    sfacts.domains = sorted(col.domains)
    sfacts.secrets = sorted(col.secrets.values(), key=lambda s: (s.kind, s.value))
    return facts, sfacts


def _mark_instantiated(prog: _Program, dexes: list[DexFile]) -> None:
    """``Override.instantiated``: some code creates the class (``new-instance``) or takes its
    ``const-class`` (reflection, Intent targets), other than the class's own constructors."""
    classes = {java_to_descriptor(o.cls) for o in prog.overrides}
    if not classes:
        return
    seen: set[str] = set()
    for di, dex in enumerate(dexes):
        try:
            types = dex.type_table()
            ids = {types[d]: d for d in classes if d in types and d not in seen}
            ids = {i: d for i, d in ids.items() if i < 0x10000}
            if not ids:
                continue
            data = dex.data
            cs, ce = dex.section_range(TYPE_CODE_ITEM)
            rx = re.compile(b"[\x22\x1c][\x00-\xff]" + _DexScan._tail(ids), re.DOTALL)
            descs = prog.class_descs[di]
            init = dex.find_string("<init>")
            for m in rx.finditer(data, cs, ce):
                pos = m.start()
                desc = ids.get(data[pos + 2] | data[pos + 3] << 8)
                if pos & 1 or desc is None or desc in seen:
                    continue
                hit = dex.method_at(pos)
                if hit is None:
                    continue
                ci, midx = hit[2]
                if ci < len(descs) and descs[ci] == desc and dex.method_name_idx[midx] == init:
                    continue  # a constructor of the class itself
                seen.add(desc)
        except (AnalysisError, IndexError, ValueError, struct.error):
            seen.update(classes)  # unreadable: do not claim the class is unused
    for o in prog.overrides:
        o.instantiated = java_to_descriptor(o.cls) in seen


def _describe(name: str, exc: BaseException) -> str:
    if isinstance(exc, AnalysisError):
        return f"{exc.code}: {exc.message}"
    return f"corrupt_dex: {name}: {type(exc).__name__}: {exc}"
