"""Load and validate rule files.

Every problem is reported as ``<file>:<line>: <message>`` so that a rule author can
jump to it: schema errors, CEL syntax errors, unknown indicator names, duplicate
ids, missing positive/negative test cases.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medrisk import datafiles
from medrisk.analysis import skeleton
from medrisk.rules import celexpr as cel
from medrisk.rules.engine import PLAN_FORMAT, Plan, plan_rule, strip_strings
from medrisk.rules.model import SEVERITIES, Rule, RuleTest, Text

LIBRARY = Path(__file__).parent / "library"

ID_RE = re.compile(r"^[A-Z]{2,5}-\d{3}$")
MASVS_RE = re.compile(r"^MASVS-(STORAGE|CRYPTO|AUTH|NETWORK|PLATFORM|CODE|RESILIENCE|PRIVACY)-[1-4]$")
MASWE_RE = re.compile(r"^MASWE-\d{4}$")
CWE_RE = re.compile(r"^CWE-\d+$")
PATH_RE = re.compile(r"(?<![\w.\"'])([a-z_]+)((?:\.[a-z_][a-z0-9_]*\b(?!\s*\())+)")
# CEL's standard functions; anything else in a condition is a typo or an attempt to call host code.
CEL_FUNCTIONS = frozenset(
    {
        "size",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
        "int",
        "uint",
        "double",
        "string",
        "bool",
        "bytes",
        "type",
        "has",
        "exists",
        "all",
        "exists_one",
        "filter",
        "map",
        "duration",
        "timestamp",
        "dyn",
    }
)
# How well a cited clause was verified: against the primary text, a secondary copy, or from memory.
CONFIDENCE = ("V-primary", "V-secondary", "MEM")
REQUIRED = ("id", "title", "description", "severity", "category", "masvs", "cwe", "condition", "remediation", "tests")
OPTIONAL = ("maswe", "each", "evidence", "message", "regulations", "references", "tags")


class RuleError(Exception):
    """One or more rule files are invalid; ``problems`` lists ``file:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class _Doc:
    data: dict[str, Any]
    lines: dict[str, int]
    path: str

    def where(self, key: str | None = None) -> str:
        return f"{self.path}:{self.lines.get(key or '', 1)}"


def rule_files(extra_dirs: list[Path] | None = None) -> list[tuple[Path, Path]]:
    """(folder, file) of every rule file: the shipped library, then each extra folder, sorted."""
    files = [(LIBRARY, f) for f in sorted(LIBRARY.rglob("*.yaml"))]
    for d in extra_dirs or []:
        if not Path(d).is_dir():
            raise RuleError([f"{d}: not a folder of rules"])
        files += [(Path(d), f) for f in sorted(Path(d).rglob("*.yaml"))]
    return files


def load_library(extra_dirs: list[Path] | None = None) -> list[Rule]:
    """Load the shipped library plus extra folders; raise RuleError listing every problem."""
    return load_library_versioned(extra_dirs)[0]


def load_library_versioned(extra_dirs: list[Path] | None = None) -> tuple[list[Rule], str]:
    """The rules and the library version (``<medrisk version>+<hash of the rule files>``).

    A library that loaded cleanly before, with the same files, the same contents and the same
    loader, comes from the cache (datafiles.py): validated rules and their evaluation plans,
    without parsing YAML or compiling CEL.
    """
    from medrisk import __version__

    files = rule_files(extra_dirs)
    texts = [f.read_bytes() for _root, f in files]
    h = hashlib.sha256()
    for (_root, f), raw in zip(files, texts):
        h.update(f.name.encode())
        h.update(raw)
    version = f"{__version__}+{h.hexdigest()[:12]}"
    roots = list(dict.fromkeys(root for root, _f in files))
    key = datafiles.digest(
        "rules",
        str(PLAN_FORMAT),
        *(src.read_bytes() for src in _CODE),
        *(f"{roots.index(root)}:{f.relative_to(root).as_posix()}" for root, f in files),
        *texts,
    )
    cached = datafiles.cache_get("rules", key)
    if cached is not None:
        try:
            return _from_cache(cached, roots), version
        except (TypeError, ValueError, IndexError, KeyError):
            pass  # a damaged entry: load from the files
    rules = _parse_files(files, texts)
    for r in rules:
        r.plan = plan_rule(r)
    datafiles.cache_put("rules", key, _to_cache(rules, files))
    return rules, version


def _parse_files(files: list[tuple[Path, Path]], texts: list[bytes]) -> list[Rule]:
    rules: list[Rule] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for (_root, f), raw in zip(files, texts):
        for rule, errs in _load_file(f, raw):
            problems += errs
            if rule is None:
                continue
            if rule.id in seen:
                problems.append(f"{rule.source}: duplicate rule id {rule.id} (first in {seen[rule.id]})")
                continue
            seen[rule.id] = rule.source
            rules.append(rule)
    if problems:
        raise RuleError(problems)
    return sorted(rules, key=lambda r: r.id)


