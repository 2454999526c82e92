"""App version names and approved version ranges.

The white paper (§5.2.2(2)) treats a change of x or y in version x.y as a major change
that needs a new approval, so the default approved range of version 2.3.1 is
``>=2.3,<2.4``. A range is a comma-separated list of ``>=``, ``>``, ``<=``, ``<``, ``==``
constraints on dotted numeric versions.
"""

from __future__ import annotations

import re

from medrisk.platform.errors import Invalid

_NUM = re.compile(r"\d+")
_CONSTRAINT = re.compile(r"\s*(>=|<=|==|>|<)\s*(\d+(?:\.\d+){0,3})\s*")
_OPS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}


def parse(version: str) -> tuple[int, ...] | None:
    """Leading numeric components of a version name ("2.3.1-beta" → (2, 3, 1)); None if none."""
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", version or "")
    if not m:
        return None
    return tuple(int(x) for x in m.group(1).split("."))


def _pad(v: tuple[int, ...], n: int = 4) -> tuple[int, ...]:
    return (v + (0,) * n)[:n] if len(v) <= n else v


def default_range(current_version: str) -> str:
    v = parse(current_version)
    if v is None:
        raise Invalid("the current version must start with a number (like 2.3.1)", field="current_version")
    major, minor = v[0], (v[1] if len(v) > 1 else 0)
    return f">={major}.{minor},<{major}.{minor + 1}"


def check_range(spec: str, field: str = "version_range") -> str:
    parts = [s for s in spec.split(",")]
    if not spec.strip() or any(not _CONSTRAINT.fullmatch(s) for s in parts):
        raise Invalid("a version range is constraints like '>=2.3,<2.4' (operators >=, >, <=, <, ==)", field=field)
    return ",".join(s.strip().replace(" ", "") for s in parts)


def in_range(version: str | None, spec: str | None) -> bool | None:
    if not spec or not version:
        return None
    v = parse(version)
    if v is None:
        return False
    for s in spec.split(","):
        m = _CONSTRAINT.fullmatch(s)
        if not m:
            return None
        bound = tuple(int(x) for x in m.group(2).split("."))
        if not _OPS[m.group(1)](_pad(v), _pad(bound)):
            return False
    return True


def find_all_numbers(text: str) -> list[int]:
    return [int(x) for x in _NUM.findall(text)]


def major_drift(seen: str | None, filed: str | None) -> bool:
    """White paper §5.2.2(2): the x or y of x.y differ (a missing y counts as 0). The closed loop
    suspends on it; channel monitoring classifies drift with it. Unparseable versions: no drift."""
    a, b = parse(seen or ""), parse(filed or "")
    if a is None or b is None:
        return False
    return (a + (0,))[:2] != (b + (0,))[:2]
