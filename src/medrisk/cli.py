"""`medrisk` command line.

Exit codes of `medrisk scan`: 0 all scanned and at or above --fail-under;
1 a package graded below --fail-under; 3 a package could not be scanned (the
others are still scanned and reported); 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from medrisk import __version__
from medrisk.analysis.limits import Limits
from medrisk.reports.i18n import pick
from medrisk.store.blobs import BlobStoreError

GRADE_RANK = {"A": 0, "B": 1, "C": 2}


def _scan(args: argparse.Namespace) -> int:
    from medrisk.risk.scoring import ModelError
    from medrisk.rules.loader import RuleError
    from medrisk.rules.suppress import SuppressionError
    from medrisk.scan import ScanOptions, collect, scan_paths

    limits = Limits(
        timeout_seconds=args.timeout,
        memory_bytes=args.memory_mb * 1024 * 1024,
        max_file_bytes=args.max_size_mb * 1024 * 1024,
    )
    options = ScanOptions(
        limits=limits,
        rule_dirs=[Path(d) for d in args.rules],
        risk_model=args.risk_model,
        suppressions=args.suppressions,
        app_type=args.app_type,
        privacy_policy=args.privacy_policy,
    )
    missing = [p for p in args.paths if not Path(p).exists()]
    paths = collect([p for p in args.paths if Path(p).exists()])
    progress = args.progress if args.progress is not None else (len(paths) > 1 and sys.stderr.isatty())
    results: list[dict[str, Any]] = []
    try:
        for i, r in enumerate(scan_paths(paths, options, jobs=args.jobs), 1):
            results.append(r)
            if "error" in r:
                print(f"{r['file']['name']}: error: {r['error']['code']}: {r['error']['message']}", file=sys.stderr)
            if progress:
                _progress(i, len(paths))
    except (RuleError, ModelError, SuppressionError, ValueError) as exc:
        print(f"medrisk: {exc}", file=sys.stderr)
        return 2
    for p in missing:
        print(f"{p}: error: not_found: no such file or folder", file=sys.stderr)
        results.append(
            {
                "schema_version": "1.0",
                "file": {"name": p},
                "error": {"code": "not_found", "message": "no such file or folder"},
            }
        )
    text = _render(results, args.format, args.lang)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if any("error" in r for r in results):
        return 3
    if args.fail_under:
        worst = max((GRADE_RANK[r["risk"]["grade"]] for r in results), default=0)
        if worst > GRADE_RANK[args.fail_under]:
            return 1
    return 0


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    end = "\n" if done == total else ""
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}")
    sys.stderr.flush()


def _render(results: list[dict[str, Any]], fmt: str, lang: str) -> str:
    if fmt == "json":
        from medrisk.scan import SCHEMA_VERSION

        doc = {"schema_version": SCHEMA_VERSION, "tool": {"name": "medrisk", "version": __version__}, "scans": results}
        return json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    if fmt == "sarif":
        from medrisk.reports import sarif

        return json.dumps(sarif.render(results, lang), ensure_ascii=False, indent=1) + "\n"
    if fmt == "html":
        from medrisk.reports import html

        return html.render(results, lang)
    from medrisk.reports import table

    return table.render(results, lang)


def _rules(args: argparse.Namespace) -> int:
    from medrisk.risk.scoring import ModelError, load_model
    from medrisk.rules import testing
    from medrisk.rules.loader import RuleError, load_library

    try:
        rules = load_library([Path(d) for d in args.rules])
        model = load_model(args.risk_model)
    except (RuleError, ModelError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if args.action == "list":
        for r in rules:
            print(f"{r.id:<9} {r.severity:<8} {r.category:<22} {r.masvs:<20} {pick(r.title.to_dict(), args.lang)}")
        print(f"# {len(rules)} rules", file=sys.stderr)
        return 0
    if args.action == "show":
        match = [r for r in rules if r.id == (args.id or "").upper()]
        if not match:
            print(f"no rule with id {args.id}", file=sys.stderr)
            return 1
        r = match[0]
        d = r.to_dict() | {"condition": r.condition, "each": r.each, "source": r.source}
        print(json.dumps(d, ensure_ascii=False, indent=1))
        return 0
    problems = testing.lint(rules, model)
    if args.action == "test":
        problems += testing.run_tests(rules)
    for p in problems:
        print(p)
    print(f"{len(rules)} rules, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medrisk", description="MedRisk: security risk of mobile medical apps")
    p.add_argument("--version", action="version", version=f"medrisk {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("scan", help="scan APK files or folders")
    s.add_argument("paths", nargs="+", help="APK files or folders of APKs")
    s.add_argument("--format", choices=["table", "json", "sarif", "html"], default="table")
    s.add_argument("--output", "-o", help="write the report to this file instead of standard output")
    s.add_argument("--jobs", "-j", type=int, default=1, help="scan N files in parallel")
    s.add_argument("--lang", choices=["zh", "en"], default="zh")
    s.add_argument("--fail-under", choices=["A", "B", "C"], help="exit 1 if a grade is worse than this")
    s.add_argument("--rules", action="append", default=[], help="extra rule folder (repeatable)")
    s.add_argument("--risk-model", type=Path, help="custom risk model YAML")
    s.add_argument("--suppressions", type=Path, help="suppressions YAML (each with a reason)")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds per package (default 120)")
    s.add_argument("--memory-mb", type=int, default=2048, help="memory limit per scan worker (MiB)")
    s.add_argument("--max-size-mb", type=int, default=300, help="largest package accepted (MiB)")
    s.add_argument("--app-type", help="app type from the necessary-information list (privacy checks)")
    s.add_argument("--privacy-policy", type=Path, help="privacy policy file (HTML or text)")
    s.add_argument("--progress", dest="progress", action="store_true", default=None)
    s.add_argument("--no-progress", dest="progress", action="store_false")
    s.set_defaults(func=_scan)

    r = sub.add_parser("rules", help="list, show, lint or test the rule library")
    r.add_argument("action", choices=["list", "show", "lint", "test"])
    r.add_argument("id", nargs="?")
    r.add_argument("--rules", action="append", default=[], help="extra rule folder (repeatable)")
    r.add_argument("--risk-model", type=Path)
    r.add_argument("--lang", choices=["zh", "en"], default="zh")
    r.set_defaults(func=_rules)

    from medrisk import platform_cli  # serve, db, audit, authcode, key, org, user

    platform_cli.register(sub)
    from medrisk import trails_cli  # trails verify, import, sweep, rules, keygen, generate, sign, send

    trails_cli.register(sub)
    from medrisk import channels_cli  # channels (channel monitoring)

    channels_cli.register(sub)
    from medrisk.reports import verify_cli  # verify (signed reports)

    verify_cli.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except BlobStoreError as exc:  # unreachable object store, wrong credentials: the reason, no traceback
        print(f"medrisk: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
