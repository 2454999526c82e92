from __future__ import annotations

import datetime as dt

import pytest

from medrisk.rules.model import Evidence, Finding, Rule, Text
from medrisk.rules.suppress import Suppression, SuppressionError, apply, load_suppressions


def _rule(rid="MAN-010"):
    t = Text("中", "en")
    return Rule(rid, t, t, "medium", "platform.components", "MASVS-PLATFORM-1", None, ["CWE-926"], "true", t, [])


def test_rule_wide_suppression_keeps_finding_marked():
    f = Finding(_rule(), [Evidence(cls="a.B")])
    out = apply([f], [Suppression("MAN-010", "accepted by the hospital")])
    assert len(out) == 1 and out[0].suppressed and out[0].suppression_reason == "accepted by the hospital"


def test_location_suppression_splits():
    f = Finding(_rule(), [Evidence(value="activity com.x.Main"), Evidence(value="service com.x.Sync")])
    out = apply([f], [Suppression("MAN-010", "launcher", location="com.x.Main")])
    assert [(o.suppressed, len(o.evidence)) for o in out] == [(False, 1), (True, 1)]


def test_expired_suppression_no_longer_applies():
    f = Finding(_rule(), [Evidence()])
    out = apply([f], [Suppression("MAN-010", "r", expires=dt.date(2020, 1, 1))], today=dt.date(2026, 1, 1))
    assert not out[0].suppressed


def test_reason_is_mandatory(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("suppressions:\n  - rule: MAN-010\n", encoding="utf-8")
    with pytest.raises(SuppressionError, match="needs a non-empty 'reason'"):
        load_suppressions(p)
