"""Facts from ``AndroidManifest.xml`` (the ``manifest`` section of docs/indicators.md).

Attributes are read the way the Android package parser reads them: framework
attributes by resource id (see :mod:`medrisk.analysis.axml`), resource references
(``android:debuggable="@bool/x"``) resolved through ``resources.arsc`` (default
configuration), and Android's defaults applied where the manifest is silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from medrisk.analysis.arsc import BAG, ResourceTable
from medrisk.analysis.axml import ANDROID_NS, Attribute, Document, Element, Ref, parse_axml
from medrisk.analysis.errors import AnalysisError

MANIFEST_FILE = "AndroidManifest.xml"
COMPONENT_TAGS = ("activity", "activity-alias", "service", "receiver", "provider")
USES_PERMISSION_TAGS = ("uses-permission", "uses-permission-sdk-23", "uses-permission-sdk-m")
LAUNCH_MODES = ("standard", "singleTop", "singleTask", "singleInstance", "singleInstancePerTask")
PROTECTION_LEVELS = ("normal", "dangerous", "signature", "signatureOrSystem", "internal")
ACTION_VIEW = "android.intent.action.VIEW"
CATEGORY_BROWSABLE = "android.intent.category.BROWSABLE"
MAX_DEEP_LINKS_PER_FILTER = 1000

# ---------------------------------------------------------------------------
# permission protection levels


@lru_cache(maxsize=1)
def _permission_table() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    from medrisk.datafiles import load_yaml  # parsed once, then from the cache

    raw = load_yaml((Path(__file__).parent / "data" / "permissions.yaml").read_text("utf-8")) or {}
    exact: dict[str, str] = {}
    for level in PROTECTION_LEVELS:
        for name in raw.get(level) or ():
            exact[str(name)] = level
    prefixes = tuple(
        sorted(((str(p), str(lv)) for p, lv in (raw.get("prefixes") or {}).items()), key=lambda x: -len(x[0]))
    )
    return exact, prefixes


def framework_protection_level(name: str) -> str:
    """Protection level of a framework/platform permission, ``unknown`` if not known."""
    exact, prefixes = _permission_table()
    level = exact.get(name)
    if level is not None:
        return level
    for prefix, lv in prefixes:
        if name.startswith(prefix):
            return lv
    return "unknown"


def protection_level_name(value: object) -> str:
    """Map an ``android:protectionLevel`` value (flags int or ``a|b`` string) to a level."""
    if isinstance(value, bool) or value is None:
        return "normal"
    if isinstance(value, int):
        base = value & 0xF
        if base == 2 and value & 0x10:  # signature + privileged (formerly "system")
            return "signatureOrSystem"
        return PROTECTION_LEVELS[base] if base < len(PROTECTION_LEVELS) else "unknown"
    if isinstance(value, str):
        tokens = [t.strip() for t in value.split("|") if t.strip()]
        if not tokens:
            return "normal"
        if "signatureOrSystem" in tokens or ("signature" in tokens and "privileged" in tokens):
            return "signatureOrSystem"
        for t in tokens:
            if t in PROTECTION_LEVELS:
                return t
        try:
            return protection_level_name(int(tokens[0], 0))
        except ValueError:
            return "unknown"
    return "unknown"


# ---------------------------------------------------------------------------
# facts


@dataclass(slots=True)
class Permission:
    name: str
    protection_level: str
    max_sdk: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "protection_level": self.protection_level, "max_sdk": self.max_sdk}


@dataclass(slots=True)
class DefinedPermission:
    name: str
    protection_level: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "protection_level": self.protection_level}


@dataclass(slots=True)
class IntentData:
    scheme: str | None = None
    host: str | None = None
    port: str | None = None
    path: str | None = None
    path_prefix: str | None = None
    path_pattern: str | None = None
    mime_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "host": self.host,
            "port": self.port,
            "path": self.path,
            "path_prefix": self.path_prefix,
            "path_pattern": self.path_pattern,
            "mime_type": self.mime_type,
        }


@dataclass(slots=True)
class IntentFilter:
    actions: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    data: list[IntentData] = field(default_factory=list)
    auto_verify: bool = False
    priority: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "actions": list(self.actions),
            "categories": list(self.categories),
            "data": [d.to_dict() for d in self.data],
            "auto_verify": self.auto_verify,
            "priority": self.priority,
        }


@dataclass(slots=True)
class Component:
    type: str
    name: str
    exported: bool
    exported_explicit: bool
    enabled: bool = True
    permission: str | None = None
    read_permission: str | None = None
    write_permission: str | None = None
    permission_level: str | None = None
    authorities: list[str] = field(default_factory=list)
    grant_uri_permissions: bool = False
    launch_mode: str | None = None
    task_affinity: str | None = None
    intent_filters: list[IntentFilter] = field(default_factory=list)
    line: int | None = None
    target_activity: str | None = None  # activity-alias only; not part of the JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "exported": self.exported,
            "exported_explicit": self.exported_explicit,
            "enabled": self.enabled,
            "permission": self.permission,
            "read_permission": self.read_permission,
            "write_permission": self.write_permission,
            "permission_level": self.permission_level,
            "authorities": list(self.authorities),
            "grant_uri_permissions": self.grant_uri_permissions,
            "launch_mode": self.launch_mode,
            "task_affinity": self.task_affinity,
            "intent_filters": [f.to_dict() for f in self.intent_filters],
            "defined": True,  # set by analysis/apk.py from the DEX classes
            "location": {"file": MANIFEST_FILE, "class": self.name, "method": None, "line": self.line},
        }


@dataclass(slots=True)
class DeepLink:
    component: str
    scheme: str
    host: str | None
    path: str | None
    auto_verify: bool
    browsable: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "scheme": self.scheme,
            "host": self.host,
            "path": self.path,
            "auto_verify": self.auto_verify,
            "browsable": self.browsable,
        }


@dataclass(slots=True)
class ManifestFacts:
    package: str
    version_code: int | None = None
    version_name: str | None = None
    min_sdk: int | None = None
    target_sdk: int | None = None
    max_sdk: int | None = None
    compile_sdk: int | None = None
    application_class: str | None = None
    debuggable: bool = False
    test_only: bool = False
    allow_backup: bool = True
    allow_backup_explicit: bool = False
    full_backup_content: str | None = None
    data_extraction_rules: str | None = None
    uses_cleartext_traffic: bool | None = None
    network_security_config: str | None = None
    shared_user_id: str | None = None
    task_affinity: str | None = None
    permissions: list[Permission] = field(default_factory=list)
    defined_permissions: list[DefinedPermission] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)
    deep_links: list[DeepLink] = field(default_factory=list)
    uses_features: list[str] = field(default_factory=list)
    queries_packages: list[str] = field(default_factory=list)
    # not part of the JSON: split name (``<manifest split="...">`` of a split APK),
    # parser irregularities and the parsed tree for display
    split: str | None = None
    anomalies: list[str] = field(default_factory=list)
    document: Document | None = field(default=None, repr=False, compare=False)

    @property
    def effective_target_sdk(self) -> int:
        """``targetSdkVersion`` as Android applies it (defaults to minSdk, then 1)."""
        if self.target_sdk is not None:
            return self.target_sdk
        return self.min_sdk if self.min_sdk is not None else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "version_code": self.version_code,
            "version_name": self.version_name,
            "min_sdk": self.min_sdk,
            "target_sdk": self.target_sdk,
            "max_sdk": self.max_sdk,
            "compile_sdk": self.compile_sdk,
            "application_class": self.application_class,
            "debuggable": self.debuggable,
            "test_only": self.test_only,
            "allow_backup": self.allow_backup,
            "allow_backup_explicit": self.allow_backup_explicit,
            "full_backup_content": self.full_backup_content,
            "data_extraction_rules": self.data_extraction_rules,
            "uses_cleartext_traffic": self.uses_cleartext_traffic,
            "network_security_config": self.network_security_config,
            "shared_user_id": self.shared_user_id,
            "task_affinity": self.task_affinity,
            "permissions": [p.to_dict() for p in self.permissions],
            "defined_permissions": [p.to_dict() for p in self.defined_permissions],
            "components": [c.to_dict() for c in self.components],
            "deep_links": [d.to_dict() for d in self.deep_links],
            "uses_features": list(self.uses_features),
            "queries_packages": list(self.queries_packages),
        }


# ---------------------------------------------------------------------------
# typed attribute access with resource resolution


class _Reader:
    """Typed attribute access; references resolved through the resource table."""

    def __init__(self, table: ResourceTable | None, anomalies: list[str]) -> None:
        self.table = table
        self.anomalies = anomalies

    def raw(self, el: Element, name: str, namespace: str | None = ANDROID_NS) -> tuple[Attribute | None, object]:
        """(attribute, resolved value); a reference that cannot be resolved stays a ``Ref``."""
        a = el.get(name, namespace)
        if a is None:
            return None, None
        v = a.value
        if isinstance(v, Ref) and not v.attr and self.table is not None:
            resolved = self.table.resolve(v.id)
            if resolved is not None and resolved is not BAG:
                return a, resolved
            if len(self.anomalies) < 50:
                self.anomalies.append(f"unresolved reference {v} for {name} at line {el.line}")
        return a, v

    def get_bool(self, el: Element, name: str) -> bool | None:
        return to_bool(self.raw(el, name)[1])

    def get_int(self, el: Element, name: str, namespace: str | None = ANDROID_NS) -> int | None:
        return to_int(self.raw(el, name, namespace)[1])

    def get_str(self, el: Element, name: str, namespace: str | None = ANDROID_NS) -> str | None:
        a, v = self.raw(el, name, namespace)
        if a is None:
            return None
        if isinstance(v, str):
            return v
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None or v is BAG:
            return a.raw_value
        return str(v)


def to_bool(v: object) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v != 0
    if isinstance(v, str):
        s = v.strip().lower()
        if s == "true":
            return True
        if s == "false":
            return False
        try:
            return int(s, 0) != 0
        except ValueError:
            return None
    return None


def to_int(v: object) -> int | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if v == v and abs(v) < 2**63 else None
    if isinstance(v, str):
        s = v.strip()
        if not s or len(s) > 32:
            return None
        try:
            return int(s, 0) if not s.isdigit() else int(s)
        except ValueError:
            return None
    return None


def expand_class_name(package: str, name: str) -> str:
    """Android's class-name rule: ``.Foo`` and ``Foo`` are relative to the package."""
    if name.startswith("."):
        return package + name
    if "." not in name and package:
        return f"{package}.{name}"
    return name


