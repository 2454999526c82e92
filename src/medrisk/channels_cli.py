"""`medrisk channels ...`: configure and crawl distribution channels from the command line.

Like ``medrisk org``/``user``, these commands work on the database directly (``--db``,
``--data-dir``) as the platform operator; every change is audited as the ``system`` actor.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _ctx(args: argparse.Namespace) -> Any:
    from medrisk.platform_cli import _platform

    return _platform(args)


def _print(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=1, default=str))


def _resolve(db: Any, ref: str) -> int:
    from sqlalchemy import select

    from medrisk.store.models import Channel

    cid = db.scalar(
        select(Channel.id).where((Channel.name == ref) | (Channel.id == (int(ref) if ref.isdigit() else -1)))
    )
    if cid is None:
        raise SystemExit(f"medrisk: no channel named {ref!r}")
    return int(cid)


def _channels(args: argparse.Namespace) -> int:
    from medrisk.channels.model import ChannelError
    from medrisk.platform.errors import PlatformError
    from medrisk.platform.principal import SYSTEM

    ctx = _ctx(args)
    svc = ctx.channels
    try:
        if args.action == "add":
            cfg: dict[str, Any] = {}
            for item in args.set or []:
                key, _, value = item.partition("=")
                cfg[key] = json.loads(value) if value[:1] in '0123456789tf[{"' and value not in ("", "-") else value
            if args.fingerprint:
                cfg["fingerprint"] = args.fingerprint
            with ctx.db.session() as db:
                ch = svc.add(
                    db,
                    SYSTEM,
                    name=args.name,
                    kind=args.kind,
                    url=args.url,
                    config=cfg,
                    interval_minutes=args.interval,
                    org_id=args.org,
                )
                print(f"channel {ch.id}: {ch.name} ({ch.kind}) {ch.url}")
            return 0
        if args.action == "list":
            with ctx.db.session() as db:
                rows = svc.channels(db, SYSTEM)
            if args.json:
                _print(rows)
            for c in rows if not args.json else []:
                print(
                    f"{c['id']:>4}  {c['name']:<24} {c['kind']:<7} {c['health']:<8} "
                    f"listings={c['counts']['listings']:<6} last={c['last_crawl_at'] or '-'}  {c['url']}"
                )
            return 0
        if args.action == "crawl":
            with ctx.db.session() as db:
                ids = [_resolve(db, r) for r in args.refs] or [c["id"] for c in svc.channels(db, SYSTEM)]
            worst = 0
            for cid in ids:
                rep = svc.crawl(cid)
                if args.json:
                    _print(rep.to_dict())
                else:
                    counts = " ".join(f"{k}={v}" for k, v in sorted(rep.counts.items()) if v)
                    print(f"channel {cid}: {rep.status}{': ' + rep.error if rep.error else ''}  {counts}")
                worst = max(worst, 1 if rep.status == "failed" else 0)
            return worst
        with ctx.db.session() as db:
            if args.action == "show":
                _print(svc.channel_view(db, SYSTEM, _resolve(db, args.refs[0])))
            elif args.action == "listings":
                cid = _resolve(db, args.refs[0]) if args.refs else None
                _print(svc.listings(db, SYSTEM, channel_id=cid, limit=args.limit))
            elif args.action == "verdicts":
                _print(svc.verdicts(db, SYSTEM, kind=args.kind_filter, filing_id=args.filing, limit=args.limit))
            elif args.action == "dismiss":
                v = svc.dismiss(db, SYSTEM, int(args.refs[0]), args.reason or "")
                print(f"verdict {v.id} ({v.kind}) dismissed: {v.dismissed_reason}")
            elif args.action == "app":
                if args.filing is None:
                    raise SystemExit("medrisk: give --filing ID")
                _print(svc.app_view(db, SYSTEM, args.filing))
        return 0
    except (PlatformError, ChannelError) as exc:
        print(f"medrisk: {getattr(exc, 'message', str(exc))}", file=sys.stderr)
        return 2
    finally:
        ctx.close()


def register(sub: argparse._SubParsersAction) -> None:
    from medrisk.platform_cli import _common

    c = sub.add_parser(
        "channels",
        help="channel monitoring: add, list, crawl channels; show listings, verdicts (dismiss one), an app's channels",
        description="Watch distribution channels for tampered, look-alike and drifted copies of filed apps "
        "(docs/channels.md).",
    )
    c.add_argument("action", choices=["add", "list", "crawl", "show", "listings", "verdicts", "dismiss", "app"])
    c.add_argument("refs", nargs="*", help="channel names or ids (crawl: none = all)")
    c.add_argument("--name", help="add: the channel's name")
    c.add_argument("--kind", default="fdroid", help="add: fdroid (default), feed, folder, or module:Class")
    c.add_argument("--url", help="add: repository or feed URL, or folder path")
    c.add_argument("--fingerprint", help="add: F-Droid repository key SHA-256 (else pinned on first crawl)")
    c.add_argument("--interval", type=int, default=360, help="add: minutes between crawls (default 360)")
    c.add_argument("--org", type=int, help="add: the regulator organisation watching it")
    c.add_argument("--set", action="append", metavar="KEY=VALUE", help="add: a channel setting, e.g. max_downloads=20")
    c.add_argument("--kind-filter", dest="kind_filter", help="verdicts: tampered, lookalike, drift, ...")
    c.add_argument("--filing", type=int, help="verdicts/app: a filing id")
    c.add_argument("--reason", help="dismiss: why the verdict is no threat (kept and audited)")
    c.add_argument("--limit", type=int, default=200)
    c.add_argument("--json", action="store_true", help="list/crawl: JSON output")
    _common(c)
    c.set_defaults(func=_channels_checked)


def _channels_checked(args: argparse.Namespace) -> int:
    if args.action == "add" and not (args.name and args.url):
        print("medrisk: channels add needs --name and --url", file=sys.stderr)
        return 2
    if args.action == "show" and not args.refs:
        print("medrisk: channels show needs a channel name or id", file=sys.stderr)
        return 2
    if args.action == "dismiss" and not (len(args.refs) == 1 and args.refs[0].isdigit()):
        print("medrisk: channels dismiss needs one verdict id (and --reason)", file=sys.stderr)
        return 2
    return _channels(args)
