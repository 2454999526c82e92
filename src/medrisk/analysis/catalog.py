"""The catalogue of watched APIs (``data/apis.yaml``): the classes, methods, fields and
override bases that the code analysis looks for, indexed by DEX descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from medrisk.analysis.dex import (
    java_to_descriptor,
)
from medrisk.datafiles import load_yaml

DATA_FILE = Path(__file__).parent / "data" / "apis.yaml"


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
    raw = load_yaml(text)
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
