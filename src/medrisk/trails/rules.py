"""Trail rules: YAML data (``trails/rules/<ID>.yaml``), loaded, checked and compiled once.

A rule is the scanner's rule format (id, bilingual title and remediation, severity,
regulation references with confidence marks, condition, must-match / must-not-match tests),
applied to business trails instead of indicators. Two kinds:

* ``check: stream`` — evaluated when an event of a type in ``triggers`` arrives, against the state so
  far (``rx`` the prescription, ``visit`` the consultation, ``staff`` the actor's roster entry,
  ``ev`` the event itself), *before* the event is applied;
* ``check: window`` — evaluated by the periodic sweep once ``window.hours`` have passed since the
  case opened (``now`` and ``window``, in seconds, are available).

Conditions are a small expression language with Python syntax: ``and or not``, comparisons,
``in``, ``is None``, ``+ - * /``, literals and ``var.field`` — no calls, no subscripts, no
private names. Why not CEL as in the scanner: one CEL evaluation costs ~56 µs here, and the
ingestion budget (5,000 events/s on two shared cores, with hashing, signatures and the
database) leaves ~10 µs per rule; these expressions compile to Python bytecode (~1 µs).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from medrisk.trails.schema import TYPES

RULES_DIR = Path(__file__).resolve().parent / "rules"
SEVERITIES = ("critical", "high", "medium", "low")
CONFIDENCE = ("V-primary", "V-secondary", "MEM")
FAMILIES = ("RX", "DX", "DOC", "EMR", "PAT")

# the facts a condition may use, per variable (the loader rejects anything else: typos fail loudly)
FACTS: dict[str, frozenset[str]] = {
    "ev": frozenset(
        {
            "type",
            "at",
            "actor_ref",
            "actor_role",
            "actor_kind",
            "patient_ref",
            "patient_age",
            "patient_real_name",
            "visit",
            "offline_diagnosis",
            "items_count",
            "max_days",
            "restricted_items",
            "valid_days",
            "validity_note",
            "emergency",
            "chronic",
            "extension_reason",
            "guardian_present",
            "specialist_present",
            "result",
        }
    ),
    "rx": frozenset(
        {
            "exists",
            "created_at",
            "prescriber",
            "consultation",
            "valid_days",
            "signed_at",
            "signer",
            "review",
            "reviewed_at",
            "reviewer",
            "dispensed_count",
            "dispensed_at",
            "delivered_at",
            "received_at",
            "cancelled_at",
        }
    ),
    "visit": frozenset(
        {
            "exists",
            "visit",
            "doctor",
            "patient",
            "started_at",
            "ended_at",
            "terminated_at",
            "offline_diagnosis",
            "record_at",
        }
    ),
    "staff": frozenset({"registered", "role", "practice_years", "real_name_verified"}),
}
CONSTANTS = {"HOUR": 3600, "DAY": 86400}
WINDOW_VARS = {"now", "window"}
_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Is,
    ast.IsNot,
    ast.In,
    ast.NotIn,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Constant,
    ast.Tuple,
    ast.List,
)


class RuleError(ValueError):
    """A rule file that is not valid; the message names the file and the problem."""


class Facts(dict[str, Any]):
    """A dict whose keys read as attributes; a missing fact is None (conditions guard with ``is None``)."""

    __getattr__ = dict.get  # type: ignore[assignment]


@dataclass(frozen=True)
class Text:
    zh: str
    en: str

    def to_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


@dataclass
class TrailRule:
    id: str
    title: Text
    description: Text
    severity: str
    regulations: list[dict[str, str]]
    check: str  # stream | window
    condition: str
    remediation: Text
    tests: list[dict[str, Any]]
    on: tuple[str, ...] = ()
    case: str = "prescription"  # the case a violation belongs to
    window_hours: float | None = None
    window_from: str | None = None
    source: str = ""
    code: Any = field(default=None, repr=False)

    @property
    def family(self) -> str:
        return self.id.split("-", 1)[0]

    def matches(self, env: dict[str, Any]) -> bool:
        try:
            return bool(self.code(env))
        except TypeError:
            return False  # a comparison with a missing fact: the rule's guards decide, never a crash

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title.to_dict(),
            "description": self.description.to_dict(),
            "severity": self.severity,
            "check": self.check,
            "on": list(self.on),
            "case": self.case,
            "window_hours": self.window_hours,
            "regulations": list(self.regulations),
            "remediation": self.remediation.to_dict(),
        }


def compile_condition(text: str, allowed: set[str], where: str) -> Any:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise RuleError(f"{where}: condition is not a valid expression: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise RuleError(f"{where}: condition may not use {type(node).__name__} (no calls, no subscripts)")
        if isinstance(node, ast.Name) and node.id not in allowed:
            raise RuleError(f"{where}: unknown name {node.id!r} (known: {', '.join(sorted(allowed))})")
        if isinstance(node, ast.Attribute):
            if not isinstance(node.value, ast.Name) or node.value.id not in FACTS:
                raise RuleError(f"{where}: attributes only on {', '.join(FACTS)}")
            if node.attr not in FACTS[node.value.id]:
                known = ", ".join(sorted(FACTS[node.value.id]))
                raise RuleError(f"{where}: unknown fact {node.value.id}.{node.attr} (known: {known})")
    return _closure(tree.body)


_CMP: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_BIN: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _closure(node: ast.AST) -> Callable[[dict[str, Any]], Any]:
    """The validated expression as nested closures: evaluated without ``eval``, as fast as bytecode
    for these small conditions, and unable to do anything the whitelist above does not name."""
    if isinstance(node, ast.Constant):
        value = node.value
        return lambda env: value
    if isinstance(node, ast.Name):
        name = node.id
        return lambda env: env[name]
    if isinstance(node, ast.Attribute):
        base, attr = _closure(node.value), node.attr
        return lambda env: getattr(base(env), attr)
    if isinstance(node, ast.Tuple | ast.List):
        items = [_closure(e) for e in node.elts]
        return lambda env: tuple(f(env) for f in items)
    if isinstance(node, ast.BoolOp):
        parts = [_closure(v) for v in node.values]
        if isinstance(node.op, ast.And):

            def _and(env: dict[str, Any]) -> Any:
                value: Any = True
                for f in parts:
                    value = f(env)
                    if not value:
                        return value
                return value

            return _and

        def _or(env: dict[str, Any]) -> Any:
            value: Any = False
            for f in parts:
                value = f(env)
                if value:
                    return value
            return value

        return _or
    if isinstance(node, ast.UnaryOp):
        operand = _closure(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not operand(env)
        return lambda env: -operand(env)
    if isinstance(node, ast.BinOp):
        left, right, op = _closure(node.left), _closure(node.right), _BIN[type(node.op)]
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.Compare):
        first = _closure(node.left)
        chain = [(_CMP[type(o)], _closure(c)) for o, c in zip(node.ops, node.comparators)]

        def _compare(env: dict[str, Any]) -> bool:
            left = first(env)
            for op, f in chain:
                right = f(env)
                if not op(left, right):
                    return False
                left = right
            return True

        return _compare
    raise RuleError(f"condition may not use {type(node).__name__}")  # unreachable after validation


def _text(raw: Any, key: str, where: str) -> Text:
    v = raw.get(key)
    if not isinstance(v, dict) or not str(v.get("zh") or "").strip() or not str(v.get("en") or "").strip():
        raise RuleError(f"{where}: {key} needs both zh and en")
    return Text(str(v["zh"]).strip(), str(v["en"]).strip())


def parse_rule(raw: Any, where: str) -> TrailRule:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a rule file is one mapping")
    known = {
        "id",
        "title",
        "description",
        "severity",
        "regulations",
        "check",
        "triggers",
        "case",
        "window",
        "condition",
        "remediation",
        "tests",
    }
    extra = sorted(str(k) for k in set(raw) - known)
    if extra:
        raise RuleError(f"{where}: unknown keys {', '.join(extra)}")
    rid = str(raw.get("id") or "")
    family, _, num = rid.partition("-")
    if family not in FAMILIES or not num.isdigit() or len(num) != 2:
        raise RuleError(f"{where}: id {rid!r} must be FAMILY-NN with a family of {', '.join(FAMILIES)}")
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        raise RuleError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    regs = raw.get("regulations")
    if not isinstance(regs, list) or not regs:
        raise RuleError(f"{where}: at least one regulation reference is required")
    for i, reg in enumerate(regs):
        if not isinstance(reg, dict) or not reg.get("ref") or reg.get("confidence") not in CONFIDENCE:
            raise RuleError(f"{where}: regulations.{i} needs ref and confidence ({', '.join(CONFIDENCE)})")
    check = raw.get("check")
    case = raw.get("case", "prescription")
    if case not in ("prescription", "consultation"):
        raise RuleError(f"{where}: case must be prescription or consultation")
    allowed = set(FACTS) | set(CONSTANTS)
    on: tuple[str, ...] = ()
    hours = start = None
    if check == "stream":
        on = tuple(raw.get("triggers") or ())
        bad = [str(t) for t in on if t not in TYPES]
        if not on or bad:
            raise RuleError(f"{where}: triggers must list event types ({', '.join(bad) or 'empty'} unknown)")
    elif check == "window":
        w = raw.get("window")
        if not isinstance(w, dict) or not isinstance(w.get("hours"), int | float) or w["hours"] <= 0:
            raise RuleError(f"{where}: window needs hours > 0")
        hours, start = float(w["hours"]), str(w.get("from") or "")
        state_var = "rx" if case == "prescription" else "visit"
        if start not in FACTS[state_var]:
            raise RuleError(f"{where}: window.from must be a time fact of {state_var}")
        allowed |= WINDOW_VARS
    else:
        raise RuleError(f"{where}: check must be stream or window")
    condition = str(raw.get("condition") or "")
    if not condition.strip():
        raise RuleError(f"{where}: condition is required")
    tests = raw.get("tests")
    if not isinstance(tests, list) or not any(t.get("expect") == "match" for t in tests if isinstance(t, dict)):
        raise RuleError(f"{where}: tests need at least one 'expect: match' case")
    if not any(t.get("expect") == "no_match" for t in tests if isinstance(t, dict)):
        raise RuleError(f"{where}: tests need at least one 'expect: no_match' case")
    rule = TrailRule(
        id=rid,
        title=_text(raw, "title", where),
        description=_text(raw, "description", where),
        severity=severity,
        regulations=[{str(k): str(v) for k, v in r.items()} for r in regs],
        check=check,
        condition=condition,
        remediation=_text(raw, "remediation", where),
        tests=tests,
        on=on,
        case=case,
        window_hours=hours,
        window_from=start,
        source=where,
    )
    rule.code = compile_condition(condition, allowed, f"{where}: {rid}")
    return rule


@dataclass
class RuleSet:
    rules: list[TrailRule]
    by_type: dict[str, list[TrailRule]] = field(default_factory=dict)
    windows: list[TrailRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = [r.id for r in self.rules]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise RuleError(f"duplicate rule ids: {', '.join(dup)}")
        for r in self.rules:
            if r.check == "window":
                self.windows.append(r)
            for t in r.on:
                self.by_type.setdefault(t, []).append(r)

    def get(self, rid: str) -> TrailRule | None:
        return next((r for r in self.rules if r.id == rid), None)


def load_rules(directory: Path | None = None) -> RuleSet:
    d = directory or RULES_DIR
    rules = []
    for path in sorted(Path(d).glob("*.yaml")):
        try:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present, always a safe loader
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
        except yaml.YAMLError as exc:
            raise RuleError(f"{path.name}: not valid YAML: {exc}") from None
        rule = parse_rule(raw, path.name)
        if path.stem != rule.id:
            raise RuleError(f"{path.name}: the file name must be the rule id ({rule.id}.yaml)")
        rules.append(rule)
    if not rules:
        raise RuleError(f"no trail rules in {d}")
    return RuleSet(rules)


@cache
def default_rules() -> RuleSet:
    return load_rules()
