"""Rule and finding types.

A *rule* is data (one YAML file under ``rules/library/<family>/``); a *finding* is a
rule that fired on a scan's indicators, with its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("critical", "high", "medium", "low", "info", "secure")
SEVERITY_ORDER = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Text:
    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh

    def to_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class RuleTest:
    name: str
    expect: bool  # True: the rule must fire
    indicators: dict[str, Any]
    count: int | None = None  # expected number of evidence items, when given


@dataclass
class Rule:
    id: str
    title: Text
    description: Text
    severity: str
    category: str  # risk-model sub-category id, e.g. "network.transport"
    masvs: str
    maswe: str | None
    cwe: list[str]
    condition: str
    remediation: Text
    tests: list[RuleTest]
    each: str | None = None
    evidence: str | None = None
    message: Text | None = None
    regulations: list[dict[str, str]] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str = ""  # file path, for errors and `rules show`
    # the engine's evaluation plan (rules/engine.py), derived from the text; the rule cache fills it
    plan: Any = field(default=None, compare=False, repr=False)

    @property
    def family(self) -> str:
        return self.id.split("-", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title.to_dict(),
            "description": self.description.to_dict(),
            "severity": self.severity,
            "category": self.category,
            "masvs": self.masvs,
            "maswe": self.maswe,
            "cwe": list(self.cwe),
            "regulations": list(self.regulations),
            "references": list(self.references),
            "remediation": self.remediation.to_dict(),
        }


@dataclass
class Evidence:
    file: str | None = None
    cls: str | None = None
    method: str | None = None
    line: int | None = None
    value: str | None = None
    library: bool = False  # the location is in third-party library code

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "class": self.cls,
            "method": self.method,
            "line": self.line,
            "value": self.value,
            "library": self.library,
        }

    def key(self) -> str:
        """Stable location key used by suppressions: file, class, method and value."""
        return "|".join(str(x or "") for x in (self.file, self.cls, self.method, self.value))


@dataclass
class Finding:
    rule: Rule
    evidence: list[Evidence]
    suppressed: bool = False
    suppression_reason: str | None = None
    cost: float = 0.0  # points this finding took off the score (set by the risk model)

    @property
    def severity(self) -> str:
        return self.rule.severity

    @property
    def in_library(self) -> bool:
        """Every piece of evidence is in third-party library code."""
        return bool(self.evidence) and all(e.library for e in self.evidence)

    def to_dict(self, lang: str = "zh") -> dict[str, Any]:
        return {
            "rule_id": self.rule.id,
            "severity": self.rule.severity,
            "category": self.rule.category,
            "title": self.rule.title.to_dict(),
            "masvs": self.rule.masvs,
            "maswe": self.rule.maswe,
            "cwe": list(self.rule.cwe),
            "regulations": list(self.rule.regulations),
            "remediation": self.rule.remediation.to_dict(),
            "evidence": [e.to_dict() for e in self.evidence],
            "in_library": self.in_library,
            "suppressed": self.suppressed,
            "suppression_reason": self.suppression_reason,
            "cost": round(self.cost, 2),
        }
