"""Rule validation names the file and line of every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from medrisk.rules.loader import RuleError, load_library

GOOD = """\
id: TST-001
title: {zh: 测试规则, en: Test rule}
description: {zh: 说明, en: Description}
severity: low
category: platform.config
masvs: MASVS-CODE-1
cwe: [CWE-1]
condition: manifest.min_sdk != null && manifest.min_sdk < 21
remediation: {zh: 修复, en: Fix}
tests:
  - {expect: match, indicators: {manifest: {min_sdk: 19}}}
  - {expect: no_match, indicators: {manifest: {min_sdk: 26}}}
"""


def _problems(tmp_path: Path, text: str, name: str = "r.yaml") -> list[str]:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as exc:
        load_library([tmp_path])
    return exc.value.problems


def test_good_extra_rule_loads(tmp_path):
    (tmp_path / "r.yaml").write_text(GOOD, encoding="utf-8")
    rules = load_library([tmp_path])
    assert "TST-001" in {r.id for r in rules}


def test_unknown_indicator_named_with_line(tmp_path):
    probs = _problems(tmp_path, GOOD.replace("manifest.min_sdk < 21", "manifest.min_sdkk < 21"))
    assert len(probs) == 1
    assert "r.yaml:8:" in probs[0] and "manifest.min_sdkk" in probs[0]


def test_unknown_item_field(tmp_path):
    text = GOOD.replace(
        "condition: manifest.min_sdk != null && manifest.min_sdk < 21",
        "each: manifest.components\ncondition: item.exportd",
    )
    probs = _problems(tmp_path, text)
    assert any("item.exportd" in p for p in probs)


def test_cel_syntax_error(tmp_path):
    probs = _problems(tmp_path, GOOD.replace("manifest.min_sdk < 21", "manifest.min_sdk <"))
    assert any("r.yaml:8:" in p and "CEL syntax error" in p for p in probs)


def test_python_is_not_accepted(tmp_path):
    probs = _problems(
        tmp_path, GOOD.replace("manifest.min_sdk != null && manifest.min_sdk < 21", "__import__('os').system('id')")
    )
    assert probs, "a Python expression must not load as a rule"


def test_duplicate_id(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    probs = _problems(tmp_path, GOOD, "b.yaml")
    assert any("duplicate rule id TST-001" in p for p in probs)


def test_needs_negative_case(tmp_path):
    text = GOOD.replace("  - {expect: no_match, indicators: {manifest: {min_sdk: 26}}}\n", "")
    probs = _problems(tmp_path, text)
    assert any("r.yaml:10:" in p and "no_match" in p for p in probs)


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("severity: low", "severity: severe", "severity must be one of"),
        ("masvs: MASVS-CODE-1", "masvs: MSTG-CODE-1", "not a MASVS v2 control id"),
        ("cwe: [CWE-1]", "cwe: [79]", "CWE-<n>"),
        ("title: {zh: 测试规则, en: Test rule}", "title: {en: Test rule}", "'title' needs non-empty 'zh' and 'en'"),
    ],
)
def test_schema_errors(tmp_path, field, value, needle):
    probs = _problems(tmp_path, GOOD.replace(field, value))
    assert any(needle in p for p in probs), probs


def test_yaml_syntax_error_line(tmp_path):
    probs = _problems(tmp_path, GOOD.replace("severity: low", "severity: [low"))
    assert probs and "r.yaml:" in probs[0]


def test_failing_own_case_is_reported(tmp_path):
    from medrisk.rules import testing

    (tmp_path / "r.yaml").write_text(GOOD.replace("min_sdk: 19}", "min_sdk: 25}"), encoding="utf-8")
    rules = [r for r in load_library([tmp_path]) if r.id == "TST-001"]
    probs = testing.run_tests(rules)
    assert len(probs) == 1 and "expected match, got no match" in probs[0]
