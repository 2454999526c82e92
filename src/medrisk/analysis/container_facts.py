"""Container facts: what the package holds, from the reader's ``Container`` (``container.py``).

DEX files in Android's load order, native libraries by ABI, split APKs and nested packages,
assets worth flagging (keystores, certificates, configuration files such as
``google-services.json``), and the reader's anomalies, as the ``container`` section of the
indicator document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .container import SIG_LOCAL, Anomaly, Container, Entry

_ASSET_EXT = {
    "certificate": (".cer", ".crt", ".pem", ".der", ".p7b", ".p7c"),
    "keystore": (".jks", ".bks", ".keystore", ".p12", ".pfx", ".jceks", ".ks"),
    "apk": (".apk", ".apks", ".xapk", ".apkm"),
    "dex": (".dex", ".odex"),
    "jar": (".jar", ".aar"),
    "database": (".db", ".sqlite", ".sqlite3", ".db3", ".realm"),
    "config": (".properties", ".conf", ".cfg", ".ini", ".yaml", ".yml", ".toml", ".env", ".plist"),
    "script": (".js", ".mjs", ".sh", ".py", ".lua", ".bat", ".ps1"),
    "html": (".html", ".htm", ".xhtml"),
}
_CONFIG_NAMES = ("google-services.json", "agconnect-services.json", "firebase.json")
# Extensions never sniffed for magic (common resources, fast path).
_BENIGN_EXT = frozenset(
    ".png .jpg .jpeg .gif .webp .bmp .svg .xml .ttf .otf .woff .woff2 .mp3 .mp4 .ogg .wav .m4a .txt .json "
    ".css .kotlin_module .kotlin_builtins .version .properties .so .arsc .md .csv .proto .map .flat "
    ".gz .zip .tflite .pb .mf .sf .rsa .dsa .ec".split()
)
_SPLIT_APK = re.compile(r"(?:^|/)split_(config\.[^/]+|[^/]+)\.apk$", re.IGNORECASE)
_LIB = re.compile(r"^lib/([^/]+)/[^/]+\.so$")
_DEX = re.compile(r"^classes(\d*)\.dex$")


@dataclass
class Asset:
    path: str
    size: int
    kind: str

    def to_dict(self) -> dict:
        return {"path": self.path, "size": self.size, "kind": self.kind}


@dataclass
class ContainerFacts:
    entries: int
    dex_files: list[str] = field(default_factory=list)
    native_libs: list[str] = field(default_factory=list)
    abis: list[str] = field(default_factory=list)
    nested_apks: list[str] = field(default_factory=list)
    is_split: bool = False  # filled by the manifest stage (split="..." attribute)
    split_name: str | None = None
    anomalies: list[Anomaly] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "entries": self.entries,
            "dex_files": list(self.dex_files),
            "native_libs": list(self.native_libs),
            "abis": list(self.abis),
            "nested_apks": list(self.nested_apks),
            "is_split": self.is_split,
            "split_name": self.split_name,
            "anomalies": [a.to_dict() for a in self.anomalies],
            "assets": [a.to_dict() for a in self.assets],
        }


def dex_load_order(names) -> list[str]:
    """classes.dex, classes2.dex, ... as ART loads them: stop at the first gap."""
    present = set(names)
    out: list[str] = []
    if "classes.dex" not in present:
        return out
    out.append("classes.dex")
    i = 2
    while f"classes{i}.dex" in present and i <= len(present) + 1:
        out.append(f"classes{i}.dex")
        i += 1
    return out


def split_config_name(path: str) -> str | None:
    """``config.arm64_v8a`` for ``split_config.arm64_v8a.apk`` (bundle member), else None."""
    m = _SPLIT_APK.search(path)
    return m.group(1) if m else None


def is_bundle(c: Container) -> bool:
    """An .apks/.xapk/.apkm bundle: no root manifest but nested APKs."""
    return not c.has("AndroidManifest.xml") and any(n.lower().endswith(".apk") for n in c.names())


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"dex\n"):
        return "dex"
    if head.startswith(SIG_LOCAL):
        return "jar"
    if head.startswith(b"SQLite format 3\x00"):
        return "database"
    if head.startswith((b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce")):
        return "keystore"
    if head.startswith(b"-----BEGIN CERTIFICATE"):
        return "certificate"
    if head.startswith(b"-----BEGIN") and b"PRIVATE KEY" in head:
        return "keystore"
    low = head.lstrip().lower()
    if low.startswith((b"<!doctype html", b"<html")):
        return "html"
    if head.startswith(b"#!"):
        return "script"
    return None


def _asset_kind(c: Container, e: Entry, load_order: set[str]) -> str | None:
    name = e.name
    low = name.lower()
    if e.is_dir or low.startswith("meta-inf/") or name in load_order:
        return None
    base = low.rsplit("/", 1)[-1]
    if base in _CONFIG_NAMES:
        return "config"
    dot = base.rfind(".")
    ext = base[dot:] if dot > 0 else ""
    for kind, exts in _ASSET_EXT.items():
        if ext in exts:
            if kind == "dex" and _DEX.match(name):
                return "dex"  # classesN.dex outside the load order (gap) is notable
            return kind
    if ext in _BENIGN_EXT or low.startswith("res/") and not low.startswith("res/raw/"):
        return None
    if low.startswith(("lib/", "kotlin/", "okhttp3/", "org/", "com/", "javax/")):
        return None
    return _sniff(c.peek(e, 24))


def container_facts(c: Container) -> ContainerFacts:
    names = c.names()
    dex = dex_load_order(names)
    dex_set = set(dex)
    libs: list[str] = []
    abis: set[str] = set()
    for nm in names:
        m = _LIB.match(nm)
        if m:
            libs.append(nm)
            abis.add(m.group(1))
    nested = sorted(nm for nm in names if nm.lower().endswith(".apk"))
    assets: list[Asset] = []
    for nm in names:
        e = c.entry(nm)
        assert e is not None
        kind = _asset_kind(c, e, dex_set)
        if kind:
            assets.append(Asset(nm, e.size, kind))
    return ContainerFacts(
        entries=len(c.entries),
        dex_files=dex,
        native_libs=sorted(libs),
        abis=sorted(abis),
        nested_apks=nested,
        anomalies=sorted(c.anomalies, key=lambda a: (a.kind, a.entry or "", a.detail)),
        assets=sorted(assets, key=lambda a: a.path),
    )
