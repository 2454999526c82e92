"""`medrisk rules lint|test`: metadata checks and each rule's own test cases."""

from __future__ import annotations

from medrisk.analysis import skeleton
from medrisk.risk.scoring import RiskModel
from medrisk.rules.engine import Engine, api_prefilter
from medrisk.rules.model import Rule


def lint(rules: list[Rule], model: RiskModel) -> list[str]:
    problems = []
    for r in rules:
        if r.category not in model.sub_index:
            problems.append(f"{r.source}: {r.id}: category '{r.category}' is not in the risk model")
        if r.severity != "secure" and not r.remediation.en:
            problems.append(f"{r.source}: {r.id}: remediation missing")
        if (r.each or "").strip() == "code.calls" and api_prefilter(r) is None:
            problems.append(
                f"{r.source}: {r.id}: a code.calls rule needs a top-level `item.api == ...`/`item.api in [...]` "
                "conjunct (the engine narrows call sites with it)"
            )
        if r.family == "PRIV" and not r.regulations:
            problems.append(f"{r.source}: {r.id}: PRIV rules must cite a regulation clause")
    return problems


def run_tests(rules: list[Rule]) -> list[str]:
    """Run every rule's positive and negative cases; return failures."""
    problems = []
    for r in rules:
        engine = Engine([r])
        for case in r.tests:
            ev = engine.evaluate(skeleton.complete(case.indicators))
            if ev.errors:
                problems.append(f"{r.source}: {r.id} [{case.name}]: {ev.errors[0]}")
                continue
            fired = bool(ev.findings)
            if fired != case.expect:
                want = "match" if case.expect else "no match"
                problems.append(
                    f"{r.source}: {r.id} [{case.name}]: expected {want}, got {'match' if fired else 'no match'}"
                )
            elif fired and case.count is not None and len(ev.findings[0].evidence) != case.count:
                problems.append(
                    f"{r.source}: {r.id} [{case.name}]: expected {case.count} evidence items, "
                    f"got {len(ev.findings[0].evidence)}"
                )
    return problems
