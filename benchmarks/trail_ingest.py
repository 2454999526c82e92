"""Trail ingestion benchmark (issue 9): sustained signed batches of 500 into the ledger, on a
throwaway PostgreSQL server and on SQLite, with a bare-INSERT floor side by side. Prints
figures; not a timed test.

    python benchmarks/trail_ingest.py                         # 1,000,000 events, PostgreSQL then SQLite
    python benchmarks/trail_ingest.py --events 200000 --backends postgresql
    python benchmarks/trail_ingest.py --events 50000 --floor-events 50000 --json out.json

What is timed is the service's whole work per batch, ``TrailService.ingest_for`` (in process,
no HTTP): schema validation of every event, SM3 digest of every event, SM2 verification of
the sender's batch signature, duplicate check, pseudonymisation (HMAC-SM3, SM4-GCM of new
identities), the streaming rule checks against the stored case states, SM3 chaining, the
inserts of events, case states, identities and violations, the platform's SM2-signed receipt,
and the commit. The senders' side (generating flows, signing batches) runs in a child process
(as other machines would), ahead of and outside the timed section. The stream is the generator's
(trails/generator.py): ten-event prescription flows over several institutions, 5 % of flows with an injected violation.

The floor ("peer") is the cheapest way to put the same rows into the same database: the
ledger's own rows, read back afterwards, inserted into a copy of the table by the driver's
``executemany`` (psycopg 3 / sqlite3) in batches of 500 with a commit each — no checks, no
hashing, no signatures. ``ratio`` = floor rate / MedRisk rate.

Memory: RSS of the service's process (the senders' child excluded) sampled every ``--sample``
events; the 10-million projection extrapolates the slope of RSS over the second half of the
run. PostgreSQL runs with its default durability (fsync on) unless ``--pg-fast``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout, not an installed copy

BATCH = 500
INSTITUTIONS = 4
FLOWS_PER_CHUNK = 500  # per institution at a time (4 x 5,000 events): the stream never sits in memory whole


# --- a throwaway PostgreSQL server (as tests/platform/fixtures.py) ---------------------------------


class PgServer:
    def __init__(self, fast: bool) -> None:
        env = os.environ.get("MEDRISK_PG_BINDIR")
        dirs = [env] if env else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
        self.bindir = next((Path(d) for d in dirs if d and (Path(d) / "initdb").is_file()), None)
        if self.bindir is None:
            sys.exit("PostgreSQL server binaries not found: apt-get install -y postgresql (or MEDRISK_PG_BINDIR)")
        self.root = Path(tempfile.mkdtemp(prefix="medrisk-bench-pg-"))
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            user = "postgres"
            try:
                info = pwd.getpwnam(user)
            except KeyError:
                info = pwd.getpwnam("nobody")
                user = "nobody"
            self.prefix = ["runuser", "-u", user, "--"]
            os.chown(self.root, info.pw_uid, info.pw_gid)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.data = self.root / "data"
        run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
        subprocess.run([*self.prefix, *initdb, "-E", "UTF8", "--locale=C"], **run)
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c shared_buffers=256MB"
        if fast:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = self.root / "server.log"
        subprocess.run(
            [
                *self.prefix,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                opts,
                "-l",
                str(log),
                "-w",
                "start",
            ],
            **run,
        )
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE medrisk_bench ENCODING 'UTF8' TEMPLATE template0")

    def dsn(self, db: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={db}"

    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/medrisk_bench"

    def _pids(self) -> list[str]:
        """The server's processes: the postmaster (postmaster.pid) and its children."""
        try:
            master = (self.data / "postmaster.pid").read_text().split()[0]
        except (OSError, IndexError):
            return []
        pids = [master]
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1] == master:
                        pids.append(pid)
                except (OSError, IndexError):
                    continue
        return pids

    def backend_rss_mb(self) -> float:
        total = 0
        for pid in self._pids():
            try:
                total += _rss_kb(pid)
            except OSError:
                continue
        return total / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU of the server's processes so far (children that exited included)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self._pids():
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(x) for x in f[11:15]) / tick  # utime stime cutime cstime
            except (OSError, IndexError):
                continue
        return total

    def stop(self) -> None:
        subprocess.run(
            [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _rss_kb(pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def rss_mb() -> float:
    return _rss_kb() / 1024


# --- the platform and the stream ----------------------------------------------------------------


def build_platform(url: str, data_dir: Path) -> Any:
    from medrisk.platform.service import ServiceConfig, build

    cfg = ServiceConfig(
        data_dir=data_dir,
        db_url=url,
        jobs="inline",
        scan_runner="thread",
        allow_generated_keystore_password=True,
        keystore_iterations=100_000,
    )
    return build(cfg)


def senders(ctx: Any, n: int) -> list[tuple[int, Any, str]]:
    """n internet hospitals, each with a registered sender key: (org id, private key, key id)."""
    from medrisk.crypto import SM2PrivateKey
    from medrisk.store.models import Organisation, TrailSource

    out = []
    with ctx.db.session() as db:
        for i in range(n):
            org = Organisation(name=f"基准互联网医院 {i + 1}", kind="internet_hospital", path="")
            db.add(org)
            db.flush()
            org.path = f"/{org.id}/"
            key = SM2PrivateKey.generate()
            pub = key.public_key()
            db.add(
                TrailSource(
                    org_id=org.id,
                    name="HIS",
                    key_id=pub.fingerprint(),
                    public_key_pem=pub.to_pem().decode(),
                    created_by="bench",
                )
            )
            out.append((org.id, key, pub.fingerprint()))
    return out


def stream(total: int, insts: int, seed: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(institution index, batch of 500 events), ``total`` events.

    One chunk of flows is generated per institution, then their batches are interleaved, one
    institution after the other, as several hospitals send at the same time. (Before, an
    institution's 40 batches came in a row: with two ingesters, one waited while the other
    worked through them, and the benchmark measured one ingester at a time.)"""
    from medrisk.trails.generator import INJECT, Institution, generate

    shares = {rid: 0.05 / len(INJECT) for rid in INJECT}
    people = [Institution.make(f"b{i}") for i in range(insts)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    pending: list[list[dict[str, Any]]] = [[] for _ in range(insts)]
    sent, chunk = 0, 0
    while sent < total:
        for i in range(insts):
            g = generate(
                people[i],
                FLOWS_PER_CHUNK,
                shares,
                seed=seed + chunk,
                start=start + timedelta(days=chunk // insts),
                roster=chunk < insts,
                first=(chunk // insts) * FLOWS_PER_CHUNK,
            )
            chunk += 1
            pending[i] += g.events
        while sent < total and any(len(p) >= BATCH for p in pending):
            for i in range(insts):
                if len(pending[i]) >= BATCH and sent < total:
                    b, pending[i] = pending[i][:BATCH], pending[i][BATCH:]
                    b = b[: total - sent]
                    sent += len(b)
                    yield i, b


def _sender(
    q: Any, keys: list[bytes], total: int, seed: int, direct: list[Any] | None = None, rate: float = 0.0
) -> None:
    """The institutions' side, in a child process: generate and sign every batch first (into a
    temporary file, reported with "generated"), then hand them over (blocks when 8 ahead).

    Generating ahead keeps the senders' own work out of the timed section and off the paced
    schedule (generated on the fly, a round of flows took the child ~0.7 s during which no batch
    left: paced batches then went out late and in bursts, an artefact of the benchmark).
    ``direct``: one queue per ingesting process, fed straight from here (as senders on other
    machines reach the web processes through the load balancer), not relayed by the main process.
    ``rate``: the senders together offer that many events per second (0: as fast as taken)."""
    import pickle

    from medrisk.crypto import load_private_key_pem
    from medrisk.trails import ledger

    signers = [load_private_key_pem(k) for k in keys]
    with tempfile.TemporaryFile(prefix="medrisk-bench-batches-") as fh:
        n = 0
        for i, batch in stream(total, len(signers), seed):
            pickle.dump((i, batch, ledger.sign_batch(signers[i], batch)), fh, protocol=pickle.HIGHEST_PROTOCOL)
            n += 1
        fh.seek(0)
        q.put(("generated", n))
        t0, offered = time.perf_counter(), 0
        for _ in range(n):
            i, batch, sig = pickle.load(fh)
            due = time.perf_counter()
            if rate:  # the batch is due at its scheduled time, whether or not the service is ready for it
                due = t0 + offered / rate
                time.sleep(max(0.0, due - time.perf_counter()))
                offered += len(batch)
            item = (i, batch, sig, due)  # perf_counter is the system's monotonic clock: the same in every process
            (direct[i % len(direct)] if direct else q).put(item)
    for d in direct or []:
        d.put(None)
    q.put(None)


class SignedBatches:
    """The senders' child process. ``start()`` returns once every batch is generated and signed;
    iterating yields them as they are handed over (nothing, when they go to ``direct`` queues)."""

    def __init__(
        self, who: list[tuple[int, Any, str]], total: int, seed: int, direct: list[Any] | None = None, rate: float = 0.0
    ) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        self.q = ctx.Queue(maxsize=8)
        keys = [k.to_pem() for _, k, _ in who]
        self.p = ctx.Process(target=_sender, args=(self.q, keys, total, seed, direct, rate), daemon=True)

    def start(self) -> int:
        self.p.start()
        t0 = time.perf_counter()
        kind, n = self.q.get()
        assert kind == "generated", kind
        print(f"  senders: {n:,} signed batches generated in {time.perf_counter() - t0:.1f} s (not timed)", flush=True)
        return n

    def __iter__(self) -> Iterator[tuple[int, list, str, float]]:
        try:
            while (item := self.q.get()) is not None:
                yield item
        finally:
            self.p.join(timeout=10)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _ingest_loop(svc: Any, who: list[tuple[int, Any, str]], inq: Any, report: Any) -> None:
    """Take (index, batch, signature) until None; report (seconds, CPU seconds, violations, events, RSS MB)."""
    while (item := inq.get()) is not None:
        i, batch, sig, due = item
        org, _key, kid = who[i]
        try:
            t0, c0 = time.perf_counter(), time.thread_time()
            r = svc.ingest_for(org, kid, sig, batch, now=datetime.now(UTC))
            dt, cpu = time.perf_counter() - t0, time.thread_time() - c0
            assert r.accepted == len(batch), (r.accepted, r.duplicates, r.conflicts)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            report(("error", f"{type(exc).__name__}: {exc}"))
            return
        # sender's view: from the batch being due (sent) to its receipt, waiting for an ingester included
        report((dt, cpu, r.violations, len(batch), rss_mb(), t0 + dt - due))


def _warm(svc: Any) -> None:
    """What a web process does once, before its first request is timed: unwrap the data key
    (PBKDF2-SM3 of the keystore password) and open a database connection."""
    from sqlalchemy import text

    assert svc.pseudonym_key
    with svc.ctx.db.session() as db:
        db.execute(text("SELECT 1"))


def _ingest_process(ctx: Any, who: list[tuple[int, Any, str]], inq: Any, outq: Any) -> None:
    """One web process of the service (docs/deployment.md: web x N): its own database connections."""
    from medrisk.trails.service import service_for

    ctx.db.engine.dispose(close=False)  # the parent's pooled connections are not this process's to use
    svc = service_for(ctx)
    _warm(svc)
    outq.put("ready")
    _ingest_loop(svc, who, inq, outq.put)
    outq.put(None)


def run_medrisk(
    ctx: Any,
    total: int,
    sample: int,
    seed: int,
    pg: PgServer | None,
    ingesters: int = 1,
    processes: bool = False,
    rate: float = 0.0,
) -> dict[str, Any]:
    """Ingest the stream with ``ingesters`` threads of one process (the web service's thread pool
    handling concurrent requests) or, with ``processes``, ``ingesters`` processes (several web
    processes behind the load balancer). Each ingester takes the batches of its own institutions
    (one institution's batches stay in order, as its single sender sends them); different
    institutions' batches overlap, so one ingester's CPU work runs while another waits for the
    database. Correctness does not depend on that split: a batch holds its institution's chain-head
    row lock (trails/service.py)."""
    import multiprocessing as mp
    import queue
    import threading

    from medrisk.trails.service import service_for

    svc = service_for(ctx)
    _warm(svc)
    who = senders(ctx, INSTITUTIONS)
    lat: list[float] = []
    e2e_lat: list[float] = []
    samples: list[dict[str, Any]] = []
    state = {"done": 0, "violations": 0, "busy": 0.0, "cpu": 0.0, "window_n": 0, "window_t0": 0.0, "rss": 0.0}
    lock = threading.Lock()
    errors: list[str] = []
    wall0 = cpu0 = pg_cpu0 = 0.0

    def record(res: tuple) -> None:
        if res[0] == "error":
            errors.append(res[1])
            return
        dt, cpu, violations, n, rss, e2e = res
        with lock:
            lat.append(dt)
            e2e_lat.append(e2e)
            state["busy"] += dt
            state["cpu"] += cpu
            state["violations"] += violations
            state["rss"] = max(state["rss"], rss) if processes else rss_mb()
            before = state["done"]
            state["done"] += n
            state["window_n"] += n
            done = state["done"]
            if done // sample != before // sample or done == total:
                now = time.perf_counter()
                n_batches = max(1, state["window_n"] // BATCH)
                s = {
                    "events": done,
                    "rate": round(state["window_n"] / (now - state["window_t0"])),
                    "p99_ms": round(pct(lat[-n_batches:], 0.99) * 1000, 1),
                    "rss_mb": round(state["rss"], 1),
                }
                if processes:
                    state["rss"] = 0.0  # the largest ingesting process over the next window
                if pg is not None:
                    s["pg_rss_mb"] = round(pg.backend_rss_mb(), 1)
                samples.append(s)
                print(
                    f"  {done:>9,} events  {s['rate']:>6,}/s  p99 {s['p99_ms']:>6} ms  RSS {s['rss_mb']:>6} MB"
                    + (f"  (PostgreSQL {s['pg_rss_mb']} MB)" if pg else ""),
                    flush=True,
                )
                state["window_n"], state["window_t0"] = 0, now

    if processes:
        mpc = mp.get_context("fork")
        outq = mpc.Queue()
        queues: list[Any] = [mpc.Queue(maxsize=4) for _ in range(ingesters)]
        procs = [mpc.Process(target=_ingest_process, args=(ctx, who, q, outq), daemon=True) for q in queues]
        for p in procs:
            p.start()

        for _ in procs:  # the senders start when every web process is up
            assert outq.get(timeout=120) == "ready"

        def collect() -> None:
            ended = 0
            while ended < ingesters:
                res = outq.get()
                if res is None:
                    ended += 1
                else:
                    record(res)

        workers = [threading.Thread(target=collect, daemon=True)]
    else:
        queues = [queue.Queue(maxsize=4) for _ in range(ingesters)]
        workers = [threading.Thread(target=_ingest_loop, args=(svc, who, q, record), daemon=True) for q in queues]
    for t in workers:
        t.start()
    batches = SignedBatches(who, total, seed, direct=queues if processes else None, rate=rate)
    batches.start()  # generated and signed ahead; the clock starts now
    wall0 = time.perf_counter()
    state["window_t0"] = wall0
    cpu0 = time.process_time()
    pg_cpu0 = pg.cpu_seconds() if pg else 0.0
    if processes:  # the senders' process feeds the ingesting processes itself
        for _ in batches:
            pass
    else:
        for item in batches:  # the senders run in a child process
            if errors:
                break
            queues[item[0] % ingesters].put(item)
        for q in queues:
            q.put(None)
    for t in workers:
        t.join()
    if processes:
        for p in procs:
            p.join(timeout=30)
    if errors:
        raise RuntimeError(errors[0])
    wall = time.perf_counter() - wall0
    done = state["done"]
    return {
        "events": done,
        "ingesters": ingesters,
        "ingest_mode": "processes" if processes else "threads",
        "offered": rate or None,
        "batches": len(lat),
        "violations": state["violations"],
        # one thread: events over the time spent inside ingest_for; several: over the wall clock
        "rate": round(done / state["busy"]) if ingesters == 1 else round(done / wall),
        "rate_wall": round(done / wall),
        "p50_ms": round(pct(lat, 0.5) * 1000, 1),
        "p99_ms": round(pct(lat, 0.99) * 1000, 1),
        "max_ms": round(max(lat) * 1000, 1),
        "e2e_p50_ms": round(pct(e2e_lat, 0.5) * 1000, 1),
        "e2e_p99_ms": round(pct(e2e_lat, 0.99) * 1000, 1),
        "cpu_share": round((time.process_time() - cpu0) / wall, 2),
        # CPU per 1,000 events: the service's own (inside ingest_for) and the database server's
        "cpu_ms_per_1000": round(state["cpu"] / done * 1e6),
        "db_cpu_ms_per_1000": round((pg.cpu_seconds() - pg_cpu0) / done * 1e6) if pg else None,
        "samples": samples,
    }


def floor_columns() -> list[str]:
    """The ledger's own column list: the floor inserts the same rows."""
    from medrisk.trails.bulk import EVENT_COLUMNS

    return list(EVENT_COLUMNS)


def run_floor_pg(pg: PgServer, n: int) -> dict[str, Any]:
    """The same rows (read back from the ledger, page by page) by psycopg executemany into a copy
    of the table; only the inserts and their commits are timed."""
    import psycopg
    from psycopg.types.json import Json

    with psycopg.connect(pg.dsn("medrisk_bench")) as conn:
        conn.execute("CREATE TABLE floor_events (LIKE trail_events INCLUDING ALL)")
        conn.commit()
        cols = ", ".join(floor_columns())
        sql = f"INSERT INTO floor_events ({cols}) VALUES ({', '.join(['%s'] * len(floor_columns()))})"
        i = floor_columns().index("payload")

        def pages() -> Iterator[list[tuple]]:
            last, done = 0, 0
            while done < n:
                q = f"SELECT id, {cols} FROM trail_events WHERE id > %s ORDER BY id LIMIT %s"
                rows = conn.execute(q, (last, min(BATCH, n - done))).fetchall()
                conn.commit()
                if not rows:
                    return
                last, done = rows[-1][0], done + len(rows)
                yield [(*r[1 : i + 1], Json(r[i + 1]), *r[i + 2 :]) for r in rows]

        return _floor(conn, sql, pages())


def run_floor_sqlite(path: Path, n: int) -> dict[str, Any]:
    import sqlite3

    conn = sqlite3.connect(path)
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='trail_events'").fetchone()[0]
    conn.execute(ddl.replace("trail_events", "floor_events", 1))
    for (idx,) in conn.execute("SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='trail_events'"):
        if idx:
            conn.execute(
                idx.replace("ix_trail_events", "ix_floor_events").replace("ON trail_events", "ON floor_events")
            )
    conn.commit()
    cols = ", ".join(floor_columns())
    sql = f"INSERT INTO floor_events ({cols}) VALUES ({', '.join(['?'] * len(floor_columns()))})"

    def pages() -> Iterator[list[tuple]]:
        last, done = 0, 0
        while done < n:
            q = f"SELECT id, {cols} FROM trail_events WHERE id > ? ORDER BY id LIMIT ?"
            rows = conn.execute(q, (last, min(BATCH, n - done))).fetchall()
            if not rows:
                return
            last, done = rows[-1][0], done + len(rows)
            yield [r[1:] for r in rows]

    try:
        return _floor(conn, sql, pages())
    finally:
        conn.close()


def _floor(conn: Any, sql: str, pages: Iterator[list[tuple]]) -> dict[str, Any]:
    lat, n = [], 0
    for rows in pages:
        t0 = time.perf_counter()
        cur = conn.cursor()
        cur.executemany(sql, rows)
        conn.commit()
        lat.append(time.perf_counter() - t0)
        n += len(rows)
    return {
        "events": n,
        "rate": round(n / sum(lat)),
        "p50_ms": round(pct(lat, 0.5) * 1000, 1),
        "p99_ms": round(pct(lat, 0.99) * 1000, 1),
    }


def projection(samples: list[dict[str, Any]], target: int = 10_000_000) -> dict[str, Any]:
    """RSS at ``target`` events from the slope over the second half of the samples (least squares)."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        half = samples
    if len(half) < 2:
        half = [{"events": 0, "rss_mb": samples[0]["rss_mb"]}, *samples]
    xs, ys = [s["events"] for s in half], [s["rss_mb"] for s in half]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs) or 1
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var
    rates = [s["rate"] for s in samples]
    q = max(1, len(rates) // 4)
    return {
        "rss_slope_mb_per_million": round(slope * 1e6, 1),
        "rss_at_10m_mb": round(ys[-1] + slope * (target - xs[-1]), 1),
        "rss_last_mb": ys[-1],
        "rate_first_quarter": round(statistics.fmean(rates[:q])),
        "rate_last_quarter": round(statistics.fmean(rates[-q:])),
    }


def backend_run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"medrisk-bench-{backend}-"))
    pg = PgServer(args.pg_fast) if backend == "postgresql" else None
    url = pg.url() if pg else f"sqlite:///{tmp / 'medrisk.db'}"
    try:
        ctx = build_platform(url, tmp)
        load_start = os.getloadavg()[0]
        try:
            print(f"{backend}: {args.events:,} events in batches of {BATCH}, {INSTITUTIONS} institutions", flush=True)
            res = run_medrisk(ctx, args.events, args.sample, args.seed, pg, args.ingesters, args.processes, args.rate)
            res["load_start"], res["load_end"] = load_start, os.getloadavg()[0]
        finally:
            ctx.close()
        n = min(args.floor_events, res["events"])
        res["floor"] = run_floor_pg(pg, n) if pg else run_floor_sqlite(tmp / "medrisk.db", n)
        res["ratio"] = round(res["floor"]["rate"] / res["rate"], 1)
        res["projection"] = projection(res["samples"])
        return res
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _child(q: Any, backend: str, args: argparse.Namespace) -> None:
    q.put(backend_run(backend, args))


def in_child(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Each backend in a fresh process: its RSS figures start from the same baseline."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, backend, args))
    p.start()
    res = q.get()
    p.join()
    return res


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    loads = ", ".join(f"{b} {r['load_start']:.1f} -> {r['load_end']:.1f}" for b, r in results.items())
    print(f"load: {os.cpu_count()} cores; 1-min load average at start -> end: {loads}; {args.events:,} events")
    head = f"{'measure':<44}" + "".join(f"{b:>26}" for b in results)
    print(head)
    rows = [
        ("ingesters", lambda r: f"{r['ingesters']} {r['ingest_mode']}"),
        ("offered events/s (senders)", lambda r: f"{r['offered']:,.0f}" if r["offered"] else "as fast as taken"),
        ("MedRisk events/s (1 ingester: in ingest_for)", lambda r: f"{r['rate']:,}" if r["ingesters"] == 1 else "-"),
        ("MedRisk events/s (wall clock)", lambda r: f"{r['rate_wall']:,}"),
        ("MedRisk p50 / p99 / max per 500-batch, ms", lambda r: f"{r['p50_ms']} / {r['p99_ms']} / {r['max_ms']}"),
        ("  p50 / p99 from due to receipt (queue incl.)", lambda r: f"{r['e2e_p50_ms']} / {r['e2e_p99_ms']}"),
        (
            "CPU ms per 1,000 events: service / server",
            lambda r: (
                f"{r['cpu_ms_per_1000']} / "
                f"{r['db_cpu_ms_per_1000'] if r['db_cpu_ms_per_1000'] is not None else '(in process)'}"
            ),
        ),
        ("floor events/s (bare executemany)", lambda r: f"{r['floor']['rate']:,} ({r['floor']['events']:,})"),
        ("floor p50 / p99 per 500-batch, ms", lambda r: f"{r['floor']['p50_ms']} / {r['floor']['p99_ms']}"),
        ("floor / MedRisk", lambda r: f"{r['ratio']}x"),
        (
            "rate first / last quarter",
            lambda r: f"{r['projection']['rate_first_quarter']:,} / {r['projection']['rate_last_quarter']:,}",
        ),
        (
            "RSS last, MB (slope MB per 1M)",
            lambda r: f"{r['projection']['rss_last_mb']} ({r['projection']['rss_slope_mb_per_million']:+})",
        ),
        ("RSS projected at 10M events, MB", lambda r: f"{r['projection']['rss_at_10m_mb']}"),
        ("violations found", lambda r: f"{r['violations']:,}"),
    ]
    for name, f in rows:
        print(f"{name:<44}" + "".join(f"{f(r):>26}" for r in results.values()))
    pg = results.get("postgresql")
    if pg:
        # paced senders: the p99 a sender sees (waiting for an ingester included), the stricter figure
        p99 = pg["e2e_p99_ms"] if pg["offered"] else pg["p99_ms"]
        ok_rate, ok_p99 = pg["rate"] >= 5000, p99 <= 200
        print(
            f"targets (PostgreSQL): >= 5,000 events/s {'met' if ok_rate else 'NOT met'} ({pg['rate']:,}); "
            f"p99 <= 200 ms {'met' if ok_p99 else 'NOT met'} ({p99} ms"
            + (", due to receipt)" if pg["offered"] else ", in ingest_for)")
        )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of a backend's process (service, floor included): {peak:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="events per backend (default 1,000,000)")
    ap.add_argument("--backends", default="postgresql,sqlite", help="comma-separated: postgresql, sqlite")
    ap.add_argument("--floor-events", type=int, default=200_000, help="rows for the bare-INSERT floor")
    ap.add_argument("--sample", type=int, default=50_000, help="print a sample every N events")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--ingesters", type=int, default=2, help="threads ingesting different institutions' batches (default 2)"
    )
    ap.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="events per second the senders offer together (default 0: as fast as the service takes them)",
    )
    ap.add_argument(
        "--processes",
        action="store_true",
        help="the ingesters are processes (web processes behind a load balancer), not threads of one",
    )
    ap.add_argument("--pg-fast", action="store_true", help="PostgreSQL with fsync/synchronous_commit off")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    results = {}
    for b in [x.strip() for x in args.backends.split(",") if x.strip()]:
        if b not in ("postgresql", "sqlite"):
            ap.error(f"unknown backend {b}")
        results[b] = in_child(b, args)
    report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
