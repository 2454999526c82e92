"""`medrisk trails …`: verify the ledger, back-fill from JSON Lines, run the windowed checks, the rule
set, and the sender's side (a key pair, generated trails, signing and sending them).

``register(sub)`` adds the command to the main parser (cli.py). Database commands take
``--db URL`` and ``--data-dir DIR`` like the platform's (docs/platform.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database URL (default $MEDRISK_DB_URL, else SQLite in the data directory)")
    p.add_argument("--data-dir", help="data directory (default $MEDRISK_DATA_DIR, else ./medrisk-data)")


def _url(args: argparse.Namespace) -> str:
    from medrisk.platform.service import ServiceConfig, resolve_data_dir

    return ServiceConfig(data_dir=resolve_data_dir(args.data_dir), db_url=args.db).url


def _platform(args: argparse.Namespace) -> Any:
    from medrisk.crypto import PASSWORD_ENV
    from medrisk.jobs import InlineQueue
    from medrisk.platform import service

    cfg = service.ServiceConfig(
        data_dir=service.resolve_data_dir(args.data_dir),
        db_url=args.db,
        jobs="inline",
        scan_runner="thread",
        migrate=False,
    )
    cfg.allow_generated_keystore_password = not os.environ.get(PASSWORD_ENV)
    ctx = service.build(cfg)
    ctx.jobs = InlineQueue()
    return ctx


def _verify(args: argparse.Namespace) -> int:
    """Needs only the database and the platform's public key (like `medrisk audit verify`)."""
    from medrisk.platform.keys import load_public, public_key_path
    from medrisk.platform.service import resolve_data_dir
    from medrisk.store.db import Database
    from medrisk.trails import ledger

    path = Path(args.public_key) if args.public_key else public_key_path(resolve_data_dir(args.data_dir) / "keys")
    if not path.is_file():
        print(f"medrisk: no public key at {path}: pass --public-key FILE", file=sys.stderr)
        return 2
    keys = load_public(path)
    db = Database(_url(args))
    try:
        with db.session() as s:
            rep = ledger.verify(s, keys, args.org)
    finally:
        db.dispose()
    if args.json:
        print(json.dumps(rep.to_dict(), ensure_ascii=False, indent=1))
    elif rep.ok:
        print(f"trail ledger OK: {rep.events} events of {rep.orgs} institution(s), {rep.batches} signed receipts")
    else:
        p = rep.problems[0]
        where = f"institution {p.org_id} at position {p.seq}"
        print(f"trail ledger TAMPERED: first problem in {where} ({p.kind}): {p.message}")
        for q in rep.problems[1:10]:
            print(f"  also institution {q.org_id} position {q.seq} ({q.kind}): {q.message}")
    return 0 if rep.ok else 1


def _import(args: argparse.Namespace) -> int:
    from medrisk.platform.errors import PlatformError
    from medrisk.trails.service import service_for

    ctx = _platform(args)
    try:
        sig = Path(args.signature) if args.signature else Path(str(args.file) + ".sig")
        res = service_for(ctx).import_jsonl(args.org, args.key_id, Path(args.file), sig, actor="cli")
    except PlatformError as exc:
        print(f"medrisk: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"medrisk: {exc}", file=sys.stderr)
        return 2
    finally:
        ctx.close()
    print(json.dumps(res, ensure_ascii=False))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from medrisk.trails.service import service_for

    now = datetime.fromisoformat(args.now).astimezone(UTC) if args.now else None
    ctx = _platform(args)
    try:
        n = service_for(ctx).sweep(now)
    finally:
        ctx.close()
    print(f"windowed checks: {n} new violation(s)")
    return 0


def _rules(args: argparse.Namespace) -> int:
    from medrisk.trails.rules import RuleError, load_rules
    from medrisk.trails.testing import run_all

    try:
        rs = load_rules(Path(args.rules) if args.rules else None)
    except RuleError as exc:
        print(f"medrisk: {exc}", file=sys.stderr)
        return 2
    if args.action == "list":
        for r in rs.rules:
            title = r.title.en if args.lang == "en" else r.title.zh
            print(f"{r.id:<8} {r.severity:<9} {r.check:<7} {title}")
        return 0
    if args.action == "show":
        r = rs.get(args.id or "")
        if r is None:
            print(f"medrisk: no trail rule {args.id}", file=sys.stderr)
            return 2
        print(json.dumps({**r.to_dict(), "condition": r.condition}, ensure_ascii=False, indent=1))
        return 0
    results = run_all(rs)
    bad = [x for x in results if not x.ok]
    for x in bad:
        print(f"FAIL {x.rule}: {x.name} (expected {x.expect}; fired {', '.join(sorted(x.fired)) or 'nothing'})")
    print(f"{len(results) - len(bad)}/{len(results)} trail rule test cases pass ({len(rs.rules)} rules)")
    return 1 if bad else 0


def _keygen(args: argparse.Namespace) -> int:
    from medrisk.crypto import SM2PrivateKey

    out = Path(args.out)
    key = SM2PrivateKey.generate()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.to_pem(os.environ.get("MEDRISK_SENDER_KEY_PASSWORD") or None))
    pub = out.with_suffix(".pub.pem")
    pub.write_bytes(key.public_key().to_pem())
    print(f"sender key {out} (0600), public key {pub}; key id {key.public_key().fingerprint()}")
    return 0


def _load_key(path: str) -> Any:
    from medrisk.crypto import load_private_key_pem

    return load_private_key_pem(Path(path).read_bytes(), os.environ.get("MEDRISK_SENDER_KEY_PASSWORD") or None)


