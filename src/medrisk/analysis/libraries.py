"""Is a class third-party library code? (data: data/libraries.yaml + the SDK database)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from medrisk.datafiles import load_yaml

DATA = Path(__file__).parent / "data" / "libraries.yaml"


@lru_cache(maxsize=1)
def _prefixes() -> tuple[str, ...]:
    prefixes = set(load_yaml(DATA.read_text(encoding="utf-8"))["prefixes"])
    from medrisk.privacy.sdks import load_database  # SDK packages are library code too

    for sdk in load_database().sdks:
        prefixes.update(p.rstrip(".") + "." for p in sdk.packages)
    return tuple(sorted(prefixes))


def is_library(cls: str | None, app_package: str = "") -> bool:
    if not cls:
        return False
    if app_package and (cls == app_package or cls.startswith(app_package + ".")):
        return False
    return cls.startswith(_prefixes())