# The code that decides what a rule file loads into: part of the cache key.
_CODE = [
    Path(__file__),
    Path(__file__).with_name("engine.py"),
    Path(__file__).with_name("model.py"),
    Path(skeleton.__file__),
]


def _text_data(t: Text | None) -> list[str] | None:
    return [t.zh, t.en] if t is not None else None


def _to_cache(rules: list[Rule], files: list[tuple[Path, Path]]) -> list[Any]:
    where = {_display(f): (i, f.relative_to(root).as_posix()) for i, (root, f) in enumerate(files)}
    roots = list(dict.fromkeys(root for root, _f in files))
    out = []
    for r in rules:
        path, _, line = r.source.rpartition(":")
        index, rel = where[path]
        out.append(
            [
                r.id,
                _text_data(r.title),
                _text_data(r.description),
                r.severity,
                r.category,
                r.masvs,
                r.maswe,
                r.cwe,
                r.condition,
                _text_data(r.remediation),
                [[t.name, t.expect, t.indicators, t.count] for t in r.tests],
                r.each,
                r.evidence,
                _text_data(r.message),
                r.regulations,
                r.references,
                r.tags,
                roots.index(files[index][0]),
                rel,
                int(line),
                r.plan.to_data(),
            ]
        )
    return out


def _from_cache(data: list[Any], roots: list[Path]) -> list[Rule]:
    shown = [_display_folder(root) for root in roots]
    rules = []
    for d in data:
        rules.append(
            Rule(
                id=d[0],
                title=Text(*d[1]),
                description=Text(*d[2]),
                severity=d[3],
                category=d[4],
                masvs=d[5],
                maswe=d[6],
                cwe=d[7],
                condition=d[8],
                remediation=Text(*d[9]),
                tests=[RuleTest(*t) for t in d[10]],
                each=d[11],
                evidence=d[12],
                message=Text(*d[13]) if d[13] is not None else None,
                regulations=d[14],
                references=d[15],
                tags=d[16],
                source=f"{shown[d[17]]}/{d[18]}:{d[19]}" if shown[d[17]] else f"{d[18]}:{d[19]}",
                plan=Plan.from_data(d[20]),
            )
        )
    return rules


def _display_folder(root: Path) -> str:
    """``_display`` of a folder, for the paths of the files under it (one resolve, not one per file)."""
    shown = _display(root)
    return "" if shown == "." else shown


def _load_file(path: Path, raw: bytes | None = None) -> list[tuple[Rule | None, list[str]]]:
    import yaml  # only when a rule file is parsed (not when the library comes from the cache)

    rel = _display(path)
    try:
        raw = path.read_bytes() if raw is None else raw
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text() reads it
        # One pass with libyaml when available: the node (for line numbers) and the data.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except (OSError, UnicodeDecodeError) as exc:
        return [(None, [f"{rel}:1: cannot read: {exc}"])]
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", 0) + 1
        return [(None, [f"{rel}:{line}: YAML syntax error: {getattr(exc, 'problem', exc)}"])]
    if node is None:
        return [(None, [f"{rel}:1: empty rule file"])]
    # A file holds one rule (a mapping) or a small family (a sequence of mappings).
    if isinstance(node, yaml.MappingNode):
        pairs = [(node, data)]
    elif isinstance(node, yaml.SequenceNode) and isinstance(data, list):
        pairs = list(zip(node.value, data))
    else:
        return [(None, [f"{rel}:1: a rule file holds a mapping or a list of mappings"])]
    out = []
    for sub, value in pairs:
        if not isinstance(value, dict) or not isinstance(sub, yaml.MappingNode):
            out.append((None, [f"{rel}:{sub.start_mark.line + 1}: rule must be a mapping"]))
            continue
        lines = {k.value: k.start_mark.line + 1 for k, _ in sub.value if isinstance(k, yaml.ScalarNode)}
        lines[""] = sub.start_mark.line + 1
        out.append(parse_rule(_Doc(value, lines, rel)))
    return out


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _text(doc: _Doc, key: str, errs: list[str], required: bool = True) -> Text | None:
    value = doc.data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(value.get(k), str) and value.get(k).strip() for k in ("zh", "en")
    ):
        errs.append(f"{doc.where(key)}: '{key}' needs non-empty 'zh' and 'en' texts")
        return None
    return Text(zh=value["zh"].strip(), en=value["en"].strip())