def _generate(args: argparse.Namespace) -> int:
    from medrisk.trails.generator import INJECT, Institution, generate

    shares: dict[str, float] = {}
    if args.violations:
        shares = {rid: args.violations / len(INJECT) for rid in INJECT}
    for spec in args.share or []:
        rid, _, value = spec.partition("=")
        if rid not in INJECT:
            print(f"medrisk: no injection for rule {rid!r} (known: {', '.join(INJECT)})", file=sys.stderr)
            return 2
        shares[rid] = float(value)
    start = datetime.fromisoformat(args.start).astimezone(UTC) if args.start else None
    try:
        g = generate(Institution.make(args.institution), args.flows, shares, seed=args.seed, start=start)
    except ValueError as exc:
        print(f"medrisk: {exc}", file=sys.stderr)
        return 2
    with open(args.out, "w", encoding="utf-8") as fh:
        for e in g.events:
            fh.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
    injected = sum(len(v) for v in g.injected.values())
    print(f"{len(g.events)} events, {args.flows} flows, {injected} injected violation(s) -> {args.out}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from medrisk.crypto import sign_file

    sig = sign_file(_load_key(args.key), args.file)
    print(f"signature {sig}")
    return 0


def _send(args: argparse.Namespace) -> int:
    """The sender's side: JSON Lines → signed batches → POST /api/v1/trails/batches."""
    import httpx

    from medrisk.trails import ledger

    key = _load_key(args.key)
    kid = key.public_key().fingerprint()
    headers = {"Authorization": f"Bearer {args.token or os.environ.get('MEDRISK_TRAIL_TOKEN', '')}"}
    totals = {"accepted": 0, "duplicates": 0, "conflicts": 0, "violations": 0, "batches": 0}
    last: dict[str, Any] | None = None
    with open(args.file, encoding="utf-8") as fh, httpx.Client(base_url=args.url, timeout=60) as client:
        batch: list[dict[str, Any]] = []

        def post() -> bool:
            nonlocal last
            body = {"key_id": kid, "signature": ledger.sign_batch(key, batch), "events": batch}
            r = client.post("/api/v1/trails/batches", json=body, headers=headers)
            if r.status_code != 200:
                print(f"medrisk: batch refused ({r.status_code}): {r.text[:500]}", file=sys.stderr)
                return False
            last = r.json()
            for k in ("accepted", "duplicates", "conflicts", "violations"):
                totals[k] += last[k]
            totals["batches"] += 1
            batch.clear()
            return True

        for line in fh:
            if line.strip():
                batch.append(json.loads(line))
            if len(batch) >= args.batch and not post():
                return 1
        if batch and not post():
            return 1
    print(json.dumps(totals))
    if last is not None and args.receipt:
        Path(args.receipt).write_text(json.dumps(last["receipt"], ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"last receipt -> {args.receipt}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("trails", help="business trails: verify the ledger, import, sweep, rules, send")
    ts = t.add_subparsers(dest="trails_command", required=True)

    v = ts.add_parser("verify", help="verify the SM3 chain, signed receipts and sender signatures")
    v.add_argument("--org", type=int, help="one institution (default: all)")
    v.add_argument("--public-key", help="platform public key PEM (default: the data directory's)")
    v.add_argument("--json", action="store_true")
    _common(v)
    v.set_defaults(func=_verify)

    i = ts.add_parser("import", help="back-fill a JSON Lines file signed by a registered sender")
    i.add_argument("file")
    i.add_argument("--org", type=int, required=True, help="the institution's organisation id")
    i.add_argument("--key-id", required=True, help="the sender's key id (GET /api/v1/trails/sources)")
    i.add_argument("--signature", help="detached SM2 signature of the file (default FILE.sig)")
    _common(i)
    i.set_defaults(func=_import)

    s = ts.add_parser("sweep", help="run the windowed checks (e.g. from cron)")
    s.add_argument("--now", help="judge as of this time (ISO 8601 with time zone)")
    _common(s)
    s.set_defaults(func=_sweep)

    r = ts.add_parser("rules", help="list, show or test the trail rule set")
    r.add_argument("action", choices=["list", "show", "test"])
    r.add_argument("id", nargs="?")
    r.add_argument("--rules", help="another rule folder")
    r.add_argument("--lang", choices=["zh", "en"], default="zh")
    r.set_defaults(func=_rules)

    k = ts.add_parser("keygen", help="sender side: a new SM2 key pair (register the .pub.pem)")
    k.add_argument("--out", required=True, help="private key file to create (0600)")
    k.set_defaults(func=_keygen)

    g = ts.add_parser("generate", help="synthetic trails (JSON Lines) with injected violations")
    g.add_argument("--out", required=True)
    g.add_argument("--institution", default="demo", help="a short key for ids and licence numbers")
    g.add_argument("--flows", type=int, default=1000)
    g.add_argument("--violations", type=float, default=0.0, help="total share of flows with a violation")
    g.add_argument("--share", action="append", help="RULE=share, e.g. RX-03=0.05 (repeatable)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--start", help="first day (ISO 8601), default 2026-12-01")
    g.set_defaults(func=_generate)

    sg = ts.add_parser("sign", help="sender side: detached SM2 signature of a JSON Lines file (for import)")
    sg.add_argument("file")
    sg.add_argument("--key", required=True)
    sg.set_defaults(func=_sign)

    sd = ts.add_parser("send", help="sender side: POST a JSON Lines file as signed batches")
    sd.add_argument("file")
    sd.add_argument("--url", required=True, help="the platform, e.g. http://127.0.0.1:8000")
    sd.add_argument("--token", help="an API token with scope trails:write (default $MEDRISK_TRAIL_TOKEN)")
    sd.add_argument("--key", required=True, help="the sender's SM2 private key PEM")
    sd.add_argument("--batch", type=int, default=500)
    sd.add_argument("--receipt", help="write the last signed receipt here")
    sd.set_defaults(func=_send)
