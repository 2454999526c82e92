"""Evaluation shortcuts of the engine give the same findings and errors as the plain conditions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from medrisk.analysis import skeleton
from medrisk.rules.engine import Engine, plan_rule
from medrisk.rules.model import Rule
from tests.rules.rule_factory import make_rule


def _rule(rid: str, condition: str, each: str | None = "code.calls") -> Rule:
    return make_rule(rid, condition, each)


RULES = [
    # an API regex (decided once per API name) and a condition on the arguments
    _rule("TST-001", "item.api.matches('^android[.]util[.]Log[.](d|e)$') && item.args.exists(a, a == 'token')"),
    # a document guard, an API list and a condition that reads the document
    _rule(
        "TST-002",
        "manifest.debuggable == true && item.api in ['a.B.c', 'a.B.d'] && "
        "(item.args.size() > 0 && item.args[0] == manifest.package)",
    ),
    # only API conjuncts: every call that passes them matches
    _rule("TST-003", "item.api.startsWith('x.Y.') && item.api.endsWith('z')"),
    # parenthesised API conjunct and an argument test that can raise an error (string + int)
    _rule("TST-004", "(item.api == 'a.B.e' || item.api == 'a.B.f') && item.args[1] + 0 == 0"),
]

CALLS: list[Any] = [
    {"api": "android.util.Log.d", "args": ["Auth", "token"], "location": {"class": "p.A", "method": "m()V"}},
    {"api": "android.util.Log.e", "args": [None, "hello"], "location": {"class": "p.A", "method": "n()V"}},
    {"api": "android.util.Log.i", "args": ["token"], "location": {"class": "p.B", "method": "m()V"}},
    {"api": "a.B.c", "args": ["com.example"], "location": {"class": "p.C", "method": "m()V"}},
    {"api": "a.B.d", "args": [], "location": {"class": "p.C", "method": "n()V"}},
    {"api": "a.B.e", "args": ["x", 0], "location": {"class": "p.C", "method": "o()V"}},
    {"api": "a.B.f", "args": ["x", "y"], "location": {"class": "p.C", "method": "p()V"}},  # TST-004: error
    {"api": "x.Y.baz", "args": [], "location": {"class": "p.D", "method": "m()V"}},
    {"api": "x.Y.bar", "args": [], "location": {"class": "p.D", "method": "n()V"}},
    {"api": 5, "args": ["token"], "location": {"class": "p.E", "method": "m()V"}},  # API filter raises
    {"args": ["token"], "location": {"class": "p.E", "method": "n()V"}},  # no API at all
]


def _doc(calls: list[Any], debuggable: bool = True) -> dict[str, Any]:
    doc = skeleton.default_document()
    doc["manifest"]["package"] = "com.example"
    doc["manifest"]["debuggable"] = debuggable
    doc["code"]["calls"] = copy.deepcopy(calls)
    return doc


def _outcome(engine: Engine, doc: dict[str, Any]) -> tuple[Any, ...]:
    ev = engine.evaluate(doc)
    found = sorted((f.rule.id, [(e.cls, e.method, e.value) for e in f.evidence]) for f in ev.findings)
    return tuple(found), tuple(sorted(ev.errors))


def _reference() -> Engine:
    """The same rules evaluated with their full conditions on every candidate call."""
    engine = Engine(RULES)
    for plan in engine._plans.values():
        plan.rest = None
    return engine


def test_plans_split_off_api_conjuncts():
    assert plan_rule(RULES[0]).rest == "(item.args.exists(a, a == 'token'))"
    assert plan_rule(RULES[2]).rest == "true"
    assert plan_rule(RULES[3]).rest == "(item.args[1] + 0 == 0)"


@pytest.mark.parametrize("debuggable", [True, False])
@pytest.mark.parametrize("subset", [slice(None), slice(0, 3), slice(3, 7), slice(7, None), slice(9, None)])
def test_same_findings_and_errors_as_full_conditions(subset, debuggable):
    doc = _doc(CALLS[subset], debuggable)
    fast, ref = Engine(RULES), _reference()
    assert _outcome(fast, doc) == _outcome(ref, copy.deepcopy(doc))
    # the per-API memo is kept across scans: a second scan gives the same answer
    assert _outcome(fast, _doc(CALLS[subset], debuggable)) == _outcome(ref, copy.deepcopy(doc))


def test_expected_matches():
    found, errors = _outcome(Engine(RULES), _doc([c for c in CALLS if c.get("api") not in (5, "a.B.f")]))
    ids = {rid: [e[0] + "." + e[1] for e in ev] for rid, ev in found}
    assert ids["TST-001"] == ["p.A.m()V"]
    assert ids["TST-002"] == ["p.C.m()V"]
    assert ids["TST-003"] == ["p.D.m()V"]
    assert ids["TST-004"] == ["p.C.o()V"]
    assert errors == ()
    # an error in a call's condition (TST-004) or its API filter (TST-001, TST-003) is reported, as before
    _, errors = _outcome(Engine(RULES), _doc(CALLS))
    assert [e.split(":")[0] for e in errors] == ["TST-001", "TST-003", "TST-004"]
