"""Third-party SDK detection from the indicator document.

The signature database (``data/sdks.yaml``) is versioned; its version is part of every
result. Each detection lists its evidence and says how strong it is:

* ``package``            classes of the SDK are defined in the package's DEX files
* ``manifest_component`` the manifest declares an SDK component or application class
* ``native_lib``         a native library (or asset) with the SDK's file name is bundled
* ``domain``             only a host name of the SDK appears among the package's strings

A detection is ``confirmed`` when it has evidence of the first three kinds. A domain alone
is weak: code that merely mentions an endpoint (an OpenStreetMap tile source listing
``tiles.mapbox.com``) is not the SDK, which is exactly where peer tools disagree.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from medrisk.datafiles import load_yaml

DATA = Path(__file__).parent / "data" / "sdks.yaml"
MAX_EVIDENCE = 5  # per kind and SDK; the report shows the strongest first

KIND_ORDER = {"package": 0, "manifest_component": 1, "native_lib": 2, "domain": 3}


@dataclass(frozen=True)
class Sdk:
    id: str
    name: str
    name_en: str
    vendor: str
    category: str
    packages: tuple[str, ...]
    exclude: tuple[str, ...]
    native_libs: tuple[str, ...]
    domains: tuple[str, ...]
    aliases: tuple[str, ...]
    collects: tuple[str, ...]
    confidence: str


@dataclass(frozen=True, eq=False)  # hashed by identity: loaded once and cached
class Database:
    version: str
    categories: dict[str, dict[str, str]]
    sdks: tuple[Sdk, ...]

    def by_id(self) -> dict[str, Sdk]:
        return {s.id: s for s in self.sdks}


@lru_cache(maxsize=4)
def load_database(path: Path = DATA) -> Database:
    raw = load_yaml(Path(path).read_text(encoding="utf-8"))
    sdks = []
    for e in raw["sdks"]:
        sdks.append(
            Sdk(
                id=e["id"],
                name=e["name"],
                name_en=e.get("name_en") or e["name"],
                vendor=e.get("vendor", ""),
                category=e["category"],
                packages=tuple(e.get("packages") or ()),
                exclude=tuple(e.get("exclude") or ()),
                native_libs=tuple(e.get("native_libs") or ()),
                domains=tuple(d.lower() for d in e.get("domains") or ()),
                aliases=tuple(str(a) for a in e.get("aliases") or ()),
                collects=tuple(e.get("collects") or ()),
                confidence=e.get("confidence", "high"),
            )
        )
    return Database(version=str(raw["version"]), categories=raw["categories"], sdks=tuple(sdks))


class _PrefixIndex:
    """Package/class-name prefix -> SDK ids, matched on ``.`` boundaries."""

    def __init__(self, sdks: tuple[Sdk, ...] | list[Sdk]) -> None:
        self.include: dict[str, list[str]] = {}
        self.exclude: dict[str, set[str]] = {}
        for s in sdks:
            for p in s.packages:
                self.include.setdefault(p, []).append(s.id)
            for p in s.exclude:
                self.exclude.setdefault(p, set()).add(s.id)

    def match(self, name: str) -> list[tuple[str, str]]:
        """(sdk id, matched prefix) for a package or class name."""
        name = name.split("$", 1)[0]
        parts = name.split(".")
        hits: list[tuple[str, str]] = []
        excluded: set[str] = set()
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            excluded |= self.exclude.get(prefix, set())
            for sid in self.include.get(prefix, ()):
                hits.append((sid, prefix))
        return [(sid, p) for sid, p in hits if sid not in excluded]


@lru_cache(maxsize=4)
def _index(db: Database) -> _PrefixIndex:
    return _PrefixIndex(db.sdks)


def _hosts(doc: dict[str, Any]) -> list[str]:
    strings = doc.get("strings") or {}
    hosts = {str(d).lower() for d in strings.get("domains") or []}
    hosts |= {str(u.get("host") or "").lower() for u in strings.get("urls") or [] if isinstance(u, dict)}
    return sorted(h for h in hosts if h)


def _file_names(doc: dict[str, Any]) -> list[str]:
    container = doc.get("container") or {}
    paths = set(container.get("native_libs") or [])
    paths |= {a.get("path", "") for a in container.get("assets") or [] if isinstance(a, dict)}
    paths |= {lib.get("path", "") for lib in (doc.get("native") or {}).get("libraries") or [] if isinstance(lib, dict)}
    return sorted(p for p in paths if p)


def detect_sdks(doc: dict[str, Any], db: Database | None = None) -> dict[str, Any]:
    """The ``sdks`` root of the indicator document."""
    db = db or load_database()
    index = _index(db)
    found: dict[str, dict[str, list[str]]] = {}

    def add(sid: str, kind: str, value: str) -> None:
        values = found.setdefault(sid, {}).setdefault(kind, [])
        if value not in values:
            values.append(value)

    code = doc.get("code") or {}
    for pkg in sorted(code.get("packages") or []):
        for sid, _prefix in index.match(pkg):
            add(sid, "package", pkg)

    manifest = doc.get("manifest") or {}
    names = [c.get("name", "") for c in manifest.get("components") or [] if isinstance(c, dict)]
    if manifest.get("application_class"):
        names.append(manifest["application_class"])
    for name in sorted(set(names)):
        for sid, _prefix in index.match(name):
            add(sid, "manifest_component", name)

    files = _file_names(doc)
    hosts = _hosts(doc)
    for s in db.sdks:
        for path in files:
            base = path.rsplit("/", 1)[-1]
            if any(fnmatch.fnmatchcase(base, pat) for pat in s.native_libs):
                add(s.id, "native_lib", path)
        for host in hosts:
            if any(host == d or host.endswith("." + d) for d in s.domains):
                add(s.id, "domain", host)

    by_id = db.by_id()
    detected = []
    for sid in sorted(found):
        s = by_id[sid]
        evidence = []
        for kind in sorted(found[sid], key=KIND_ORDER.__getitem__):
            evidence += [{"kind": kind, "value": v} for v in _topmost(found[sid][kind], kind)[:MAX_EVIDENCE]]
        detected.append(
            {
                "id": s.id,
                "name": s.name,
                "name_en": s.name_en,
                "vendor": s.vendor,
                "category": s.category,
                "confirmed": any(e["kind"] != "domain" for e in evidence),
                "evidence": evidence,
                "collects": list(s.collects),
            }
        )
    return {"database_version": db.version, "detected": detected}


def _topmost(values: list[str], kind: str) -> list[str]:
    """For packages keep only the outermost matched ones (com.umeng.analytics, not its sub-packages)."""
    if kind != "package":
        return sorted(values)
    out: list[str] = []
    for v in sorted(values, key=lambda x: (x.count("."), x)):
        if not any(v.startswith(o + ".") for o in out):
            out.append(v)
    return sorted(out)


def sdk_of_class(class_name: str | None, detected_ids: set[str], db: Database | None = None) -> str | None:
    """The detected SDK whose package holds ``class_name`` (for attributing API calls)."""
    if not class_name or not detected_ids:
        return None
    db = db or load_database()
    hits = [(sid, p) for sid, p in _index(db).match(class_name) if sid in detected_ids]
    if not hits:
        return None
    return max(hits, key=lambda h: len(h[1]))[0]