def _load_table(arsc: bytes | ResourceTable | None, anomalies: list[str]) -> ResourceTable | None:
    if arsc is None or isinstance(arsc, ResourceTable):
        return arsc
    try:
        return ResourceTable(arsc)
    except AnalysisError as e:
        anomalies.append(f"resources.arsc unreadable: {e.message}")
        return None


def manifest_facts(manifest_axml: bytes | None, arsc: bytes | ResourceTable | None = None) -> ManifestFacts:
    """Build :class:`ManifestFacts` from binary ``AndroidManifest.xml`` bytes.

    ``arsc`` (``resources.arsc`` bytes or a parsed :class:`ResourceTable`) is used to
    resolve ``@bool/...``, ``@string/...`` and ``@xml/...`` values.
    """
    if not manifest_axml:
        raise AnalysisError("no_manifest", "AndroidManifest.xml is missing or empty")
    doc = parse_axml(manifest_axml)
    root = doc.root
    anomalies = list(doc.anomalies)
    if root.tag != "manifest":
        raise AnalysisError("corrupt_manifest", f"root element is <{root.tag[:40]}>, not <manifest>")
    table = _load_table(arsc, anomalies)
    r = _Reader(table, anomalies)

    pkg_attr = root.get("package", None)
    package = (pkg_attr.text if pkg_attr is not None else None) or ""
    if not package:
        anomalies.append("manifest has no package attribute")
    facts = ManifestFacts(package=package, anomalies=anomalies, document=doc)
    facts.version_code = r.get_int(root, "versionCode")
    facts.version_name = r.get_str(root, "versionName")
    facts.shared_user_id = r.get_str(root, "sharedUserId")
    split = root.get("split", None)
    facts.split = (split.text or None) if split is not None else None
    facts.compile_sdk = r.get_int(root, "compileSdkVersion")
    if facts.compile_sdk is None:
        facts.compile_sdk = r.get_int(root, "platformBuildVersionCode", None)

    uses_sdk = root.find("uses-sdk")
    if uses_sdk is not None:
        facts.min_sdk = r.get_int(uses_sdk, "minSdkVersion")
        facts.target_sdk = r.get_int(uses_sdk, "targetSdkVersion")
        facts.max_sdk = r.get_int(uses_sdk, "maxSdkVersion")
    target = facts.effective_target_sdk

    permissions: dict[str, Permission] = {}
    defined: dict[str, DefinedPermission] = {}
    features: set[str] = set()
    queries: set[str] = set()
    for child in root.children:
        tag = child.tag
        if tag in USES_PERMISSION_TAGS:
            name = r.get_str(child, "name")
            if not name:
                continue
            max_sdk = r.get_int(child, "maxSdkVersion")
            prev = permissions.get(name)
            if prev is None:
                permissions[name] = Permission(name, "unknown", max_sdk)
            elif prev.max_sdk is not None and (max_sdk is None or max_sdk > prev.max_sdk):
                prev.max_sdk = max_sdk  # duplicates: the widest grant counts
        elif tag == "permission":
            name = r.get_str(child, "name")
            if name and name not in defined:
                _a, level = r.raw(child, "protectionLevel")
                defined[name] = DefinedPermission(name, protection_level_name(level))
        elif tag == "uses-feature":
            name = r.get_str(child, "name")
            if name:
                features.add(name)
        elif tag == "queries":
            for q in child.children:
                if q.tag == "package":
                    name = r.get_str(q, "name")
                    if name:
                        queries.add(name)

    def level_of(perm: str) -> str:
        d = defined.get(perm)
        return d.protection_level if d is not None else framework_protection_level(perm)

    for p in permissions.values():
        p.protection_level = level_of(p.name)
    facts.permissions = sorted(permissions.values(), key=lambda p: p.name)
    facts.defined_permissions = sorted(defined.values(), key=lambda p: p.name)
    facts.uses_features = sorted(features)
    facts.queries_packages = sorted(queries)

    app = root.find("application")
    components: list[Component] = []
    if app is not None:
        name = r.get_str(app, "name")
        facts.application_class = expand_class_name(package, name) if name else None
        facts.debuggable = bool(r.get_bool(app, "debuggable"))
        facts.test_only = bool(r.get_bool(app, "testOnly"))
        allow_backup = r.get_bool(app, "allowBackup")
        facts.allow_backup_explicit = app.get("allowBackup") is not None
        facts.allow_backup = True if allow_backup is None else allow_backup
        facts.full_backup_content = r.get_str(app, "fullBackupContent")
        facts.data_extraction_rules = r.get_str(app, "dataExtractionRules")
        facts.uses_cleartext_traffic = r.get_bool(app, "usesCleartextTraffic")
        facts.network_security_config = r.get_str(app, "networkSecurityConfig")
        facts.task_affinity = r.get_str(app, "taskAffinity")
        app_permission = r.get_str(app, "permission")
        app_enabled = r.get_bool(app, "enabled") is not False

        for el in app.children:
            if el.tag not in COMPONENT_TAGS:
                continue
            comp = _component(el, r, package, target, app_permission, app_enabled)
            if comp is None:
                if len(anomalies) < 100:
                    anomalies.append(f"<{el.tag[:40]}> without android:name at line {el.line}")
                continue
            comp.permission_level = level_of(comp.permission) if comp.permission else None
            components.append(comp)
    components.sort(key=lambda c: (c.name, c.type, c.line or 0))
    facts.components = components
    facts.deep_links = _deep_links(components)
    return facts


