"""Evaluate rules over an indicator document.

Rules without ``each`` fire when ``condition`` is true; their evidence is the list
returned by ``evidence`` or, when absent, the indicator values the condition read.
Rules with ``each`` fire once, with one evidence entry per item of the ``each`` list
for which ``condition`` holds.

What the engine derives from a rule's text (its *plan*: guards, API sets, rewritten
expressions) depends on the text alone, so the rule cache (rules/loader.py) stores it;
CEL programs are compiled on first use, so a scan compiles only the conditions it reaches.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from medrisk.analysis import skeleton
from medrisk.rules import celexpr as cel
from medrisk.rules.model import Evidence, Finding, Rule

MAX_EVIDENCE = 50  # per finding; the count is kept in the report
PLAN_FORMAT = 2  # bump when Plan or its derivation changes (part of the rule cache key)

# what a CEL evaluation raises: LookupError covers a missing key (KeyError) and an index past
# a list's end (IndexError)
_ERRORS = (LookupError, TypeError, RuntimeError, ValueError)


@dataclass
class Plan:
    """A rule's evaluation plan: plain data derived from its text (cacheable)."""

    main: str  # the condition, without the guards, `code.calls` macros narrowed
    guard: str | None = None  # the conjuncts of an `each` rule that do not read `item`
    evidence: str | None = None  # the evidence expression, narrowed like `main`
    refs: list[str] = field(default_factory=list)  # indicator paths the condition reads
    api_filter: str | None = None  # CEL over `item.api` only, for `each: code.calls` rules
    api_set: list[str] | None = None  # `each: code.calls`: the only APIs whose items can match
    each_path: str | None = None  # `each` as a plain dotted path into the document
    each_expr: str | None = None  # `each` as a CEL expression otherwise
    item_only: bool = False  # the condition reads `item` and nothing else
    narrowed: dict[str, list[str]] = field(default_factory=dict)  # variable -> the APIs of its calls
    rest: str | None = None  # `main` without the conjuncts `api_filter` already decided ("true" if none remain)

    def to_data(self) -> list[Any]:
        return [
            self.main,
            self.guard,
            self.evidence,
            self.refs,
            self.api_filter,
            self.api_set,
            self.each_path,
            self.each_expr,
            self.item_only,
            self.narrowed,
            self.rest,
        ]

    @classmethod
    def from_data(cls, data: list[Any]) -> Plan:
        return cls(*data)


_ITEM = re.compile(r"(?<![\w.])item\b")
_SIMPLE_PATH = re.compile(r"^[a-z_]+(\.[a-z_][a-z0-9_]*)*$")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def strip_strings(expr: str) -> str:
    """The expression with its string literals emptied (so names inside strings are not read)."""
    return _STRING.sub("''", expr)


def _mask(expr: str) -> str:
    """The expression with the inside of its string literals blanked, positions kept."""
    return _STRING.sub(lambda m: m.group(0)[0] + "_" * (len(m.group(0)) - 2) + m.group(0)[-1], expr)


