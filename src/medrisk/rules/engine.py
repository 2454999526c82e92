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

from medrisk.analysis import skeleton
from medrisk.rules import celexpr as cel
from medrisk.rules.model import Evidence, Finding, Rule

MAX_EVIDENCE = 50  # per finding; the count is kept in the report


@dataclass
class _Compiled:
    main: Any
    evidence: Any | None
    refs: list[str]
    api_filter: Any | None = None  # CEL over `item.api` only, for `each: code.calls` rules
    api_ok: dict[str, bool] = field(default_factory=dict)  # memo across scans: api name -> passes
    each_path: str | None = None  # `each` as a plain dotted path into the document
    each_program: Any | None = None  # `each` as a CEL expression otherwise
    item_only: bool = False  # the condition reads `item` and nothing else
    guard: Any | None = None  # the conjuncts of an `each` rule that do not read `item`


_ITEM = re.compile(r"(?<![\w.])item\b")
_SIMPLE_PATH = re.compile(r"^[a-z_]+(\.[a-z_][a-z0-9_]*)*$")


def strip_strings(expr: str) -> str:
    """The expression with its string literals emptied (so names inside strings are not read)."""
    return re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", expr)


def _conjuncts(expr: str) -> list[str]:
    """Split a CEL expression at its top-level `&&` (outside parentheses, brackets and strings)."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and expr.startswith("&&", i):
            parts.append(expr[start:i])
            start = i + 2
            i += 1
        i += 1
    parts.append(expr[start:])
    return [p.strip() for p in parts if p.strip()]


_ITEM_FIELD = re.compile(r"\bitem\.(\w+)")
_ROOTS = "|".join(sorted(skeleton.ROOTS))  # the indicator document's top-level names
_ROOT = re.compile(rf"(?<![\w.'\"])({_ROOTS}|same_method_calls)\b")


def api_prefilter(rule: Rule) -> Any | None:
    """The part of a `code.calls` rule's condition that depends on the API name alone.

    Regex tests on ``item.api`` cost a regex compilation per call site in CEL; evaluating
    them once per distinct API name (memoised) and narrowing the list first gives the same
    result many times faster.
    """
    if (rule.each or "").strip() != "code.calls":
        return None
    only_api = [
        c
        for c in _conjuncts(rule.condition)
        if set(_ITEM_FIELD.findall(c)) == {"api"} and not _ROOT.search(strip_strings(c))
    ]
    return cel.compile(" && ".join(f"({c})" for c in only_api)) if only_api else None


@dataclass
class Evaluation:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


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
        self._compiled: dict[str, _Compiled] = {}
        self._uses_same_method = any("same_method_calls" in r.condition for r in rules)
        for r in rules:
            each = (r.each or "").strip()
            condition, guard = r.condition, None
            if each:
                # conjuncts that do not read `item` are document-level guards: evaluated once per scan
                parts = _conjuncts(r.condition)
                guards = [c for c in parts if not _ITEM.search(strip_strings(c))]
                if guards and len(guards) < len(parts):
                    guard = cel.compile(" && ".join(f"({c})" for c in guards))
                    condition = " && ".join(f"({c})" for c in parts if c not in guards)
            item_only = bool(each) and not _ROOT.search(strip_strings(condition))
            main = condition
            self._compiled[r.id] = _Compiled(
                cel.compile(main),
                cel.compile(r.evidence) if r.evidence else None,
                _paths(r.condition),
                api_prefilter(r),
                each_path=each if _SIMPLE_PATH.match(each) else None,
                each_program=cel.compile(each) if each and not _SIMPLE_PATH.match(each) else None,
                item_only=item_only,
                guard=guard,
            )

    def evaluate(self, doc: dict[str, Any]) -> Evaluation:
        ctx = cel.Context(variables=doc)
        current: list[Any] = [None]
        by_method = calls_by_method(doc) if self._uses_same_method else {}

        def resolve(name: str) -> Any:
            # `item` and `same_method_calls` are bound per item from Python: indexing a large
            # list inside CEL copies it, binding the element directly does not.
            if name == "item":
                return current[0]
            if name == "same_method_calls" and isinstance(current[0], dict):
                return by_method.get(_method_key(current[0]), [])
            return None

        ctx.set_variable_resolver(resolve)
        narrowed = self._narrowed(doc)
        out = Evaluation()
        for rule in self.rules:
            try:
                ev = self._run(rule, ctx, doc, current, narrowed)
            except (KeyError, TypeError, RuntimeError, ValueError) as exc:
                out.errors.append(f"{rule.id}: evaluation failed: {exc}")
                continue
            if ev is not None:
                out.findings.append(Finding(rule=rule, evidence=ev))
        return out

    def _narrowed(self, doc: dict[str, Any]) -> dict[str, list[Any]]:
        calls = (doc.get("code") or {}).get("calls") or []
        apis = {c.get("api", "") for c in calls}
        out: dict[str, list[Any]] = {}
        for rid, comp in self._compiled.items():
            if comp.api_filter is None:
                continue
            for api in apis - comp.api_ok.keys():
                try:
                    comp.api_ok[api] = comp.api_filter.execute({"item": {"api": api}}) is True
                except (KeyError, TypeError, RuntimeError, ValueError):
                    comp.api_ok[api] = True  # let the full condition decide (and report the error)
            out[rid] = [i for i, c in enumerate(calls) if comp.api_ok[c.get("api", "")]]
        return out

    def _run(
        self, rule: Rule, ctx: Any, doc: dict[str, Any], current: list[Any], narrowed: dict[str, list[Any]]
    ) -> list[Evidence] | None:
        comp = self._compiled[rule.id]
        if rule.each:
            if comp.guard is not None and comp.guard.execute(ctx) is not True:
                return None
            if comp.each_path is not None:
                items = _lookup(doc, comp.each_path) or []
                indices = narrowed.get(rule.id, range(len(items)))
            else:
                items = comp.each_program.execute(ctx) or []
                indices = range(len(items))
            matched = []
            try:
                for i in indices:
                    item = items[i]
                    if comp.item_only:
                        ok = comp.main.execute({"item": item})
                    else:
                        current[0] = item
                        ok = comp.main.execute(ctx)
                    if ok is True:
                        matched.append(item)
            finally:
                current[0] = None
            if not matched:
                return None
            return [to_evidence(item, rule) for item in matched[:MAX_EVIDENCE]]
        result = comp.main.execute(ctx)
        if result is not True:
            return None
        if comp.evidence is not None:
            found = comp.evidence.execute(ctx) or []
            if not isinstance(found, list):
                found = [found]
            return [to_evidence(item, rule) for item in found[:MAX_EVIDENCE]] or [Evidence()]
        return [Evidence(value=f"{p} = {_fmt(_lookup(doc, p))}") for p in comp.refs] or [Evidence()]


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
