"""The shipped rule library: loads, lints clean, and every rule passes its own cases."""

from __future__ import annotations

import pytest

from medrisk.analysis import skeleton
from medrisk.risk.scoring import load_model
from medrisk.rules import testing
from medrisk.rules.engine import Engine
from medrisk.rules.loader import load_library

RULES = load_library()


def test_library_size_and_families():
    assert len(RULES) >= 80, f"only {len(RULES)} rules"
    families = {r.family for r in RULES}
    assert {"MAN", "NET", "CRY", "STO", "PLT", "SEC", "SIG", "NAT", "RES"} <= families


def test_lint_clean():
    assert testing.lint(RULES, load_model()) == []


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_cases(rule):
    assert any(t.expect for t in rule.tests) and any(not t.expect for t in rule.tests)
    assert testing.run_tests([rule]) == []


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_metadata(rule):
    assert rule.title.zh != rule.title.en
    assert rule.remediation.zh and rule.remediation.en
    assert rule.cwe and rule.masvs.startswith("MASVS-")
    # the Chinese text really is Chinese
    assert any("\u4e00" <= ch <= "\u9fff" for ch in rule.title.zh + rule.description.zh)


def test_empty_app_fires_nothing_severe():
    """A document with nothing in it must not produce high or critical findings."""
    ev = Engine(RULES).evaluate(skeleton.default_document())
    assert ev.errors == []
    assert not [f.rule.id for f in ev.findings if f.severity in ("critical", "high")]