def _component(
    el: Element, r: _Reader, package: str, target_sdk: int, app_permission: str | None, app_enabled: bool
) -> Component | None:
    raw_name = r.get_str(el, "name")
    if not raw_name:
        return None
    name = expand_class_name(package, raw_name)
    filters = [_intent_filter(f, r) for f in el.children if f.tag == "intent-filter"]
    exported_value = r.get_bool(el, "exported")
    explicit = exported_value is not None
    if explicit:
        exported = bool(exported_value)
    elif el.tag == "provider":
        exported = target_sdk <= 16
    else:
        exported = bool(filters) and target_sdk < 31
    comp = Component(
        type=el.tag,
        name=name,
        exported=exported,
        exported_explicit=explicit,
        enabled=app_enabled and r.get_bool(el, "enabled") is not False,
        permission=r.get_str(el, "permission") or app_permission,
        intent_filters=filters,
        line=el.line,
    )
    if el.tag == "provider":
        comp.read_permission = r.get_str(el, "readPermission") or comp.permission
        comp.write_permission = r.get_str(el, "writePermission") or comp.permission
        authorities = r.get_str(el, "authorities") or ""
        comp.authorities = [a.strip() for a in authorities.split(";") if a.strip()]
        comp.grant_uri_permissions = bool(r.get_bool(el, "grantUriPermissions"))
    if el.tag in ("activity", "activity-alias"):
        mode = r.get_int(el, "launchMode")
        if mode is not None:
            comp.launch_mode = LAUNCH_MODES[mode] if 0 <= mode < len(LAUNCH_MODES) else str(mode)
        comp.task_affinity = r.get_str(el, "taskAffinity")
    if el.tag == "activity-alias":
        target = r.get_str(el, "targetActivity")
        comp.target_activity = expand_class_name(package, target) if target else None
    return comp


