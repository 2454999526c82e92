"""The disposition policy and the notification templates, loaded from YAML data files."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
STATES = ("filed", "monitoring", "warned", "rectifying", "suspended", "reinstated", "revoked")
EVENTS = (
    "scan_graded",
    "version_seen",
    "counterfeit_found",
    "tampered_found",
    "stale_version_found",
    "deadline_passed",
    "acceptance_expired",
    "trail_violation",
)
MANUAL_ACTIONS = ("issue_notice", "extend_deadline", "suspend", "reinstate", "accept_risk", "revoke")


@dataclass(frozen=True)
class Rule:
    id: str
    on: str
    sources: tuple[str, ...]
    to: str | None  # None: no state change (notification only); "reopen": the state before an acceptance
    when: dict[str, Any] = field(default_factory=dict)
    set_deadline: str | None = None
    clear_deadline: bool = False
    accept: bool = False
    needs_reason: bool = False
    notify: dict[str, Any] | None = None

    def matches(self, kind: str, state: str, facts: dict[str, Any]) -> bool:
        if kind != self.on or state not in self.sources:
            return False
        for key, want in self.when.items():
            have = facts.get(key)
            if isinstance(want, list):
                if have not in want:
                    return False
            elif have != want:
                return False
        return True


def _rule(rid: str, on: str, raw: dict[str, Any]) -> Rule:
    to = raw.get("to")
    for s in [*raw.get("from", []), *([to] if to and to != "reopen" else [])]:
        if s not in STATES:
            raise ValueError(f"policy rule {rid}: unknown state {s!r}")
    return Rule(
        id=rid,
        on=on,
        sources=tuple(raw.get("from", [])),
        to=to,
        when=dict(raw.get("when") or {}),
        set_deadline=raw.get("set_deadline"),
        clear_deadline=bool(raw.get("clear_deadline")),
        accept=bool(raw.get("accept")),
        needs_reason=bool(raw.get("needs_reason")),
        notify=raw.get("notify"),
    )


@dataclass(frozen=True)
class Policy:
    deadlines: dict[str, int]
    regulator_levels: int
    gate_allows: frozenset[str]
    rules: tuple[Rule, ...]
    manual: dict[str, Rule]

    def match(self, kind: str, state: str, facts: dict[str, Any]) -> Rule | None:
        return next((r for r in self.rules if r.matches(kind, state, facts)), None)

    def deadline_days(self, app_type: str | None) -> int:
        return int(self.deadlines.get(app_type or "", self.deadlines["default"]))


def load_policy(path: Path | None = None) -> Policy:
    raw = yaml.safe_load((path or HERE / "policy.yaml").read_text(encoding="utf-8"))
    rules = tuple(_rule(r["id"], r["event"], r) for r in raw["rules"])
    for r in rules:
        if r.on not in EVENTS:
            raise ValueError(f"policy rule {r.id}: unknown event {r.on!r}")
    manual = {name: _rule(name, f"manual:{name}", body) for name, body in raw.get("manual", {}).items()}
    unknown = set(manual) - set(MANUAL_ACTIONS)
    if unknown:
        raise ValueError(f"policy: unknown manual actions {sorted(unknown)}")
    return Policy(
        deadlines={str(k): int(v) for k, v in raw["deadlines"].items()},
        regulator_levels=int(raw.get("regulator_levels", 1)),
        gate_allows=frozenset(raw["gate_allows"]),
        rules=rules,
        manual=manual,
    )


@cache
def templates() -> dict[str, dict[str, dict[str, str]]]:
    return yaml.safe_load((HERE / "templates.yaml").read_text(encoding="utf-8"))


class _Blank(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "-"


def render(template: str, language: str, values: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) in ``zh``, ``en`` or ``both`` (Chinese first, then English)."""
    t = templates()[template]
    vals = _Blank({k: "-" if v is None else v for k, v in values.items()})
    langs = ["zh", "en"] if language == "both" else [language if language in t else "zh"]
    subjects = [t[lg]["subject"].format_map(vals) for lg in langs]
    bodies = [t[lg]["body"].format_map(vals) for lg in langs]
    return " / ".join(subjects), "\n\n---\n\n".join(bodies)
