"""`medrisk` subcommands of the platform: serve, db, audit, authcode, gate, org, user, key.

``register(sub)`` adds them to the main parser (cli.py). Commands that need the
database take ``--db URL`` (default ``$MEDRISK_DB_URL``, else SQLite in the data
directory) and ``--data-dir DIR`` (default ``$MEDRISK_DATA_DIR``, else ./medrisk-data).
Secrets (generated passwords, TOTP secrets) go to standard output once, never to logs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the service (FastAPI, SQLAlchemy) is imported only by the commands that use it
    from medrisk.platform.service import ServiceConfig


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database URL (sqlite:///file.db or postgresql+psycopg://user@host/db)")
    p.add_argument("--data-dir", help="data directory: SQLite file, blobs, keys (default ./medrisk-data)")


def _config(args: argparse.Namespace, **kw: Any) -> ServiceConfig:
    from medrisk.platform.service import ServiceConfig, resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    return ServiceConfig(data_dir=data_dir, db_url=args.db, **kw)


def _embedded(cfg: ServiceConfig) -> bool:
    """Embedded mode: no key store password configured, so one is generated beside the keys."""
    from medrisk.crypto import PASSWORD_ENV

    return not os.environ.get(PASSWORD_ENV)


# --- serve ---------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from medrisk.jobs import logs
    from medrisk.platform import service
    from medrisk.web.app import create_app

    logs.setup("web", args.log_format, args.log_level)
    cfg = _config(args, job_workers=args.workers, scan_runner="process", jobs=_jobs_backend(args))
    if cfg.jobs == "celery":
        from medrisk.jobs.celery_backend import CeleryConfig

        cfg.celery = CeleryConfig.from_env(args.broker)
    cfg.allow_generated_keystore_password = _embedded(cfg)
    if cfg.allow_generated_keystore_password:
        print(
            f"medrisk: MEDRISK_KEYSTORE_PASSWORD is not set: using a generated key store password kept in "
            f"{cfg.data_dir / 'keys'} (embedded mode; set the variable in production)",
            file=sys.stderr,
        )
    ctx = service.build(cfg)
    ctx.forwarded_header = args.forwarded_header
    base = f"http://{args.host}:{args.port}"
    if args.demo:
        created = service.seed_demo_if_empty(ctx)
        if created:
            from medrisk.platform.demo import format_credentials

            print(format_credentials(created, base), flush=True)  # console only, once; never logged
    periodic = service.start_background(ctx)
    print(
        f"medrisk: serving {base} (OpenAPI: {base}/openapi.json), database {_safe_url(cfg.url)}",
        file=sys.stderr,
        flush=True,
    )
    print(f"medrisk: {_jobs_status(ctx)}", file=sys.stderr, flush=True)
    try:
        uvicorn.run(create_app(ctx), host=args.host, port=args.port, log_level=args.log_level)
    finally:
        periodic.stop()
        ctx.close()
    return 0


def _jobs_backend(args: argparse.Namespace) -> str:
    from medrisk.platform.service import JOBS_ENV

    jobs = args.jobs or os.environ.get(JOBS_ENV) or "thread"
    if jobs not in ("thread", "celery"):
        raise SystemExit(f"medrisk: --jobs {jobs}: expected thread or celery")
    return jobs


def _jobs_status(ctx: Any) -> str:
    from medrisk.jobs.celery_backend import CeleryQueue

    q = ctx.jobs
    if not isinstance(q, CeleryQueue):
        return "jobs run in this process (embedded; `--jobs celery` sends them to `medrisk worker` processes)"
    problem = q.unavailable(max_age=0)
    where = f"jobs go to Celery workers through {q.cfg.safe_broker()}"
    if problem is None:
        return f"{where}; workers alive: {', '.join(q.workers_alive())}"
    return f"{where}, but {problem}; until then jobs run in this process"


# --- worker, jobs --------------------------------------------------------------------------------


def _worker(args: argparse.Namespace) -> int:
    # prometheus-client picks its multiprocess mode (pool children) when it is first imported
    from medrisk.platform.service import resolve_data_dir

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        mp = resolve_data_dir(args.data_dir) / "metrics" / f"worker-{os.getpid()}"
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(mp)
    from medrisk.jobs import worker

    cfg = _config(args)
    cfg.allow_generated_keystore_password = _embedded(cfg)
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    return worker.run(
        cfg,
        broker_url=args.broker,
        concurrency=args.concurrency,
        queues=queues,
        health_port=args.health_port,
        health_host=args.health_host,
        loglevel=args.log_level,
        log_format=args.log_format,
    )


def _jobs(args: argparse.Namespace) -> int:
    """`medrisk jobs parked | retry ID | dismiss ID | status | rescan-all`."""
    from medrisk.jobs import parking

    cfg = _config(args, jobs=_jobs_backend(args), scan_runner="thread", migrate=False)
    if cfg.jobs == "celery":
        from medrisk.jobs.celery_backend import CeleryConfig

        cfg.celery = CeleryConfig.from_env(args.broker)
    if args.action == "parked":
        from medrisk.store.db import Database

        db = Database(cfg.url)
        try:
            rows = parking.list_parked(db, None if args.all else "parked")
        finally:
            db.dispose()
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=1))
        for r in [] if args.json else rows:
            payload = json.dumps(r["payload"])
            print(f"{r['id']:>5}  {r['status']:<9} {r['name']:<18} {payload}  attempts {r['attempts']}")
            print(f"       {r['parked_at']}  {r['error']}")
        if not rows and not args.json:
            print("no parked jobs")
        return 0
    from medrisk.platform import service

    cfg.allow_generated_keystore_password = _embedded(cfg)
    ctx = service.build(cfg)
    try:
        if args.action == "status":
            print(_jobs_status(ctx))
            if hasattr(ctx.jobs, "queue_depth"):
                try:
                    print("queued: " + ", ".join(f"{k} {v}" for k, v in ctx.jobs.queue_depth().items()))
                except Exception as exc:
                    print(f"queue depth unknown: {exc}")
            return 0
        if args.action == "requeue":  # after a broker lost its data: scans queued or running are sent again
            from medrisk.platform.scanning import requeue_unfinished

            print(f"{requeue_unfinished(ctx)} scans sent again (a scan already finished is not run twice)")
            ctx.jobs.join(None if cfg.jobs == "thread" else 0)
            return 0
        if args.action == "rescan-all":
            from medrisk.jobs.bulk import rescan_all

            n = rescan_all(ctx)
            print(f"{n} rescans queued on the bulk queue")
            ctx.jobs.join(None if cfg.jobs == "thread" else 0)
            return 0
        if args.id is None:
            raise SystemExit(f"medrisk: jobs {args.action} needs the parked job's id")
        out = parking.resolve(ctx.db, ctx.jobs, args.id, args.action, "cli")
        if out is None:
            print(f"medrisk: no parked job {args.id}", file=sys.stderr)
            return 1
        print(json.dumps(out, ensure_ascii=False, indent=1) if args.json else f"parked job {args.id}: {out['status']}")
        if args.action == "retry" and cfg.jobs == "thread":
            ctx.jobs.join()  # in process: run it before exiting
        return 0
    finally:
        ctx.close()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- db, audit, authcode, key --------------------------------------------------------------------


def _db(args: argparse.Namespace) -> int:
    from medrisk.store import migrate

    cfg = _config(args)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    if args.action == "upgrade":
        migrate.upgrade(cfg.url, args.revision)
    print(f"database {_safe_url(cfg.url)}: revision {migrate.current(cfg.url)} (head {migrate.head()})")
    return 0


def _open_db(args: argparse.Namespace) -> Any:
    from medrisk.store.db import Database

    return Database(_config(args).url)


def _public_keys(args: argparse.Namespace) -> Any:
    from medrisk.platform.keys import load_public, public_key_path
    from medrisk.platform.service import resolve_data_dir

    path = (
        Path(args.public_key)
        if getattr(args, "public_key", None)
        else public_key_path(resolve_data_dir(args.data_dir) / "keys")
    )
    if not path.is_file():
        raise SystemExit(
            f"medrisk: no public key at {path}: pass --public-key FILE (from /.well-known/medrisk/platform-key.pem)"
        )
    return load_public(path)


def _audit(args: argparse.Namespace) -> int:
    from medrisk.platform import audit

    db = _open_db(args)
    try:
        if args.action == "checkpoint":
            ctx = _platform(args)
            with ctx.db.session() as s:
                cp = audit.checkpoint(ctx.keys, s)
            print(f"checkpoint at entry {cp.seq}" if cp else "nothing new to checkpoint")
            return 0
        keys = _public_keys(args)
        with db.session() as s:
            rep = audit.verify(keys, s)
    finally:
        db.dispose()
    if args.json:
        print(json.dumps(rep.to_dict(), ensure_ascii=False, indent=1))
    elif rep.ok:
        print(f"audit log OK: {rep.entries} entries ({rep.first_seq}-{rep.last_seq}), {rep.checkpoints} checkpoints")
    else:
        first = rep.problems[0]
        print(f"audit log TAMPERED: first problem at entry {first.seq} ({first.kind}): {first.message}")
        for p in rep.problems[1:10]:
            print(f"  also entry {p.seq} ({p.kind}): {p.message}")
    return 0 if rep.ok else 1


def _authcode(args: argparse.Namespace) -> int:
    from medrisk.platform import authcode

    code = args.code if args.code != "-" else sys.stdin.read().strip()
    keys = _public_keys(args)
    res = authcode.verify_offline(code, keys.public_key)
    if args.online and res.payload is not None:
        from medrisk.store.models import AuthCode

        db = _open_db(args)
        try:
            with db.session() as s:
                row = s.get(AuthCode, str(res.payload.get("jti", "")))
                res.checks["not_revoked"] = row is not None and row.revoked_at is None
                if res.valid and not res.checks["not_revoked"]:
                    res.valid, res.reason = False, "revoked"
        finally:
            db.dispose()
    if args.json:
        print(json.dumps(res.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(f"{'VALID' if res.valid else 'INVALID'}: {res.reason}")
        if res.payload:
            pl = res.payload
            print(f"  filing {pl.get('fid')} rev {pl.get('rev')}, institution {pl.get('ins')}, package {pl.get('pkg')}")
            print(f"  certificates {', '.join(pl.get('crt') or [])}; versions {pl.get('ver')}; expires {pl.get('exp')}")
    return 0 if res.valid else 1


def _key(args: argparse.Namespace) -> int:
    keys = _platform(args).keys
    print(f"# kid (SM3 of SubjectPublicKeyInfo): {keys.kid}", file=sys.stderr)
    sys.stdout.write(keys.public_pem().decode())
    return 0


def _platform(args: argparse.Namespace) -> Any:
    from medrisk.jobs import InlineQueue
    from medrisk.platform import service

    cfg = _config(args, jobs="inline", scan_runner="thread", migrate=False)
    cfg.allow_generated_keystore_password = _embedded(cfg)
    ctx = service.build(cfg)
    ctx.jobs = InlineQueue()
    return ctx


# --- org, user (administrators bootstrapping) -----------------------------------------------------


def _org(args: argparse.Namespace) -> int:
    from medrisk.platform import orgs
    from medrisk.platform.principal import SYSTEM

    ctx = _platform(args)
    with ctx.db.session() as db:
        if args.action == "list":
            for o in orgs.list_orgs(db, SYSTEM):
                print(f"{o.id:>5}  {o.kind:<18} {o.path:<16} {o.name}")
            return 0
        if args.parent is None:
            org = orgs.create_root(db, args.name)
        else:
            org = orgs.create_org(
                ctx, db, SYSTEM, name=args.name, kind=args.kind, parent_id=args.parent, region_code=args.region
            )
        print(f"organisation {org.id}: {org.name} ({org.kind})")
    return 0


def _user(args: argparse.Namespace) -> int:
    from medrisk.platform import users
    from medrisk.platform.auth import enrol_totp_directly
    from medrisk.platform.errors import PlatformError
    from medrisk.platform.roles import TOTP_REQUIRED, Role

    ctx = _platform(args)
    try:
        with ctx.db.session() as db:
            user, password = users.create_user(
                ctx, db, None, org_id=args.org, username=args.username, role=args.role, display_name=args.name or ""
            )
            secret = enrol_totp_directly(ctx, db, user) if Role(args.role) in TOTP_REQUIRED else None
    except PlatformError as exc:
        print(f"medrisk: {exc.message}", file=sys.stderr)
        return 2
    print(f"user {user.id} {user.username} ({user.role}); shown once:")
    print(f"  password:    {password}")
    if secret:
        print(f"  TOTP secret: {secret}")
    return 0


def _gate(args: argparse.Namespace) -> int:
    """`medrisk gate check CODE --version V [--online URL | --status-list FILE|URL]` (docs/loop.md)."""
    from medrisk.loop.gate_client import GateClient, StatusListError

    code = args.code if args.code != "-" else sys.stdin.read().strip()
    try:
        if args.online:
            decision = GateClient.online(args.online).check(code, args.version)
        else:
            client = GateClient(_public_keys(args).public_key)
            src = args.status_list
            if src and src.startswith(("http://", "https://")):
                import httpx

                client.load_status_list(httpx.get(src, timeout=10).content)
            elif src:
                client.load_status_list(Path(src).read_bytes())
            else:
                raise SystemExit("medrisk: give --online URL or --status-list FILE|URL")
            decision = client.check(code, args.version)
    except (StatusListError, OSError, ValueError) as exc:
        print(f"medrisk: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(decision.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(f"{'ALLOW' if decision.allow else 'DENY'}: {decision.reason}")
    return 0 if decision.allow else 1


def register(sub: argparse._SubParsersAction) -> None:
    from medrisk.platform.roles import OrgKind, Role

    s = sub.add_parser("serve", help="run the platform web service (embedded: SQLite, in-process jobs)")
    _common(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument(
        "--demo", action=argparse.BooleanOptionalAction, default=True, help="create demo data on first start"
    )
    s.add_argument("--workers", type=int, default=2, help="background scan workers")
    s.add_argument("--forwarded-header", help="trust this header for client addresses (behind a proxy)")
    s.add_argument("--log-level", default="info")
    s.add_argument(
        "--jobs", choices=["thread", "celery"], help="job backend (default $MEDRISK_JOBS, else thread: in process)"
    )
    s.add_argument("--broker", help="Redis URL of the Celery broker (default $MEDRISK_BROKER_URL)")
    s.add_argument("--log-format", choices=["json", "text"], help="log lines (default $MEDRISK_LOG_FORMAT, else json)")
    s.set_defaults(func=_serve)

    w = sub.add_parser("worker", help="run a Celery worker for the platform's jobs (scans, deliveries, ...)")
    _common(w)
    w.add_argument(
        "--broker", help="Redis URL of the broker (default $MEDRISK_BROKER_URL, else redis://127.0.0.1:6379/0)"
    )
    w.add_argument("--concurrency", "-c", type=int, default=2, help="pool processes (default 2)")
    w.add_argument("--queues", "-Q", default="interactive,default,bulk", help="queues, highest priority first")
    w.add_argument("--health-port", type=int, help="serve /healthz, /readyz, /metrics on this port")
    w.add_argument("--health-host", default="127.0.0.1")
    w.add_argument("--log-level", default="info")
    w.add_argument("--log-format", choices=["json", "text"], help="log lines (default $MEDRISK_LOG_FORMAT, else json)")
    w.set_defaults(func=_worker)

    j = sub.add_parser("jobs", help="parked jobs (retry, dismiss), queue status, bulk rescans")
    j.add_argument("action", choices=["parked", "retry", "dismiss", "status", "rescan-all", "requeue"])
    j.add_argument("id", nargs="?", type=int, help="the parked job's id (retry, dismiss)")
    j.add_argument("--all", action="store_true", help="parked: also those retried or dismissed")
    j.add_argument("--jobs", choices=["thread", "celery"], help="job backend (default $MEDRISK_JOBS)")
    j.add_argument("--broker", help="Redis URL of the broker (default $MEDRISK_BROKER_URL)")
    j.add_argument("--json", action="store_true")
    _common(j)
    j.set_defaults(func=_jobs)

    d = sub.add_parser("db", help="database migrations (Alembic)")
    d.add_argument("action", choices=["upgrade", "current"])
    d.add_argument("--revision", default="head")
    _common(d)
    d.set_defaults(func=_db)

    a = sub.add_parser("audit", help="verify the tamper-evident audit log, or sign a checkpoint now")
    a.add_argument("action", choices=["verify", "checkpoint"])
    a.add_argument("--public-key", help="platform public key PEM (default: the data directory's)")
    a.add_argument("--json", action="store_true")
    _common(a)
    a.set_defaults(func=_audit)

    c = sub.add_parser("authcode", help="verify an authorisation code offline")
    c.add_argument("action", choices=["verify"])
    c.add_argument("code", help="the code, or - to read it from standard input")
    c.add_argument("--public-key", help="platform public key PEM (from /.well-known/medrisk/platform-key.pem)")
    c.add_argument("--online", action="store_true", help="also check revocation in the database")
    c.add_argument("--json", action="store_true")
    _common(c)
    c.set_defaults(func=_authcode)

    k = sub.add_parser("key", help="print the platform's SM2 public key (generated on first use)")
    k.add_argument("action", choices=["show"])
    _common(k)
    k.set_defaults(func=_key)

    o = sub.add_parser("org", help="list or add organisations (administrators)")
    o.add_argument("action", choices=["list", "add"])
    o.add_argument("--name")
    o.add_argument("--kind", default="national", choices=[k.value for k in OrgKind])
    o.add_argument("--parent", type=int, help="parent organisation id (none: the national root)")
    o.add_argument("--region", help="6-digit region code")
    _common(o)
    o.set_defaults(func=_org)

    g = sub.add_parser("gate", help="circuit-breaker gate: may this app connect? (online or signed status list)")
    g.add_argument("action", choices=["check"])
    g.add_argument("code", help="the authorisation code, or - to read it from standard input")
    g.add_argument("--version", help="the app version connecting (x.y.z)")
    g.add_argument("--online", metavar="URL", help="ask the platform at URL (e.g. http://127.0.0.1:8000)")
    g.add_argument("--status-list", metavar="FILE|URL", help="decide offline from a signed status list")
    g.add_argument("--public-key", help="platform public key PEM (from /.well-known/medrisk/platform-key.pem)")
    g.add_argument("--json", action="store_true")
    _common(g)
    g.set_defaults(func=_gate)

    u = sub.add_parser("user", help="add a user, e.g. the first platform administrator")
    u.add_argument("action", choices=["add"])
    u.add_argument("--org", type=int, required=True)
    u.add_argument("--username", required=True)
    u.add_argument("--role", required=True, choices=[r.value for r in Role])
    u.add_argument("--name", help="display name")
    _common(u)
    u.set_defaults(func=_user)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medrisk")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    from medrisk.store.blobs import BlobStoreError

    try:
        return int(args.func(args))
    except BlobStoreError as exc:  # unreachable object store, wrong credentials: the reason, no traceback
        print(f"medrisk: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
