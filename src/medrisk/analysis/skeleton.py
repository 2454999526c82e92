"""The shape of the indicator document, with defaults.

Rule conditions are checked against this shape when the library loads (an unknown
indicator name is an error naming the rule file), and rule test cases only write
the indicators they care about: the rest is filled from these defaults.
See docs/indicators.md for the meaning of every field.
"""

from __future__ import annotations

import copy
from typing import Any

LOC: dict[str, Any] = {"file": None, "class": None, "method": None, "line": None}

# Defaults for the items of every list an indicator document holds, keyed by dotted path.
ITEM_DEFAULTS: dict[str, dict[str, Any]] = {
    "container.anomalies": {"kind": "", "entry": None, "detail": ""},
    "container.assets": {"path": "", "size": 0, "kind": "other"},
    "manifest.permissions": {"name": "", "protection_level": "unknown", "max_sdk": None},
    "manifest.defined_permissions": {"name": "", "protection_level": "normal"},
    "manifest.components": {
        "type": "activity",
        "name": "",
        "exported": False,
        "exported_explicit": False,
        "enabled": True,
        "permission": None,
        "read_permission": None,
        "write_permission": None,
        "permission_level": None,
        "authorities": [],
        "grant_uri_permissions": False,
        "launch_mode": None,
        "task_affinity": None,
        "intent_filters": [],
        "defined": True,  # the component's class is in the package's DEX files
        "location": LOC,
    },
    "manifest.components.intent_filters": {
        "actions": [],
        "categories": [],
        "data": [],
        "auto_verify": False,
        "priority": None,
    },
    "manifest.deep_links": {
        "component": "",
        "scheme": "",
        "host": None,
        "path": None,
        "auto_verify": False,
        "browsable": True,
    },
    "network_security_config.domains": {
        "domains": [],
        "cleartext_permitted": None,
        "trust_anchors": [],
        "pins": [],
        "pin_expiration": None,
        "pin_expired": None,
    },
    "signing.certificates": {
        "schemes": [],
        "subject": "",
        "issuer": "",
        "serial": "",
        "not_before": "",
        "not_after": "",
        "key_algorithm": "RSA",
        "key_size": 2048,
        "signature_algorithm": "sha256WithRSAEncryption",
        "sha256": "",
        "sha1": "",
        "is_debug": False,
        "self_signed": True,
    },
    "code.calls": {
        "api": "",
        "args": [],
        "taint": [],  # per argument: the source API of user/intent data reaching it, or null
        "receiver": None,  # constant value of the receiver of an instance call
        "receiver_taint": None,
        "library": False,  # the call site is in well-known third-party library code
        "location": LOC,
    },
    "code.overrides": {
        "base": "",
        "method": "",
        "class": "",
        "empty": False,
        "returns_const": None,
        "calls": [],
        "instantiated": True,  # created (new-instance/const-class) somewhere outside its constructors
        "location": LOC,
    },
    "code.field_reads": {"field": "", "location": LOC},
    "strings.urls": {"value": "", "scheme": "", "host": "", "locations": []},
    "strings.ips": {"value": "", "private": False, "locations": []},
    "strings.emails": {"value": "", "locations": []},
    "strings.secrets": {"kind": "", "value": "", "redacted": "", "entropy": 0.0, "locations": []},
    "native.libraries": {
        "path": "",
        "abi": "",
        "machine": "",
        "nx": True,
        "pie": True,
        "canary": True,
        "relro": "full",
        "fortify": True,
        "stripped": True,
        "rpath": None,
        "error": None,
        "unsafe_functions": [],  # imported libc functions without bounds (strcpy, sprintf, gets ...)
        "strings": [],  # notable .rodata strings: {"kind", "value"}
    },
    "native.libraries.strings": {"kind": "", "value": ""},
    "resources.secret_strings": {"name": "", "value": ""},
    "resources.string_secrets": {"name": "", "kind": "", "value": ""},
    "resources.layouts": {"file": "", "id": None, "input_type": None, "password": False, "hint": None},
    "resources.file_provider_paths": {"provider": "", "file": "", "tag": "", "path": ""},
    "sdks.detected": {
        "id": "",
        "name": "",
        "name_en": "",
        "vendor": "",
        "category": "",
        "confirmed": True,  # class/manifest/native evidence; False = only a domain string matched
        "evidence": [],
        "collects": [],
    },
    "sdks.detected.evidence": {"kind": "package", "value": ""},
    # privacy root (privacy/analyse.py, docs/privacy.md)
    "privacy.inventory": {
        "id": "",
        "name": {"zh": "", "en": ""},
        "sensitive": False,
        "non_resettable": False,
        "sources": [],
        "evidence": [],
    },
    "privacy.inventory.evidence": {"source": "", "value": "", "location": None, "sdk": None},
    "privacy.evidence": {"item": "", "sensitive": False, "source": "", "value": "", "location": None, "sdk": None},
    "privacy.excess": {
        "id": "",
        "name": {"zh": "", "en": ""},
        "sensitive": False,
        "sources": [],
        "reason": {"zh": "", "en": ""},
    },
    "privacy.policy.checks": {
        "id": "",
        "title": {"zh": "", "en": ""},
        "verdict": "not_applicable",
        "evidence": None,
        "detail": None,
        "clause": "",
        "rule": None,
    },
    "privacy.policy.disclosures": {
        "item": "",
        "name": {"zh": "", "en": ""},
        "permission": False,
        "disclosed": False,
        "denied": False,
        "evidence": None,
    },
    "privacy.policy.sdk_disclosures": {
        "sdk": "",
        "name": "",
        "vendor": "",
        "collects": [],
        "required": True,
        "disclosed": False,
        "denied": False,
        "evidence": None,
    },
    "privacy.checklist": {
        "id": "",
        "title": {"zh": "", "en": ""},
        "verdict": "not_applicable",
        "evidence": None,
        "detail": None,
        "clause": "",
        "rule": None,
    },
}

