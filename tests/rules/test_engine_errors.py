"""A condition that fails at evaluation time is reported as that rule's error, not a crash."""

from __future__ import annotations

from medrisk.rules.engine import Engine
from medrisk.rules.model import Rule
from tests.rules.rule_factory import make_rule


def _rule(rid: str, condition: str, each: str | None = None) -> Rule:
    return make_rule(rid, condition, each)


DOC = {"manifest": {"package": "p", "permissions": ["a.B"]}, "code": {"calls": [{"api": "x.Y.z", "args": []}]}}


def test_index_past_the_end_of_a_list_is_a_rule_error():
    rules = [
        _rule("TST-101", "manifest.permissions[5] == 'a.B'"),
        _rule("TST-102", "item.args[0] == 'x'", each="code.calls"),
        _rule("TST-103", "manifest.permissions[0] == 'a.B'"),  # still evaluated after the errors
    ]
    ev = Engine(rules).evaluate(DOC)
    assert [f.rule.id for f in ev.findings] == ["TST-103"]
    assert len(ev.errors) == 2
    assert ev.errors[0].startswith("TST-101: evaluation failed:")
    assert ev.errors[1].startswith("TST-102: evaluation failed:")
