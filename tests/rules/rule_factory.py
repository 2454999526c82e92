"""A minimal rule for engine tests: only the condition (and ``each``) vary."""

from __future__ import annotations

from medrisk.rules.model import Rule, Text


def make_rule(rid: str, condition: str, each: str | None = None) -> Rule:
    t = Text(zh="测试", en="test")
    return Rule(
        id=rid,
        title=t,
        description=t,
        severity="low",
        category="platform.config",
        masvs="MASVS-CODE-1",
        maswe=None,
        cwe=["CWE-1"],
        condition=condition,
        remediation=t,
        tests=[],
        each=each,
    )
