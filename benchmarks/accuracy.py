"""Detection accuracy on the corpus: documented weaknesses found and missed (issue 3).

Scans every `vulnerable-training-app` and `production` APK of the corpus in-process with
``Scanner().scan_bytes`` and prints:
  * for each training app, the weaknesses its documentation lists (MANIFEST.tsv
    `documented_findings`), scored against benchmarks/accuracy_map.yaml: found (rule and
    evidence), missed (with the missing capability), not statically detectable, not scored;
  * a per-app table and the total detection rate over the statically detectable weaknesses;
  * for the `production` apps, findings by severity and every high/critical finding (rule,
    title, first evidence item) for a human to review for false positives;
  * "library-only" findings: findings whose evidence locations are all in well-known
    third-party packages (they inflate results without saying anything about the app's code).

The corpus path comes from MEDRISK_CORPUS, default ../shared/corpus/apks next to the repo.
APKs are read in place, never copied. Exit status 1 when the map and MANIFEST.tsv disagree
(an unmapped documented item, a stale map entry, an unknown rule id) or --min-rate is not met.

Usage: python benchmarks/accuracy.py [--corpus DIR] [--map FILE] [--app NAME ...]
                                     [--summary] [--json FILE] [--min-rate PCT]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(os.environ.get("MEDRISK_CORPUS", Path(__file__).resolve().parents[2] / "shared/corpus/apks"))
MAP = Path(__file__).resolve().parent / "accuracy_map.yaml"
TRAINING = "vulnerable-training-app"
PRODUCTION = "production"
SEVERITIES = ["critical", "high", "medium", "low", "info", "secure"]

# Well-known third-party / framework packages. Evidence in these is not the app's own code.
# (Obfuscated library code - a.a.a.b - cannot be recognised by name and counts as app code.)
LIBRARY_PREFIXES = (
    "android.support.", "androidx.", "com.android.volley.", "com.google.", "com.firebase.",
    "kotlin.", "kotlinx.", "org.jetbrains.", "org.intellij.", "okhttp3.", "okio.", "retrofit2.",
    "com.squareup.", "com.jakewharton.", "org.apache.", "com.facebook.", "com.crashlytics.", "io.fabric.",
    "com.bumptech.glide.", "io.reactivex.", "rx.", "com.fasterxml.", "com.google.gson.", "org.json.",
    "org.chromium.", "dagger.", "javax.", "java.", "org.bouncycastle.", "org.slf4j.", "ch.qos.",
    "com.amazonaws.", "net.gotev.", "com.airbnb.", "org.greenrobot.", "io.sentry.", "com.journeyapps.",
    "com.microsoft.", "com.tencent.", "com.alibaba.", "com.umeng.", "com.baidu.",
)  # fmt: skip


def is_library(cls: str | None) -> bool:
    return bool(cls) and cls.startswith(LIBRARY_PREFIXES)


def library_only(finding: dict[str, Any]) -> bool:
    """Every evidence item is located in a class, and every such class is library code."""
    ev = finding["evidence"]
    return bool(ev) and all(is_library(e.get("class")) for e in ev)


def evidence_text(e: dict[str, Any]) -> str:
    loc = ":".join(str(e[k]) for k in ("file", "class", "method", "line") if e.get(k) is not None)
    return f"{loc} | {e.get('value', '')}" if loc else str(e.get("value", ""))


def split_items(text: str) -> list[str]:
    """MANIFEST documented_findings: ';'-separated, but ';' inside parentheses belongs to the item."""
    items, buf, depth = [], "", 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")" and depth > 0
        if ch == ";" and depth == 0:
            items.append(buf.strip())
            buf = ""
        else:
            buf += ch
    items.append(buf.strip())
    return [i for i in items if i and not i.startswith("doc=")]


def read_manifest(corpus: Path) -> list[dict[str, str]]:
    with open(corpus / "MANIFEST.tsv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


# --- scoring -----------------------------------------------------------------------------------


@dataclass
class Weakness:
    app: str
    name: str
    status: str  # found | missed | not_static | not_scored | unmapped
    rules: list[str] = field(default_factory=list)
    hit: str = ""  # "RULE-ID @ evidence" when found
    reason: str = ""  # gap (missed), reason (not_static / not_scored)
    partial: list[str] = field(default_factory=list)
    note: str = ""


def _as_list(v: Any) -> list[str]:
    return [] if v is None else [v] if isinstance(v, str) else list(v)


def _hits(by_rule: dict[str, list[dict]], rules: list[str], evidence: list[str], allow_library: bool) -> list[str]:
    out = []
    for rid in rules:
        for f in by_rule.get(rid, []):
            for e in f["evidence"]:
                if not allow_library and is_library(e.get("class")):
                    continue
                text = evidence_text(e)
                if not evidence or any(s in text for s in evidence):
                    out.append(f"{rid} @ {text[:160]}")
                    break
    return out


def score_entry(app: str, name: str, spec: dict[str, Any], by_rule: dict[str, list[dict]]) -> Weakness:
    if spec.get("static") is False:
        return Weakness(app, name, "not_static", reason=spec.get("reason", "").strip(), note=spec.get("note", ""))
    if "not_scored" in spec:
        return Weakness(app, name, "not_scored", reason=str(spec["not_scored"]).strip())
    lib = bool(spec.get("allow_library"))
    ev = _as_list(spec.get("evidence"))
    if "all" in spec:
        parts = [
            _hits(by_rule, _as_list(p["rules"]), _as_list(p.get("evidence")) or ev, lib or p.get("allow_library"))
            for p in spec["all"]
        ]
        rules = [r for p in spec["all"] for r in _as_list(p["rules"])]
        hit = " + ".join(h[0] for h in parts if h) if all(parts) else ""
    else:
        rules = _as_list(spec.get("rules"))
        hits = _hits(by_rule, rules, ev, lib)
        hit = hits[0] if hits else ""
    w = Weakness(app, name, "found" if hit else "missed", rules=rules, hit=hit, note=spec.get("note", "").strip())
    if not hit:
        w.reason = (spec.get("gap") or "no rule fired with matching evidence").strip()
        w.partial = _hits(by_rule, _as_list(spec.get("partial")), ev, lib)
    return w


def resolve(items: list[str], entries: list[dict[str, Any]]) -> tuple[list[tuple[str, dict | None]], list[str]]:
    """Pair each documented item with its map entry (exact text, else the unique entry it starts with)."""
    used: set[int] = set()
    pairs: list[tuple[str, dict | None]] = []
    for item in items:
        exact = [i for i, e in enumerate(entries) if e["item"] == item]
        cands = exact or [i for i, e in enumerate(entries) if item.startswith(e["item"])]
        if len(cands) == 1:
            used.add(cands[0])
            pairs.append((item, entries[cands[0]]))
        else:
            pairs.append((item, None))
    stale = [e["item"] for i, e in enumerate(entries) if i not in used]
    return pairs, stale


def score_app(
    app: str, items: list[str], entries: list[dict], findings: list[dict]
) -> tuple[list[Weakness], list[str]]:
    by_rule: dict[str, list[dict]] = {}
    for f in findings:
        if not f.get("suppressed"):
            by_rule.setdefault(f["rule_id"], []).append(f)
    out: list[Weakness] = []
    pairs, stale = resolve(items, entries)
    for item, spec in pairs:
        if spec is None:
            out.append(Weakness(app, item, "unmapped", reason="documented item has no (unique) entry in the map"))
        elif "expand" in spec:
            out += [score_entry(app, sub["name"], sub, by_rule) for sub in spec["expand"]]
        else:
            out.append(score_entry(app, item, spec, by_rule))
    return out, stale


def map_rule_ids(entries: list[dict]) -> set[str]:
    ids: set[str] = set()
    for e in entries:
        for s in [e, *e.get("expand", [])]:
            ids.update(_as_list(s.get("rules")) + _as_list(s.get("partial")))
            for p in s.get("all", []):
                ids.update(_as_list(p["rules"]))
    return ids


# --- report ------------------------------------------------------------------------------------


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "n/a"


def wrap(text: str, indent: int, width: int = 118) -> str:
    words, lines, line = " ".join(text.split()).split(" "), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width - indent:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    lines.append(line)
    return ("\n" + " " * indent).join(lines)


KEYS = ("found", "missed", "not_static", "not_scored")
MARK = {"found": "+", "missed": "-", "not_static": "~", "not_scored": ".", "unmapped": "!"}


def print_app(app: str, ws: list[Weakness]) -> None:
    c = Counter(w.status for w in ws)
    det = c["found"] + c["missed"]
    print(f"\n{app}: {c['found']}/{det} detectable found ({pct(c['found'], det)})")
    order = ["found", "missed", "not_static", "not_scored", "unmapped"]
    for w in sorted(ws, key=lambda w: order.index(w.status)):
        print(f"  {MARK[w.status]} {w.name}")
        if w.status == "found":
            print(f"      <- {w.hit}")
        elif w.status == "missed":
            print(f"      expected: {', '.join(w.rules) or 'no rule exists'}")
            print(f"      gap: {wrap(w.reason, 11)}")
            for p in w.partial:
                print(f"      partial (not counted): {p}")
        elif w.status == "not_static":
            print(f"      not statically detectable: {wrap(w.reason, 34)}")
        else:
            print(f"      {w.status.replace('_', ' ')}: {wrap(w.reason, 20)}")


def print_table(rows: list[tuple[str, Counter]]) -> tuple[int, int]:
    cols = ("documented", "detectable", "found", "missed", "not-static", "not-scored")
    head = f"{'app':44}" + "".join(f" {c:>10}" for c in cols)
    print(head)
    print("-" * len(head))
    tot: Counter = Counter()
    for app, c in rows:
        tot.update(c)
        doc = sum(c.values())
        det = c["found"] + c["missed"]
        extra = f"  UNMAPPED {c['unmapped']}" if c["unmapped"] else ""
        print(f"{app:44}" + "".join(f" {n:>10}" for n in (doc, det, *(c[k] for k in KEYS))) + extra)
    print("-" * len(head))
    det = tot["found"] + tot["missed"]
    print(f"{'TOTAL':44}" + "".join(f" {n:>10}" for n in (sum(tot.values()), det, *(tot[k] for k in KEYS))))
    return tot["found"], det


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--map", type=Path, default=MAP)
    ap.add_argument("--app", action="append", help="only these APK file names (repeatable)")
    ap.add_argument("--summary", action="store_true", help="tables only, no per-weakness detail")
    ap.add_argument("--json", type=Path, help="also write the scored weaknesses and review list here")
    ap.add_argument("--min-rate", type=float, help="exit 1 if the detection rate (%%) is below this")
    args = ap.parse_args()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head/less

    t_start = time.perf_counter()
    from medrisk.scan import Scanner

    scanner = Scanner()
    known_rules = {r.id for r in scanner.rules}
    amap: dict[str, list[dict]] = yaml.safe_load(args.map.read_text(encoding="utf-8"))
    rows = [r for r in read_manifest(args.corpus) if r["kind"] in (TRAINING, PRODUCTION)]
    if args.app:
        rows = [r for r in rows if r["file"] in args.app]
    problems: list[str] = []
    for app, entries in amap.items():
        bad = map_rule_ids(entries) - known_rules
        if bad:
            problems.append(f"{app}: unknown rule ids in map: {', '.join(sorted(bad))}")
    training_apps = {r["file"] for r in read_manifest(args.corpus) if r["kind"] == TRAINING}
    problems += [f"{a}: in the map but not a training app of MANIFEST.tsv" for a in amap if a not in training_apps]

    results: dict[str, dict[str, Any]] = {}
    scan_seconds = 0.0
    for r in rows:
        data = (args.corpus / r["file"]).read_bytes()
        t0 = time.perf_counter()
        res = scanner.scan_bytes(data, r["file"])
        scan_seconds += time.perf_counter() - t0
        results[r["file"]] = {"kind": r["kind"], "findings": res["findings"], "rules_version": res["rules_version"]}
    rules_version = next(iter(results.values()))["rules_version"] if results else "?"

    print(f"MedRisk detection accuracy - corpus {args.corpus} - rules {rules_version}")
    print(f"map {args.map}; library packages: {', '.join(p.rstrip('.') for p in LIBRARY_PREFIXES[:8])}, ...")

    # training apps
    scored: list[Weakness] = []
    table: list[tuple[str, Counter]] = []
    for r in rows:
        if r["kind"] != TRAINING:
            continue
        app = r["file"]
        if app not in amap:
            problems.append(f"{app}: training app missing from the map")
        ws, stale = score_app(app, split_items(r["documented_findings"]), amap.get(app, []), results[app]["findings"])
        problems += [f"{app}: map entry matches no documented item: {s!r}" for s in stale]
        problems += [f"{app}: unmapped documented item: {w.name!r}" for w in ws if w.status == "unmapped"]
        scored += ws
        table.append((app, Counter(w.status for w in ws)))
        if not args.summary:
            print_app(app, ws)

    print("\n== Training apps: documented weaknesses ==")
    found, det = print_table(table)
    rate = 100 * found / det if det else 0.0
    print(f"\nDetection rate over statically detectable weaknesses: {found}/{det} = {pct(found, det)} (target >= 90%)")
    misses = [w for w in scored if w.status == "missed"]
    if misses:
        print(f"\nMissed ({len(misses)}):")
        for w in misses:
            print(f"  {w.app}: {w.name} [{', '.join(w.rules) or 'no rule'}]\n      {wrap(w.reason, 6)}")

    # production apps
    prod = [(a, v) for a, v in results.items() if v["kind"] == PRODUCTION]
    review: list[dict[str, Any]] = []
    if prod:
        print("\n== Production apps: findings by severity (lib = library-only findings) ==")
        head = f"{'app':58}" + "".join(f"{s:>9}" for s in SEVERITIES) + f"{'lib':>6}"
        print(head)
        print("-" * len(head))
        tot: Counter = Counter()
        for app, v in prod:
            c = Counter(f["severity"] for f in v["findings"] if not f.get("suppressed"))
            c["lib"] = sum(library_only(f) for f in v["findings"] if f["severity"] != "secure")
            tot.update(c)
            print(f"{app:58}" + "".join(f"{c[s]:>9}" for s in SEVERITIES) + f"{c['lib']:>6}")
            for f in v["findings"]:
                if f["severity"] in ("critical", "high") and not f.get("suppressed"):
                    e = f["evidence"][0] if f["evidence"] else {}
                    review.append(
                        {
                            "app": app,
                            "rule_id": f["rule_id"],
                            "severity": f["severity"],
                            "title": f["title"]["en"],
                            "evidence": evidence_text(e),
                            "evidence_count": len(f["evidence"]),
                            "library_only": library_only(f),
                        }
                    )
        print("-" * len(head))
        print(f"{'TOTAL':58}" + "".join(f"{tot[s]:>9}" for s in SEVERITIES) + f"{tot['lib']:>6}")
        print(f"\nHigh/critical findings on production apps, for false-positive review ({len(review)}):")
        for x in review:
            lib = "  [library-only]" if x["library_only"] else ""
            more = f" (+{x['evidence_count'] - 1} more)" if x["evidence_count"] > 1 else ""
            print(f"  {x['app']}  {x['rule_id']} {x['severity']}: {x['title']}{lib}")
            print(f"      {x['evidence'][:200]}{more}")

    # library-only findings
    print("\n== Library-only findings (all evidence in well-known third-party packages; 'secure' excluded) ==")
    lib_rules: Counter = Counter()
    for kind in (TRAINING, PRODUCTION):
        fs = [f for v in results.values() if v["kind"] == kind for f in v["findings"] if f["severity"] != "secure"]
        lo = [f for f in fs if library_only(f)]
        lib_rules.update(f["rule_id"] for f in lo)
        hi = sum(f["severity"] in ("critical", "high") for f in lo)
        print(f"  {kind:24} {len(lo):4} of {len(fs):4} findings ({pct(len(lo), len(fs))}); {hi} of them high/critical")
    if lib_rules:
        print("  most frequent: " + ", ".join(f"{rid} x{n}" for rid, n in lib_rules.most_common(10)))

    total = time.perf_counter() - t_start
    print(f"\nScanned {len(results)} APKs in {scan_seconds:.1f} s (scan_bytes); total run time {total:.1f} s")
    if problems:
        print("\nMAP PROBLEMS:", *problems, sep="\n  ")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rules_version": rules_version,
                    "detection": {"found": found, "detectable": det, "rate": round(rate, 1)},
                    "weaknesses": [asdict(w) for w in scored],
                    "production_high_critical": review,
                    "problems": problems,
                },
                indent=1,
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )
    if problems or (args.min_rate is not None and rate < args.min_rate):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
