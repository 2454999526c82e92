"""Suppressions: a rule (or one evidence location of a rule) accepted with a reason.

Suppressed findings stay in every report, marked as suppressed with the reason;
they only stop counting towards the score.

File format (YAML)::

    suppressions:
      - rule: MAN-004
        reason: "Exported on purpose: the launcher activity"   # mandatory
        location: "com.example.MainActivity"                   # optional: substring of the evidence
        expires: 2027-06-30                                     # optional
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from medrisk import datafiles
from medrisk.datafiles import load_yaml
from medrisk.rules.model import Finding


class SuppressionError(Exception):
    pass


@dataclass(frozen=True)
class Suppression:
    rule: str
    reason: str
    location: str | None = None
    expires: dt.date | None = None

    def active(self, today: dt.date) -> bool:
        return self.expires is None or today <= self.expires


def load_suppressions(path: Path) -> list[Suppression]:
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, datafiles.YAMLError) as exc:
        raise SuppressionError(f"{path}: cannot read suppressions: {exc}") from exc
    items = data.get("suppressions") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise SuppressionError(f"{path}: expected a top-level 'suppressions' list")
    out = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict) or not item.get("rule"):
            raise SuppressionError(f"{path}: suppression #{i} needs a 'rule'")
        reason = str(item.get("reason") or "").strip()
        if not reason:
            raise SuppressionError(f"{path}: suppression #{i} ({item['rule']}) needs a non-empty 'reason'")
        expires = item.get("expires")
        if expires is not None and not isinstance(expires, dt.date):
            try:
                expires = dt.date.fromisoformat(str(expires))
            except ValueError as exc:
                raise SuppressionError(f"{path}: suppression #{i}: 'expires' is not a date") from exc
        out.append(Suppression(str(item["rule"]), reason, item.get("location"), expires))
    return out


def apply(findings: list[Finding], suppressions: list[Suppression], today: dt.date | None = None) -> list[Finding]:
    """Return findings with suppressions applied (a partly suppressed finding is split in two)."""
    today = today or dt.date.today()
    active = [s for s in suppressions if s.active(today)]
    out: list[Finding] = []
    for f in findings:
        rule_wide = next((s for s in active if s.rule == f.rule.id and not s.location), None)
        if rule_wide:
            out.append(Finding(f.rule, f.evidence, True, rule_wide.reason))
            continue
        located = [s for s in active if s.rule == f.rule.id and s.location]
        if not located:
            out.append(f)
            continue
        kept, dropped, reason = [], [], ""
        for e in f.evidence:
            match = next((s for s in located if s.location and s.location in e.key()), None)
            if match:
                dropped.append(e)
                reason = match.reason
            else:
                kept.append(e)
        if kept:
            out.append(Finding(f.rule, kept))
        if dropped:
            out.append(Finding(f.rule, dropped, True, reason))
    return out
