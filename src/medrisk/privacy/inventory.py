"""Personal-information inventory and the necessity check against the declared app type.

The inventory lists what the app *can* collect, per personal-information type
(``data/personal_info.yaml``), with every piece of evidence:

* ``permission`` a requested Android permission that gives access to it
* ``api``        a call site (or static-field read) in the code that reads it; ``sdk`` names the
                 detected third-party SDK whose package holds the calling class
* ``manifest``   a manifest declaration that delivers it (an SMS receiver, a heart-rate feature)
* ``sdk``        a confirmed SDK that is known to collect it
* ``app_type``   the declared app type processes it by its nature (问诊挂号类: condition
                 descriptions), so it is in scope although no code reveals user-entered data

The necessity check compares the inventory with the app type's necessary information from
《常见类型移动互联网应用程序必要个人信息范围规定》 (``data/app_types.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from medrisk.datafiles import load_yaml
from medrisk.privacy.sdks import Database, load_database, sdk_of_class

DATA = Path(__file__).parent / "data"
MAX_API_EVIDENCE = 20  # per item; distinct (api, class, method) call sites

SOURCE_ORDER = {"permission": 0, "api": 1, "manifest": 2, "sdk": 3, "app_type": 4}
SOURCE_TEXT = {
    "permission": {"zh": "权限", "en": "permission"},
    "api": {"zh": "代码调用", "en": "code"},
    "manifest": {"zh": "清单声明", "en": "manifest"},
    "sdk": {"zh": "第三方 SDK", "en": "third-party SDK"},
    "app_type": {"zh": "应用类型", "en": "app type"},
}
# Non-resettable device identifiers plus ANDROID_ID: what PRIV-012 watches.
DEVICE_ID_ITEMS = ("imei", "imsi", "serial_number", "mac_address", "android_id")


@dataclass(frozen=True)
class InfoType:
    id: str
    zh: str
    en: str
    sensitive: bool
    basis: str
    non_resettable: bool = False
    permissions: tuple[str, ...] = ()
    permission_prefixes: tuple[str, ...] = ()
    apis: tuple[str, ...] = ()
    api_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fields: tuple[str, ...] = ()
    intent_actions: tuple[str, ...] = ()
    features: tuple[str, ...] = ()

    def name(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


@dataclass(frozen=True, eq=False)
class Catalog:
    version: str
    items: tuple[InfoType, ...]

    def by_id(self) -> dict[str, InfoType]:
        return {i.id: i for i in self.items}


@dataclass(frozen=True)
class AppType:
    id: str
    number: int
    en: str
    aliases: tuple[str, ...]
    basic: str
    necessary: tuple[str, ...]
    allows: tuple[str, ...]
    processes: tuple[str, ...]
    health: bool
    confidence: str
    note: str = ""


@dataclass(frozen=True, eq=False)
class AppTypes:
    version: str
    source: dict[str, str]
    types: tuple[AppType, ...]


@lru_cache(maxsize=2)
def load_catalog(path: Path = DATA / "personal_info.yaml") -> Catalog:
    raw = load_yaml(Path(path).read_text(encoding="utf-8"))
    items = []
    for e in raw["items"]:
        items.append(
            InfoType(
                id=e["id"],
                zh=e["name"]["zh"],
                en=e["name"]["en"],
                sensitive=bool(e["sensitive"]),
                basis=e.get("basis", ""),
                non_resettable=bool(e.get("non_resettable", False)),
                permissions=tuple(e.get("permissions") or ()),
                permission_prefixes=tuple(e.get("permission_prefixes") or ()),
                apis=tuple(e.get("apis") or ()),
                api_args={k: tuple(v) for k, v in (e.get("api_args") or {}).items()},
                fields=tuple(e.get("fields") or ()),
                intent_actions=tuple(e.get("intent_actions") or ()),
                features=tuple(e.get("features") or ()),
            )
        )
    return Catalog(version=str(raw["version"]), items=tuple(items))


@lru_cache(maxsize=2)
def load_app_types(path: Path = DATA / "app_types.yaml") -> AppTypes:
    raw = load_yaml(Path(path).read_text(encoding="utf-8"))
    types = tuple(
        AppType(
            id=t["id"],
            number=int(t["number"]),
            en=t["en"],
            aliases=tuple(str(a) for a in t.get("aliases") or ()),
            basic=t.get("basic", ""),
            necessary=tuple(t.get("necessary") or ()),
            allows=tuple(t.get("allows") or ()),
            processes=tuple(t.get("processes") or ()),
            health=bool(t.get("health", False)),
            confidence=str(t.get("confidence", "MEM")),
            note=t.get("note", ""),
        )
        for t in raw["types"]
    )
    return AppTypes(version=str(raw["version"]), source=raw["source"], types=types)


def resolve_app_type(name: str | None) -> AppType | None:
    """The app type for ``--app-type``: its Chinese name (with or without 类), number or alias.

    Raises ValueError naming the valid types when the name is unknown.
    """
    if name is None or not str(name).strip():
        return None
    key = str(name).strip().lower()
    for t in load_app_types().types:
        names = {
            t.id.lower(),
            t.id.removesuffix("类").lower(),
            str(t.number),
            t.en.lower(),
            *(a.lower() for a in t.aliases),
        }
        if key in names:
            return t
    valid = "、".join(t.id for t in load_app_types().types)
    raise ValueError(f"unknown app type '{name}'; valid types (必要个人信息范围规定 第五条): {valid}")


def build_inventory(
    doc: dict[str, Any],
    detected: list[dict[str, Any]],
    app_type: AppType | None = None,
    db: Database | None = None,
    catalog: Catalog | None = None,
) -> list[dict[str, Any]]:
    """The personal-information inventory: one entry per type the app can collect."""
    catalog = catalog or load_catalog()
    db = db or load_database()
    evidence: dict[str, list[dict[str, Any]]] = {i.id: [] for i in catalog.items}
    confirmed = [s for s in detected if s.get("confirmed", True)]
    sdk_ids = {s["id"] for s in confirmed}

    def add(item: str, source: str, value: str, location: dict[str, Any] | None = None, sdk: str | None = None):
        ev = {"source": source, "value": value, "location": location, "sdk": sdk}
        if ev not in evidence[item]:
            evidence[item].append(ev)

    manifest = doc.get("manifest") or {}
    perms = [p.get("name", "") for p in manifest.get("permissions") or [] if isinstance(p, dict)]
    for item in catalog.items:
        for perm in perms:
            if perm in item.permissions or any(perm.startswith(p) for p in item.permission_prefixes):
                add(item.id, "permission", perm)

    code = doc.get("code") or {}
    by_api: dict[str, list[InfoType]] = {}
    for item in catalog.items:
        for api in item.apis:
            by_api.setdefault(api, []).append(item)
    api_counts: dict[str, int] = {}
    for call in code.get("calls") or []:
        api = call.get("api", "")
        for item in by_api.get(api, ()):
            wanted = item.api_args.get(api)
            if wanted and not _args_match(call.get("args") or [], wanted):
                continue
            if api_counts.get(item.id, 0) >= MAX_API_EVIDENCE:
                continue
            loc = call.get("location")
            before = len(evidence[item.id])
            add(item.id, "api", api, loc, sdk_of_class((loc or {}).get("class"), sdk_ids, db))
            api_counts[item.id] = api_counts.get(item.id, 0) + (len(evidence[item.id]) - before)
    for read in code.get("field_reads") or []:
        for item in catalog.items:
            if read.get("field") in item.fields and api_counts.get(item.id, 0) < MAX_API_EVIDENCE:
                loc = read.get("location")
                add(item.id, "api", read["field"], loc, sdk_of_class((loc or {}).get("class"), sdk_ids, db))
                api_counts[item.id] = api_counts.get(item.id, 0) + 1

    features = set(manifest.get("uses_features") or [])
    for item in catalog.items:
        for feat in item.features:
            if feat in features:
                add(item.id, "manifest", f"uses-feature {feat}")
        if not item.intent_actions:
            continue
        for comp in manifest.get("components") or []:
            for f in comp.get("intent_filters") or []:
                for action in f.get("actions") or []:
                    if action in item.intent_actions:
                        add(item.id, "manifest", f"{comp.get('name', '')} ({action})", comp.get("location"))

    for s in confirmed:
        for info in s.get("collects") or []:
            if info in evidence:
                add(info, "sdk", s.get("name") or s["id"], None, s["id"])

    if app_type is not None:
        for info in app_type.processes:
            if info in evidence:
                add(info, "app_type", app_type.id)

    out = []
    for item in catalog.items:
        ev = sorted(evidence[item.id], key=lambda e: SOURCE_ORDER[e["source"]])
        if not ev:
            continue
        out.append(
            {
                "id": item.id,
                "name": item.name(),
                "sensitive": item.sensitive,
                "non_resettable": item.non_resettable,
                "sources": sorted({e["source"] for e in ev}, key=SOURCE_ORDER.__getitem__),
                "evidence": ev,
            }
        )
    return out


def _args_match(args: list[Any], wanted: tuple[str, ...]) -> bool:
    for a in args:
        if not isinstance(a, str):
            continue
        for w in wanted:
            if a == w or (w.startswith("content://") and a.startswith(w)):
                return True
    return False


def flatten(inventory: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per piece of evidence (``privacy.evidence``), for rules that report locations."""
    return [{"item": i["id"], "sensitive": i["sensitive"], **e} for i in inventory for e in i["evidence"]]


def necessity(inventory: list[dict[str, Any]], app_type: AppType | None) -> list[dict[str, Any]]:
    """Items the app can collect beyond what its declared type needs (第四条: must stay optional)."""
    if app_type is None:
        return []
    out = []
    for item in inventory:
        sources = [s for s in item["sources"] if s != "app_type"]
        if item["id"] in app_type.allows or not sources:
            continue
        how_zh = "、".join(SOURCE_TEXT[s]["zh"] for s in sources)
        how_en = ", ".join(SOURCE_TEXT[s]["en"] for s in sources)
        out.append(
            {
                "id": item["id"],
                "name": item["name"],
                "sensitive": item["sensitive"],
                "sources": sources,
                "reason": {
                    "zh": f"可经{how_zh}收集，不属于{app_type.id}的必要个人信息，只能作为可选功能在用户同意后收集",
                    "en": f"collectable via {how_en}; not needed by a {app_type.id} ({app_type.en}) app, "
                    "so only as an optional feature with consent",
                },
            }
        )
    return out
