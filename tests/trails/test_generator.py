"""The generator and the checker together, in memory: every injected violation is found and no clean
flow is flagged, at a realistic mix (the benchmark and the API tests use the same generator)."""

from __future__ import annotations

import pytest

from medrisk.trails.generator import INJECT, Institution, apply_recipe, generate
from medrisk.trails.rules import load_rules
from medrisk.trails.testing import run_events

RULES = load_rules()


def _found(hits):
    out: dict[str, set[str]] = {}
    for rid, key in hits:
        out.setdefault(key, set()).add(rid)
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_every_injection_found_no_clean_flow_flagged(seed):
    g = generate(Institution.make(f"G{seed}"), 1500, {rid: 0.02 for rid in INJECT}, seed=seed)
    found = _found(run_events(RULES, g.events))
    assert len(g.injected) > 400
    missed = {k: v - found.get(k, set()) for k, v in g.injected.items() if not v <= found.get(k, set())}
    assert missed == {}
    flagged = {k: found[k] for k in g.clean if k in found}
    assert flagged == {}
    assert {r for v in g.injected.values() for r in v} == set(INJECT)  # each rule was exercised


def test_every_rule_has_an_injection_recipe():
    assert set(INJECT) == {r.id for r in RULES.rules}


def test_zero_share_is_all_clean():
    g = generate(Institution.make("Z"), 300, {}, seed=5)
    assert g.injected == {}
    assert run_events(RULES, g.events) == []


def test_bad_shares_refused():
    with pytest.raises(ValueError, match="no injection recipe"):
        generate(Institution.make("Z"), 10, {"RX-77": 0.1})
    with pytest.raises(ValueError, match="more than 1"):
        generate(Institution.make("Z"), 10, {"RX-01": 0.6, "RX-02": 0.6})
    with pytest.raises(ValueError, match="not in the flow"):
        apply_recipe({"set": {"order.created": {"t": 1}}})