def _split_top(expr: str, op: str) -> list[str]:
    """Split at a top-level operator (outside parentheses, brackets and strings)."""
    masked = _mask(expr)
    parts, depth, start, i = [], 0, 0, 0
    while i < len(masked):
        ch = masked[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and masked.startswith(op, i):
            parts.append(expr[start:i])
            start = i + len(op)
            i += len(op) - 1
        i += 1
    parts.append(expr[start:])
    return [p.strip() for p in parts]


def _conjuncts(expr: str) -> list[str]:
    """Split a CEL expression at its top-level `&&` (outside parentheses, brackets and strings)."""
    return [p for p in _split_top(expr, "&&") if p]


def _closing(masked: str, open_at: int) -> int:
    """Index of the bracket closing the one at ``open_at`` (in a masked expression), or -1."""
    depth = 0
    for i in range(open_at, len(masked)):
        if masked[i] in "([{":
            depth += 1
        elif masked[i] in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _unwrap(expr: str) -> str:
    expr = expr.strip()
    while expr.startswith("(") and _closing(_mask(expr), 0) == len(expr) - 1:
        expr = expr[1:-1].strip()
    return expr


_LITERAL = re.compile(r"'([^'\\]*)'|\"([^\"\\]*)\"")


def _literals(text: str) -> list[str] | None:
    out = []
    for part in _split_top(text, ","):
        if not part:
            continue
        m = _LITERAL.fullmatch(part)
        if m is None:
            return None
        out.append(m.group(1) if m.group(1) is not None else m.group(2))
    return out


def api_set(expr: str, var: str) -> frozenset[str] | None:
    """The API names outside which ``expr`` is false for a call ``var``, or None if unknown.

    Sound by construction: an `==`/`in` test on ``var.api`` is false for any other name, a
    conjunction with a false conjunct is false in CEL (even when another conjunct is an
    error), and a disjunction is false when all its parts are. So dropping the calls to
    other APIs cannot change a result: an `exists`/`filter` over them sees only `false`.
    """
    expr = _unwrap(expr)
    masked = _mask(expr)
    if "?" in masked or "'''" in expr or '"""' in expr:
        return None  # a conditional, or literals this reader does not handle
    alternatives = _split_top(expr, "||")
    if len(alternatives) > 1:
        sets = [api_set(a, var) for a in alternatives]
        return None if any(s is None for s in sets) else frozenset().union(*sets)  # type: ignore[misc]
    conjuncts = _split_top(expr, "&&")
    if len(conjuncts) > 1:
        known = [s for c in conjuncts if (s := api_set(c, var)) is not None]
        return frozenset.intersection(*known) if known else None
    m = re.fullmatch(rf"{re.escape(var)}\.api\s*==\s*(.+)", expr, re.DOTALL)
    if m:
        lits = _literals(m.group(1))
        return frozenset(lits) if lits is not None and len(lits) == 1 else None
    m = re.fullmatch(rf"{re.escape(var)}\.api\s+in\s+\[(.*)\]", expr, re.DOTALL)
    if m and _closing(_mask(expr), expr.index("[", m.start(1) - 1)) == len(expr) - 1:
        lits = _literals(m.group(1))
        return frozenset(lits) if lits is not None else None
    return None


_MACRO = re.compile(r"(?<![\w.])code\s*\.\s*calls\s*\.\s*(exists|filter|exists_one)\s*\(")


def narrow_calls(expr: str, narrowed: dict[str, list[str]]) -> str:
    """Rewrite ``code.calls.exists(c, ...)``/``filter``/``exists_one`` over a known API set to a
    variable holding only the calls to those APIs (bound per scan by the engine).

    A rule over the call sites then reads a handful of items instead of every call, and the
    document no longer has to carry ``code.calls`` into CEL at all (the largest list).
    """
    if "'''" in expr or '"""' in expr:
        return expr
    out, last = [], 0
    masked = _mask(expr)
    for m in _MACRO.finditer(masked):
        if m.start() < last:
            continue  # inside a macro already rewritten
        end = _closing(masked, m.end() - 1)
        if end < 0:
            return expr
        args = _split_top(expr[m.end() : end], ",")
        if len(args) != 2 or not re.fullmatch(r"[A-Za-z_]\w*", args[0]):
            continue
        apis = api_set(args[1], args[0])
        if apis is None:
            continue
        ordered = sorted(apis)
        name = "_calls_" + hashlib.sha256("\n".join(ordered).encode()).hexdigest()[:12]
        narrowed[name] = ordered
        dot = masked.index(".", masked.index("calls", m.start()))
        out.append(expr[last : m.start()] + name)
        last = dot
    out.append(expr[last:])
    return "".join(out)


_ITEM_FIELD = re.compile(r"\bitem\.(\w+)")
_ROOTS = "|".join(sorted(skeleton.ROOTS))  # the indicator document's top-level names
_ROOT = re.compile(rf"(?<![\w.'\"])({_ROOTS}|same_method_calls)\b")
_RAW_CALLS = re.compile(r"(?<![\w.'\"])code\b(?!\s*\.\s*(?!calls\b)[A-Za-z_])")


def api_prefilter(rule: Rule) -> Any | None:
    """The part of a `code.calls` rule's condition that depends on the API name alone.

    Regex tests on ``item.api`` cost a regex compilation per call site in CEL; evaluating
    them once per distinct API name (memoised) and narrowing the list first gives the same
    result many times faster.
    """
    text = _api_prefilter_text(rule)
    return cel.compile(text) if text else None


def _api_only(conjuncts: list[str]) -> list[str]:
    """The conjuncts that read ``item.api`` and nothing else."""
    return [c for c in conjuncts if set(_ITEM_FIELD.findall(c)) == {"api"} and not _ROOT.search(strip_strings(c))]


def _api_prefilter_text(rule: Rule) -> str | None:
    if (rule.each or "").strip() != "code.calls":
        return None
    only_api = _api_only(_conjuncts(rule.condition))
    return " && ".join(f"({c})" for c in only_api) if only_api else None


def plan_rule(rule: Rule) -> Plan:
    """Derive a rule's plan from its text (pure; the rule cache stores the result)."""
    each = (rule.each or "").strip()
    condition, guard = rule.condition, None
    if each:
        # conjuncts that do not read `item` are document-level guards: evaluated once per scan
        parts = _conjuncts(rule.condition)
        guards = [c for c in parts if not _ITEM.search(strip_strings(c))]
        if guards and len(guards) < len(parts):
            guard = " && ".join(f"({c})" for c in guards)
            condition = " && ".join(f"({c})" for c in parts if c not in guards)
    item_only = bool(each) and not _ROOT.search(strip_strings(condition))
    narrowed: dict[str, list[str]] = {}
    apis = api_set(condition, "item") if each == "code.calls" else None
    api_filter = _api_prefilter_text(rule)
    rest = None
    if api_filter is not None:
        # for an item whose API passed `api_filter` (true, not an error) the condition equals its
        # other conjuncts: `true && X` is X in CEL, errors included
        only_api = {_unwrap(c) for c in _api_only(_conjuncts(rule.condition))}
        others = [c for c in _conjuncts(condition) if _unwrap(c) not in only_api]
        rest = narrow_calls(" && ".join(f"({c})" for c in others), narrowed) if others else "true"
    return Plan(
        main=narrow_calls(condition, narrowed),
        guard=narrow_calls(guard, narrowed) if guard else None,
        evidence=narrow_calls(rule.evidence, narrowed) if rule.evidence else None,
        refs=_paths(rule.condition),
        api_filter=api_filter,
        api_set=sorted(apis) if apis is not None else None,
        each_path=each if each and _SIMPLE_PATH.match(each) else None,
        each_expr=narrow_calls(each, narrowed) if each and not _SIMPLE_PATH.match(each) else None,
        item_only=item_only,
        narrowed=narrowed,
        rest=rest,
    )


@dataclass
class Evaluation:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _Scan:
    """Per-scan state: the CEL context, the item being evaluated, lazily built call indexes."""

    def __init__(self, engine: Engine, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.calls: list[Any] = (doc.get("code") or {}).get("calls") or []
        self.current: Any = None
        self.guards: dict[str, Any] = {}  # guard text -> result, shared by the rules with that guard
        self._narrowed: dict[str, list[Any]] = {}
        self._by_method: dict[str, list[Any]] | None = None
        self._by_api: dict[str, list[int]] | None = None
        self._sets = engine._narrowed_sets
        variables = doc
        if not engine._raw_calls and isinstance(doc.get("code"), dict) and "calls" in doc["code"]:
            # no expression reads `code.calls` itself: do not convert the largest list into CEL
            variables = dict(doc)
            variables["code"] = {k: v for k, v in doc["code"].items() if k != "calls"}
        self.ctx = cel.Context(variables=variables)
        self.ctx.set_variable_resolver(self.resolve)

    def resolve(self, name: str) -> Any:
        # `item`, `same_method_calls` and the narrowed call lists are bound from Python: indexing
        # a large list inside CEL copies it, binding the element directly does not.
        if name == "item":
            return self.current
        if name == "same_method_calls" and isinstance(self.current, dict):
            if self._by_method is None:
                self._by_method = calls_by_method(self.doc)
            return self._by_method.get(_method_key(self.current), [])
        apis = self._sets.get(name)
        if apis is not None:
            found = self._narrowed.get(name)
            if found is None:
                found = self._narrowed[name] = [self.calls[i] for i in self.call_indices(apis)]
            return found
        return None

    def call_indices(self, apis: frozenset[str]) -> list[int]:
        """Indices (ascending) of the calls to ``apis``, plus any call without a string ``api``."""
        if self._by_api is None:
            self._by_api = {}
            for i, c in enumerate(self.calls):
                api = c.get("api") if isinstance(c, dict) else None
                self._by_api.setdefault(api if isinstance(api, str) else None, []).append(i)  # type: ignore[arg-type]
        groups = [self._by_api[a] for a in apis if a in self._by_api]
        odd = self._by_api.get(None)  # type: ignore[call-overload]
        if odd:
            groups.append(odd)
        if len(groups) == 1:
            return groups[0]
        return sorted(i for g in groups for i in g)


class Engine:
    """Evaluates a rule library over indicator documents (one Engine serves many scans).

    Rules with ``each`` are evaluated item by item from Python: CEL's list macros
    (``filter``/``map``) copy their accumulator on every step in the implementation we
    use, which made a rule over a thousand call sites cost hundreds of milliseconds.
    Items are bound as ``item``: through a plain dict when the condition reads nothing
    else, otherwise through the scan's shared context and a variable resolver.
    """

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self._plans: dict[str, Plan] = {}
        self._programs: dict[str, Any] = {}  # expression -> compiled program (compiled on first use)
        self._api_ok: dict[str, dict[str, bool | None]] = {}  # memo across scans: rule id -> api -> passes
        # (None: the filter raised an error, so the full condition decides and reports it)
        self._narrowed_sets: dict[str, frozenset[str]] = {}
        self._api_sets: dict[str, frozenset[str]] = {}
        raw = False
        for r in rules:
            plan = r.plan if isinstance(r.plan, Plan) else plan_rule(r)
            self._plans[r.id] = plan
            for name, apis in plan.narrowed.items():
                self._narrowed_sets[name] = frozenset(apis)
            if plan.api_set is not None:
                self._api_sets[r.id] = frozenset(plan.api_set)
            for expr in (plan.main, plan.guard, plan.evidence, plan.each_expr):
                if expr and _RAW_CALLS.search(strip_strings(expr)):
                    raw = True
        self._raw_calls = raw  # some expression reads `code` or `code.calls` as a whole

    def _program(self, expr: str) -> Any:
        prog = self._programs.get(expr)
        if prog is None:
            prog = self._programs[expr] = cel.compile(expr)
        return prog

    def evaluate(self, doc: dict[str, Any]) -> Evaluation:
        scan = _Scan(self, doc)
        out = Evaluation()
        for rule in self.rules:
            try:
                ev = self._run(rule, scan)
            except _ERRORS as exc:
                out.errors.append(f"{rule.id}: evaluation failed: {exc}")
                continue
            if ev is not None:
                out.findings.append(Finding(rule=rule, evidence=ev))
        return out

    def _candidates(self, rule: Rule, plan: Plan, scan: _Scan, items: list[Any]) -> tuple[Any, set[int]]:
        """The indices of the `each: code.calls` items that can match (the others are false), and
        those of them whose API filter raised an error (the full condition decides those)."""
        apis = self._api_sets.get(rule.id)
        indices: Any = scan.call_indices(apis) if apis is not None and items is scan.calls else range(len(items))
        if plan.api_filter is None:
            return indices, set()
        memo = self._api_ok.setdefault(rule.id, {})
        out, undecided = [], set()
        for i in indices:
            item = items[i]
            api = item.get("api", "") if isinstance(item, dict) else ""
            if api in memo:
                ok = memo[api]
            else:
                try:
                    ok = self._program(plan.api_filter).execute({"item": {"api": api}}) is True
                except _ERRORS:
                    ok = None  # let the full condition decide (and report the error)
                memo[api] = ok
            if ok is not False:
                out.append(i)
                if ok is None:
                    undecided.add(i)
        return out, undecided

    def _run(self, rule: Rule, scan: _Scan) -> list[Evidence] | None:
        plan = self._plans[rule.id]
        ctx, doc = scan.ctx, scan.doc
        if rule.each:
            if plan.guard is not None:
                passed = scan.guards.get(plan.guard)
                if passed is None:
                    passed = scan.guards[plan.guard] = self._program(plan.guard).execute(ctx) is True
                if not passed:
                    return None
            filtered = False  # the candidates' APIs passed `plan.api_filter`, so `plan.rest` decides
            undecided: set[int] = set()
            if plan.each_path is not None:
                items = _lookup(doc, plan.each_path) or []
                if plan.each_path == "code.calls" and items is scan.calls:
                    indices, undecided = self._candidates(rule, plan, scan, items)
                    filtered = plan.api_filter is not None and plan.rest is not None
                else:
                    indices = range(len(items))
            else:
                items = self._program(plan.each_expr).execute(ctx) or []  # type: ignore[arg-type]
                indices = range(len(items))
            if not len(indices):
                return None
            full = self._program(plan.main)
            main = self._program(plan.rest) if filtered else full  # type: ignore[arg-type]
            always = filtered and plan.rest == "true"
            matched = []
            try:
                for i in indices:
                    item = items[i]
                    prog = full if i in undecided else main
                    if always and prog is main:
                        ok = True
                    elif plan.item_only:
                        ok = prog.execute({"item": item})
                    else:
                        scan.current = item
                        ok = prog.execute(ctx)
                    if ok is True:
                        matched.append(item)
            finally:
                scan.current = None
            if not matched:
                return None
            return [to_evidence(item, rule) for item in matched[:MAX_EVIDENCE]]
        result = self._program(plan.main).execute(ctx)
        if result is not True:
            return None
        if plan.evidence is not None:
            found = self._program(plan.evidence).execute(ctx) or []
            if not isinstance(found, list):
                found = [found]
            return [to_evidence(item, rule) for item in found[:MAX_EVIDENCE]] or [Evidence()]
        return [Evidence(value=f"{p} = {_fmt(_lookup(doc, p))}") for p in plan.refs] or [Evidence()]


def _method_key(item: dict[str, Any]) -> str:
    loc = item.get("location") or {}
    return f"{loc.get('class')}|{loc.get('method')}"


def calls_by_method(doc: dict[str, Any]) -> dict[str, list[Any]]:
    """The watched calls of each method; rules see those of `item`'s method as ``same_method_calls``.

    Lets a rule correlate calls made in the same method (an Intent built and sent there) in
    time proportional to that method's calls instead of the whole app's.
    """
    out: dict[str, list[Any]] = {}
    for c in (doc.get("code") or {}).get("calls") or []:
        out.setdefault(_method_key(c), []).append(c)
    return out


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


_PATH = re.compile(rf"(?<![\w.\"'])((?:{_ROOTS})(?:\.[a-z_][a-z0-9_]*\b(?!\s*\())+)")


def _paths(expr: str) -> list[str]:
    stripped = strip_strings(expr)
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
