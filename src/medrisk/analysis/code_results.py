"""Result types of the code analysis (``to_dict()`` gives the JSON of docs/indicators.md)
and the reporting limits and framework prefixes they are built with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
