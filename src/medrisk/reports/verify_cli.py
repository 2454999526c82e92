"""`medrisk verify REPORT`: check a report's detached SM2 signature; `medrisk report`: render a
signed report from the command line (docs/reports.md).

Needs only the platform's public key (``--public-key``, from
/.well-known/medrisk/platform-key.pem, or the data directory's key) and the ``.sig`` file
beside the report. Exit 0 = valid, 1 = the signature does not match, 2 = a file is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _verify(args: argparse.Namespace) -> int:
    from medrisk.platform_cli import _public_keys
    from medrisk.reports.signing import verify_file

    report = Path(args.report)
    if not report.is_file():
        print(f"medrisk: no such report: {report}", file=sys.stderr)
        return 2
    sig = Path(args.signature) if args.signature else None
    if sig is not None and not sig.is_file():
        print(f"medrisk: no such signature file: {sig}", file=sys.stderr)
        return 2
    keys = _public_keys(args)
    res = verify_file(keys.public_key, report, sig)
    if args.json:
        print(json.dumps({"report": str(report), **res.to_dict()}, ensure_ascii=False, indent=1))
    else:
        print(f"{'VERIFIED' if res.ok else 'INVALID'}: {report.name}: {res.reason}")
        print(f"  SM3 {res.sm3}")
        print(f"  key {res.kid}")
    return 0 if res.ok else 1


def _report(args: argparse.Namespace) -> int:
    """Write a signed report and its ``.sig`` (the stored copy when it was rendered before)."""
    from medrisk.platform.errors import PlatformError
    from medrisk.platform_cli import _platform
    from medrisk.reports import signing

    ctx = _platform(args)
    try:
        if args.kind == "periodic":
            from medrisk.reports import statistics

            r = statistics.generate(ctx, args.id, args.period, args.lang)
        else:
            from medrisk.reports.pdf import scan_report
            from medrisk.store.models import Scan

            with ctx.db.session() as db:
                scan = db.get(Scan, args.id)
                if scan is None:
                    print(f"medrisk: scan {args.id} not found", file=sys.stderr)
                    return 2
                r = scan_report(ctx, db, None, scan, args.lang, args.format)
                db.expunge(r)
    except PlatformError as exc:
        print(f"medrisk: {exc.message}", file=sys.stderr)
        return 2
    finally:
        ctx.close()
    out = Path(args.output or f"medrisk-{args.kind}-{args.id}.{r.fmt}")
    out.write_bytes(signing.read(ctx, r))
    out.with_name(out.name + ".sig").write_bytes(signing.signature_der(r))
    print(f"{out} ({r.size} bytes, SM3 {r.sm3}) and {out.name}.sig")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="write a signed report: a scan's, or a jurisdiction's period (periodic)")
    r.add_argument("kind", choices=["scan", "periodic"])
    r.add_argument("id", type=int, help="scan id, or the organisation id of the jurisdiction")
    r.add_argument(
        "--period",
        help="periodic: a month YYYY-MM (default: the previous month), a week YYYY-Www, a quarter YYYY-Qn, a year",
    )
    r.add_argument("--lang", choices=["zh", "en"], default="zh")
    r.add_argument("--format", choices=["pdf", "html"], default="pdf", help="scan reports only")
    r.add_argument("-o", "--output", help="file to write (the signature goes beside it as FILE.sig)")
    r.add_argument("--db", help="database URL (default $MEDRISK_DB_URL, else SQLite in the data directory)")
    r.add_argument("--data-dir", help="data directory (default ./medrisk-data)")
    r.set_defaults(func=_report)

    v = sub.add_parser("verify", help="verify a report's detached SM2 signature (REPORT.sig)")
    v.add_argument("report", help="the report file (PDF or HTML)")
    v.add_argument("--signature", help="the detached signature (default: REPORT.sig)")
    v.add_argument("--public-key", help="platform public key PEM (from /.well-known/medrisk/platform-key.pem)")
    v.add_argument("--data-dir", help="data directory whose public key to use (default ./medrisk-data)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_verify)