def _intent_filter(el: Element, r: _Reader) -> IntentFilter:
    f = IntentFilter(auto_verify=bool(r.get_bool(el, "autoVerify")), priority=r.get_int(el, "priority"))
    for c in el.children:
        if c.tag == "action":
            name = r.get_str(c, "name")
            if name is not None:
                f.actions.append(name)
        elif c.tag == "category":
            name = r.get_str(c, "name")
            if name is not None:
                f.categories.append(name)
        elif c.tag == "data":
            f.data.append(
                IntentData(
                    scheme=r.get_str(c, "scheme"),
                    host=r.get_str(c, "host"),
                    port=r.get_str(c, "port"),
                    path=r.get_str(c, "path"),
                    path_prefix=r.get_str(c, "pathPrefix"),
                    path_pattern=r.get_str(c, "pathPattern"),
                    mime_type=r.get_str(c, "mimeType"),
                )
            )
    return f


def _deep_links(components: list[Component]) -> list[DeepLink]:
    """URI deep links: intent filters that are BROWSABLE or handle VIEW, with a scheme.

    Android merges all ``<data>`` elements of one filter, so every scheme combines with
    every host and every path of that filter.
    """
    links: dict[tuple[str, str, str | None, str | None], DeepLink] = {}
    for comp in components:
        if comp.type not in ("activity", "activity-alias"):
            continue
        for f in comp.intent_filters:
            browsable = CATEGORY_BROWSABLE in f.categories
            if not browsable and ACTION_VIEW not in f.actions:
                continue
            schemes = sorted({d.scheme for d in f.data if d.scheme})
            if not schemes:
                continue
            hosts: list[str | None] = sorted({d.host for d in f.data if d.host}) or [None]
            paths: list[str | None] = sorted(
                {p for d in f.data for p in (d.path, d.path_prefix, d.path_pattern) if p}
            ) or [None]
            count = 0
            for scheme in schemes:
                for host in hosts:
                    for path in paths:
                        count += 1
                        if count > MAX_DEEP_LINKS_PER_FILTER:
                            break
                        key = (comp.name, scheme, host, path)
                        prev = links.get(key)
                        if prev is None:
                            links[key] = DeepLink(comp.name, scheme, host, path, f.auto_verify, browsable)
                        else:
                            prev.auto_verify = prev.auto_verify or f.auto_verify
                            prev.browsable = prev.browsable or browsable
    return sorted(links.values(), key=lambda d: (d.component, d.scheme, d.host or "", d.path or ""))