def parse_rule(doc: _Doc) -> tuple[Rule | None, list[str]]:
    d, errs = doc.data, []
    for key in REQUIRED:
        if key not in d:
            errs.append(f"{doc.where()}: missing required field '{key}'")
    for key in d:
        if key not in REQUIRED and key not in OPTIONAL:
            errs.append(f"{doc.where(key)}: unknown field '{key}'")
    if errs:
        return None, errs
    rid = str(d["id"])
    if not ID_RE.match(rid):
        errs.append(f"{doc.where('id')}: id '{rid}' must look like FAM-123")
    if d["severity"] not in SEVERITIES:
        errs.append(f"{doc.where('severity')}: severity must be one of {', '.join(SEVERITIES)}")
    if not MASVS_RE.match(str(d["masvs"])):
        errs.append(f"{doc.where('masvs')}: '{d['masvs']}' is not a MASVS v2 control id")
    maswe = d.get("maswe")
    if maswe is not None and not MASWE_RE.match(str(maswe)):
        errs.append(f"{doc.where('maswe')}: '{maswe}' is not a MASWE id")
    cwe = d["cwe"] if isinstance(d["cwe"], list) else [d["cwe"]]
    cwe = [str(c) for c in cwe]
    if not cwe or not all(CWE_RE.match(c) for c in cwe):
        errs.append(f"{doc.where('cwe')}: cwe must be CWE-<n> ids")
    title = _text(doc, "title", errs)
    description = _text(doc, "description", errs)
    remediation = _text(doc, "remediation", errs)
    message = _text(doc, "message", errs, required=False)
    regs = d.get("regulations") or []
    if not isinstance(regs, list) or not all(isinstance(r, dict) and r.get("ref") for r in regs):
        errs.append(f"{doc.where('regulations')}: regulations must be a list of {{ref, clause, confidence}}")
        regs = []
    for r in regs:
        if r.get("confidence") not in CONFIDENCE:
            errs.append(
                f"{doc.where('regulations')}: confidence of '{r['ref']}' must be one of {', '.join(CONFIDENCE)}"
                " (the marks of research/regulations.md)"
            )
    each = d.get("each")
    for key in ("condition", "each", "evidence"):
        expr = d.get(key)
        if expr is None:
            continue
        if not isinstance(expr, str):
            errs.append(f"{doc.where(key)}: '{key}' must be a CEL expression string")
            continue
        try:
            program = cel.compile(expr)
        except (ValueError, RuntimeError) as exc:
            first = str(exc).splitlines()[0]
            errs.append(f"{doc.where(key)}: CEL syntax error in '{key}': {first}")
            continue
        unknown = sorted(f for f in program.functions() if f[0] not in "_@!" and f not in CEL_FUNCTIONS)
        if unknown:
            errs.append(f"{doc.where(key)}: unknown function(s) {', '.join(unknown)} in '{key}'")
        errs += [f"{doc.where(key)}: {p}" for p in check_names(expr, each if key == "condition" else None)]
    tests = _tests(doc, errs)
    if errs:
        return None, errs
    assert title and description and remediation
    return Rule(
        id=rid,
        title=title,
        description=description,
        severity=d["severity"],
        category=str(d["category"]),
        masvs=str(d["masvs"]),
        maswe=str(maswe) if maswe else None,
        cwe=cwe,
        condition=d["condition"],
        remediation=remediation,
        tests=tests,
        each=each,
        evidence=d.get("evidence"),
        message=message,
        regulations=[{k: str(v) for k, v in r.items()} for r in regs],
        references=[str(r) for r in d.get("references") or []],
        tags=[str(t) for t in d.get("tags") or []],
        source=doc.where(),
    ), []


def check_names(expr: str, each: str | None) -> list[str]:
    """Unknown indicator names in a CEL expression (roots and item fields)."""
    problems = []
    stripped = strip_strings(expr)
    for m in PATH_RE.finditer(stripped):
        root, rest = m.group(1), m.group(2).lstrip(".").split(".")
        if root == "item" and each:
            fields = skeleton.item_fields(each.strip())
            if fields is not None and rest[0] not in fields:
                problems.append(f"unknown field 'item.{rest[0]}' of {each.strip()} items")
        elif root in skeleton.ROOTS and not skeleton.known_path([root, *rest]):
            problems.append(f"unknown indicator '{root}.{'.'.join(rest)}'")
    return problems


def _tests(doc: _Doc, errs: list[str]) -> list[RuleTest]:
    raw = doc.data.get("tests")
    if not isinstance(raw, list):
        errs.append(f"{doc.where('tests')}: tests must be a list")
        return []
    tests = []
    for i, t in enumerate(raw):
        if (
            not isinstance(t, dict)
            or t.get("expect") not in ("match", "no_match")
            or not isinstance(t.get("indicators"), dict)
        ):
            errs.append(f"{doc.where('tests')}: test #{i + 1} needs expect: match|no_match and indicators")
            continue
        unknown = [k for k in t["indicators"] if k not in skeleton.ROOTS]
        if unknown:
            errs.append(f"{doc.where('tests')}: test #{i + 1} has unknown indicator roots {unknown}")
        tests.append(
            RuleTest(str(t.get("name", f"case {i + 1}")), t["expect"] == "match", t["indicators"], t.get("count"))
        )
    if not any(t.expect for t in tests) or not any(not t.expect for t in tests):
        errs.append(f"{doc.where('tests')}: needs at least one 'match' and one 'no_match' test case")
    return tests
