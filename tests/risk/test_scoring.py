"""Risk model properties (hypothesis): monotonic, capped, deterministic, explained."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from medrisk.risk.scoring import GRADES, load_model, score
from medrisk.rules.model import SEVERITIES, Evidence, Finding, Rule, Text

MODEL = load_model()
SUBS = sorted(MODEL.sub_index)
T = Text("中", "en")


def _finding(i: int, sev: str, sub: str, n: int) -> Finding:
    rule = Rule(f"TST-{i:03d}", T, T, sev, sub, "MASVS-CODE-1", None, ["CWE-1"], "true", T, [])
    return Finding(rule, [Evidence(value=str(k)) for k in range(n)])


findings_st = st.lists(
    st.tuples(st.sampled_from(SEVERITIES), st.sampled_from(SUBS), st.integers(1, 8)), max_size=40
).map(lambda xs: [_finding(i, s, c, n) for i, (s, c, n) in enumerate(xs)])


@settings(max_examples=300, deadline=None)
@given(findings_st, st.sampled_from(SEVERITIES), st.sampled_from(SUBS), st.integers(1, 8))
def test_adding_a_finding_never_raises_score_or_grade(fs, sev, sub, n):
    before = score(MODEL, fs)
    after = score(MODEL, fs + [_finding(999, sev, sub, n)])
    assert after.score <= before.score + 1e-9
    assert GRADES.index(after.grade) >= GRADES.index(before.grade)


@settings(max_examples=200, deadline=None)
@given(findings_st)
def test_removing_a_finding_never_lowers_score(fs):
    if not fs:
        return
    full = score(MODEL, fs)
    less = score(MODEL, fs[1:])
    assert less.score >= full.score - 1e-9


@settings(max_examples=200, deadline=None)
@given(findings_st)
def test_caps_and_grade_bands(fs):
    s = score(MODEL, fs)
    sevs = {f.severity for f in fs}
    if "critical" in sevs:
        assert s.grade == "C"
    elif "high" in sevs:
        assert s.grade in ("B", "C")
    assert 0 <= s.score <= 100
    band = "A" if round(s.score, 1) >= 80 else "B" if round(s.score, 1) > 60 else "C"
    assert s.grade_by_score == band
    assert GRADES.index(s.grade) >= GRADES.index(band)


@settings(max_examples=200, deadline=None)
@given(findings_st)
def test_breakdown_sums_and_costs_explain_the_deduction(fs):
    s = score(MODEL, fs)
    assert abs(sum(c["deduction"] for c in s.categories) - s.deduction) < 0.01 * len(s.categories) + 1e-9
    assert abs(100 - s.deduction - s.score) < 1e-9
    assert abs(sum(f.cost for f in fs) - s.deduction) < 1e-6
    for c in s.categories:
        assert 0 <= c["deduction"] <= c["weight"] + 1e-9


@settings(max_examples=100, deadline=None)
@given(findings_st)
def test_deterministic_and_order_independent(fs):
    a = score(MODEL, fs).to_dict()
    b = score(MODEL, list(reversed(fs))).to_dict()
    assert a == b


def test_suppressed_findings_cost_nothing():
    f = _finding(1, "critical", "network.tls", 1)
    f.suppressed = True
    s = score(MODEL, [f])
    assert s.score == 100 and s.grade == "A" and f.cost == 0


def test_white_paper_bands():
    assert MODEL.grade_for(80) == "A" and MODEL.grade_for(79.9) == "B"
    assert MODEL.grade_for(60.1) == "B" and MODEL.grade_for(60) == "C"


def test_one_high_caps_at_b_even_with_high_score():
    s = score(MODEL, [_finding(1, "high", "platform.config", 1)])
    assert s.grade_by_score == "A" and s.grade == "B" and s.capped_by == "high"
