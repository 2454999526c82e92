"""Run the rule library's own test cases in memory (``medrisk trails rules test``, tests/trails).

Each case is a recipe over the standard flow (trails/generator.py): the events are rendered
for a test institution with its roster, validated by the schema, pseudonymised and checked
by the same Checker the service uses; windowed rules are swept 100 hours after the last event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from medrisk.trails.checker import Checker, check_window, window_due
from medrisk.trails.generator import Institution, apply_recipe, render_flow, roster_events
from medrisk.trails.pseudo import Pseudonymiser
from medrisk.trails.rules import RuleSet, TrailRule
from medrisk.trails.schema import check_event

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TEST_KEY = b"medrisk-trail-rule-tests"


@dataclass
class CaseResult:
    rule: str
    name: str
    expect: str
    fired: set[str]

    @property
    def ok(self) -> bool:
        return (self.rule in self.fired) == (self.expect == "match")


def run_events(rules: RuleSet, events: list[dict[str, Any]], sweep_at: float | None = None) -> list[tuple[str, str]]:
    """(rule id, case key) of every violation found in ``events`` (and by a sweep at ``sweep_at``)."""
    p = Pseudonymiser(TEST_KEY, 1)
    checker = Checker(rules)
    hits: list[tuple[str, str]] = []
    last = 0.0
    from medrisk.trails.pseudo import minimise

    for i, raw in enumerate(events):
        n, _payload = minimise(check_event(raw, f"events.{i}"), p)
        n.seq = i + 1
        last = max(last, n.at)
        hits += [(h.rule.id, h.case_key) for h in checker.check(n)]
    now = sweep_at if sweep_at is not None else last + 100 * 3600
    for rule in rules.windows:
        for (kind, key), state in checker.states.items():
            if kind == rule.case and window_due(rule, state, now) and check_window(rule, state, now):
                hits.append((rule.id, key))
    return hits


def run_case(rules: RuleSet, rule: TrailRule, case: dict[str, Any]) -> CaseResult:
    inst = Institution.make("T", doctors=2, pharmacists=1, couriers=1)
    steps = apply_recipe(case)
    events = roster_events(inst, START) + render_flow(steps, inst, 1, START, patient=case.get("patient"))
    fired = {rid for rid, _ in run_events(rules, events)}
    return CaseResult(rule.id, str(case.get("name", "")), str(case.get("expect")), fired)


def run_all(rules: RuleSet) -> list[CaseResult]:
    return [run_case(rules, r, case) for r in rules.rules for case in r.tests]
