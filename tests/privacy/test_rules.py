"""PRIV-* rules: count, categories, and regulation citations with the research file's marks."""

from __future__ import annotations

import re

import pytest

from medrisk.privacy.policy import BUILTIN_CHECKS, load_vocabulary
from medrisk.risk.scoring import load_model
from medrisk.rules import testing
from medrisk.rules.loader import load_library

PRIV = [r for r in load_library() if r.family == "PRIV"]
CONFIDENCE = {"V-primary", "V-secondary", "MEM"}
# Items of 《认定方法》 whose wording regulations.md marks as verified from secondary copies;
# every other item (三.5-7, 三.9, 四.*, 五.*, 六.4) is from memory [MEM].
METHOD_VERIFIED = {"一.1", "一.2", "一.3", "一.4", "二.1", "二.2", "二.3", "二.4", "三.1", "三.2", "三.3", "三.4",
                   "三.8", "六.1", "六.2", "六.3", "六.5"}  # fmt: skip


def test_enough_rules_and_all_in_privacy_categories():
    assert len(PRIV) >= 12
    model = load_model()
    for r in PRIV:
        assert r.category.startswith("privacy.") and r.category in model.sub_index, r.id
    assert testing.lint(PRIV, model) == []
    assert testing.run_tests(PRIV) == []


@pytest.mark.parametrize("rule", PRIV, ids=[r.id for r in PRIV])
def test_every_rule_cites_clauses_with_confidence(rule):
    assert rule.regulations, rule.id
    for reg in rule.regulations:
        assert reg.get("ref") and reg.get("clause") and reg.get("confidence") in CONFIDENCE, (rule.id, reg)
        if reg["ref"].startswith("App违法违规收集使用个人信息行为认定方法"):
            items = re.findall(r"[一二三四五六]\.\d", reg["clause"])
            assert items, (rule.id, reg)
            want = "V-secondary" if all(i in METHOD_VERIFIED for i in items) else "MEM"
            assert reg["confidence"] == want, (rule.id, reg)
        if reg["ref"] == "个人信息保护法" or reg["ref"].startswith("网络数据安全管理条例"):
            assert reg["confidence"] == "V-primary", (rule.id, reg)
    assert any(t.expect for t in rule.tests) and any(not t.expect for t in rule.tests)


def test_checklist_rules_exist():
    ids = {r.id for r in PRIV}
    linked = {c.get("rule") for c in load_vocabulary().checks} | {c["rule"] for c in BUILTIN_CHECKS.values()}
    linked |= {"PRIV-011", "PRIV-012", "PRIV-013", "PRIV-016", "PRIV-017"}  # analyse.technical_checks
    assert linked - {None} <= ids