DEFAULT_DOCUMENT: dict[str, Any] = {
    "file": {"name": "", "size": 0, "sha256": "", "sha1": "", "md5": ""},
    "container": {
        "entries": 0,
        "dex_files": [],
        "native_libs": [],
        "abis": [],
        "nested_apks": [],
        "is_split": False,
        "split_name": None,
        "anomalies": [],
        "assets": [],
    },
    "manifest": {
        "package": "",
        "version_code": None,
        "version_name": None,
        "min_sdk": None,
        "target_sdk": None,
        "max_sdk": None,
        "compile_sdk": None,
        "application_class": None,
        "debuggable": False,
        "test_only": False,
        "allow_backup": True,
        "allow_backup_explicit": False,
        "full_backup_content": None,
        "data_extraction_rules": None,
        "uses_cleartext_traffic": None,
        "network_security_config": None,
        "shared_user_id": None,
        "task_affinity": None,
        "permissions": [],
        "defined_permissions": [],
        "components": [],
        "deep_links": [],
        "uses_features": [],
        "queries_packages": [],
    },
    "network_security_config": {
        "present": False,
        "file": None,
        "base": {"cleartext_permitted": None, "trust_anchors": []},
        "domains": [],
        "debug_overrides": None,
    },
    "signing": {
        "schemes": {"v1": False, "v2": False, "v3": False, "v31": False, "v4": False},
        "certificates": [],
        "v1_digest_algorithms": [],
        "v1_only": False,
        "janus_vulnerable": False,
        "weak_algorithms": [],
        "errors": [],
    },
    "code": {
        "dex": [],
        "classes": 0,
        "methods": 0,
        "packages": [],
        "calls": [],
        "overrides": [],
        "field_reads": [],
        "obfuscation": {"short_class_ratio": 0.0, "obfuscated": False},
        "errors": [],
    },
    "strings": {"urls": [], "ips": [], "domains": [], "emails": [], "secrets": []},
    "native": {"libraries": []},
    "resources": {
        "strings": 0,
        "firebase_urls": [],
        "secret_strings": [],
        "string_secrets": [],  # resource string values the secret classifier flags (AKIA..., user:pass@ URLs)
        "layouts": [],  # EditText fields of res/layout/*.xml
        "file_provider_paths": [],  # <root-path>/<external-path> ... entries of FileProvider path files
        "certificates": [],
        "keystores": [],
    },
    "sdks": {"database_version": "", "detected": []},
    "privacy": {
        "app_type": None,  # 《必要个人信息范围规定》 type, e.g. 问诊挂号类
        "health_context": True,  # health/medical type, or no type declared (MedRisk scans medical apps)
        "inventory": [],
        "evidence": [],  # inventory evidence, flat: one row per (item, source, value, location)
        "excess": [],
        "policy": {
            "present": False,
            "source": None,
            "language": None,
            "characters": 0,
            "checks": [],
            "disclosures": [],
            "sdk_disclosures": [],
        },
        "checklist": [],
    },
}

ROOTS = frozenset(DEFAULT_DOCUMENT)


def default_document() -> dict[str, Any]:
    return copy.deepcopy(DEFAULT_DOCUMENT)


def complete(partial: dict[str, Any]) -> dict[str, Any]:
    """Fill a partial indicator document (e.g. a rule test case) with defaults."""
    doc = default_document()
    _merge(doc, partial, "")
    return doc


def _merge(base: dict[str, Any], extra: dict[str, Any], prefix: str) -> None:
    for key, value in extra.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, path + ".")
        elif isinstance(value, list) and path in ITEM_DEFAULTS:
            base[key] = [_complete_item(path, v) for v in value]
        else:
            base[key] = copy.deepcopy(value)


def _complete_item(path: str, item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    full = copy.deepcopy(ITEM_DEFAULTS[path])
    for key, value in item.items():
        sub = f"{path}.{key}"
        if isinstance(value, list) and sub in ITEM_DEFAULTS:
            full[key] = [_complete_item(sub, v) for v in value]
        else:
            full[key] = copy.deepcopy(value)
    return full


def known_path(path: list[str]) -> bool:
    """Is ``a.b.c`` a field of the indicator document (walking into list items)?"""
    node: Any = DEFAULT_DOCUMENT
    dotted = ""
    for i, part in enumerate(path):
        if isinstance(node, dict) and part in node:
            dotted = f"{dotted}.{part}" if dotted else part
            node = node[part]
            if isinstance(node, list):
                # list members are reached through macros (exists/filter); stop checking here
                return True
            if node is None or not isinstance(node, dict):
                return i == len(path) - 1 or node is None
            continue
        return False
    return True


def item_fields(list_path: str) -> set[str] | None:
    item = ITEM_DEFAULTS.get(list_path)
    return set(item) if item is not None else None
