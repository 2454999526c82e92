"""`medrisk verify REPORT`: check a report's detached SM2 signature (docs/reports.md).

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


def register(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("verify", help="verify a report's detached SM2 signature (REPORT.sig)")
    v.add_argument("report", help="the report file (PDF or HTML)")
    v.add_argument("--signature", help="the detached signature (default: REPORT.sig)")
    v.add_argument("--public-key", help="platform public key PEM (from /.well-known/medrisk/platform-key.pem)")
    v.add_argument("--data-dir", help="data directory whose public key to use (default ./medrisk-data)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_verify)
