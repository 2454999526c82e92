"""Evaluate rules over an indicator document.

Rules without ``each`` fire when ``condition`` is true; their evidence is the list
returned by ``evidence`` or, when absent, the indicator values the condition read.
Rules with ``each`` evaluate ``(each).filter(item, condition)`` in one CEL call and
fire once, with one evidence entry per matching item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import cel

from medrisk.rules.model import Evidence, Finding, Rule

MAX_EVIDENCE = 50  # per finding; the count is kept in the report


@dataclass
class _Compiled:
    main: Any
    evidence: Any | None
    refs: list[str]


@dataclass
class Evaluation:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Engine:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self._compiled: dict[str, _Compiled] = {}
        for r in rules:
            main = f"({r.each}).filter(item, {r.condition})" if r.each else r.condition
            self._compiled[r.id] = _Compiled(
                cel.compile(main),
                cel.compile(r.evidence) if r.evidence else None,
                _paths(r.condition),
            )

    def evaluate(self, doc: dict[str, Any]) -> Evaluation:
        ctx = cel.Context(variables=doc)
        out = Evaluation()
        for rule in self.rules:
            try:
                ev = self._run(rule, ctx, doc)
            except (KeyError, TypeError, RuntimeError, ValueError) as exc:
                out.errors.append(f"{rule.id}: evaluation failed: {exc}")
                continue
            if ev is not None:
                out.findings.append(Finding(rule=rule, evidence=ev))
        return out

    def _run(self, rule: Rule, ctx: Any, doc: dict[str, Any]) -> list[Evidence] | None:
        comp = self._compiled[rule.id]
        result = comp.main.execute(ctx)
        if rule.each:
            if not result:
                return None
            return [to_evidence(item, rule) for item in result[:MAX_EVIDENCE]]
        if result is not True:
            return None
        if comp.evidence is not None:
            items = comp.evidence.execute(ctx) or []
            if not isinstance(items, list):
                items = [items]
            return [to_evidence(item, rule) for item in items[:MAX_EVIDENCE]] or [Evidence()]
        return [Evidence(value=f"{p} = {_fmt(_lookup(doc, p))}") for p in comp.refs] or [Evidence()]


def to_evidence(item: Any, rule: Rule) -> Evidence:
    if not isinstance(item, dict):
        return Evidence(value=str(item))
    loc = item.get("location")
    if not isinstance(loc, dict):
        locs = item.get("locations")
        loc = locs[0] if isinstance(locs, list) and locs and isinstance(locs[0], dict) else {}
    value = None
    for key in ("redacted", "value", "name", "api", "path", "class", "field", "kind"):
        if item.get(key):
            value = str(item[key])
            break
    if "api" in item and item.get("args"):
        shown = ", ".join("?" if a is None else repr(a) for a in item["args"])
        value = f"{item['api']}({shown})"
    if rule.message is not None:
        value = _format(rule.message.en, item) or value
    return Evidence(
        file=loc.get("file") or item.get("file") or item.get("path"),
        cls=loc.get("class"),
        method=loc.get("method"),
        line=loc.get("line"),
        value=value,
    )


def _format(template: str, item: dict[str, Any]) -> str | None:
    try:
        return template.format(**{k: v for k, v in item.items() if isinstance(v, str | int | float)})
    except (KeyError, IndexError, ValueError):
        return None


_PATH = re.compile(
    r"(?<![\w.\"'])((?:container|manifest|network_security_config|signing|code|strings|native|"
    r"resources|sdks|file)(?:\.[a-z_][a-z0-9_]*\b(?!\s*\())+)"
)


def _paths(expr: str) -> list[str]:
    stripped = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", expr)
    seen: list[str] = []
    for m in _PATH.finditer(stripped):
        p = m.group(1)
        if p not in seen:
            seen.append(p)
    return seen


def _lookup(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return f"[{len(value)} items]" if len(value) > 5 else str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)
