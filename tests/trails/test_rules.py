"""The trail rule library: every rule's own must-match / must-not-match cases, and the loader's checks."""

from __future__ import annotations

import pytest

from medrisk.trails.rules import CONFIDENCE, RuleError, load_rules, parse_rule
from medrisk.trails.testing import run_case

RULES = load_rules()
CASES = [(r, c) for r in RULES.rules for c in r.tests]


@pytest.mark.parametrize(("rule", "case"), CASES, ids=[f"{r.id}:{c['name']}" for r, c in CASES])
def test_rule_case(rule, case):
    res = run_case(RULES, rule, case)
    assert res.ok, f"{rule.id} {case['name']}: expected {case['expect']}, fired {sorted(res.fired)}"


def test_standard_flow_is_clean():
    res = run_case(RULES, RULES.rules[0], {"name": "clean", "expect": "no_match"})
    assert res.fired == set()


def test_library_shape():
    ids = [r.id for r in RULES.rules]
    assert len(ids) == 18
    assert {"RX-03", "RX-04", "RX-12", "DX-01", "DOC-01", "EMR-02", "RX-15"} <= set(ids)
    for r in RULES.rules:
        assert r.title.zh and r.title.en and r.remediation.zh and r.remediation.en
        assert all(reg["confidence"] in CONFIDENCE for reg in r.regulations)
    assert {r.id for r in RULES.windows} == {"RX-15", "EMR-02"}


def _raw(**over):
    raw = {
        "id": "RX-99",
        "title": {"zh": "标题", "en": "title"},
        "description": {"zh": "说明", "en": "description"},
        "severity": "high",
        "regulations": [{"ref": "处方管理办法", "confidence": "MEM"}],
        "check": "stream",
        "triggers": ["prescription.created"],
        "condition": "ev.items_count > 5",
        "remediation": {"zh": "改", "en": "fix"},
        "tests": [{"name": "a", "expect": "match"}, {"name": "b", "expect": "no_match"}],
    }
    raw.update(over)
    return raw


def test_valid_rule_parses():
    assert parse_rule(_raw(), "x.yaml").id == "RX-99"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"condition": "ev.item_count > 5"}, "unknown fact ev.item_count"),
        ({"condition": "len(ev.type) > 5"}, "may not use Call"),
        ({"condition": "ev.__class__"}, "unknown fact"),
        ({"condition": "foo > 1"}, "unknown name 'foo'"),
        ({"condition": "ev.type =="}, "not a valid expression"),
        ({"id": "ZZ-01"}, "must be FAMILY-NN"),
        ({"severity": "urgent"}, "severity must be one of"),
        ({"regulations": [{"ref": "x", "confidence": "sure"}]}, "regulations.0 needs ref and confidence"),
        ({"triggers": ["prescription.made"]}, "prescription.made unknown"),
        ({"tests": [{"name": "a", "expect": "match"}]}, "no_match"),
        ({"title": {"zh": "只有中文"}}, "title needs both zh and en"),
        ({"check": "window"}, "window needs hours"),
        ({"colour": "red"}, "unknown keys colour"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(over, message):
    with pytest.raises(RuleError, match=message):
        parse_rule(_raw(**over), "x.yaml")


def test_duplicate_ids_refused(tmp_path):
    import yaml

    for name in ("RX-98", "RX-97"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(_raw(id="RX-98")), encoding="utf-8")
    with pytest.raises(RuleError):
        load_rules(tmp_path)


def test_cli_rules_test_passes(capsys):
    from medrisk.cli import main

    assert main(["trails", "rules", "test"]) == 0
    assert "51/51 trail rule test cases pass (18 rules)" in capsys.readouterr().out
