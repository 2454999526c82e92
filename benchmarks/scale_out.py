"""Scale-out benchmark: rescan the corpus ×R through Celery with 1, 2 and 4 worker processes.

    python benchmarks/scale_out.py [--repeat 10] [--workers 1,2,4]

Starts a throwaway redis-server and `medrisk worker` processes (one pool process each), stores the
corpus ($MEDRISK_CORPUS, default ../shared/corpus/apks) once in a fresh SQLite platform, then measures,
in the same run and on the same scans:

* ``scanner``: the scanner called directly in this process on each stored package (no queue, no database);
* ``job in process``: the scan job's handler (``scanning.run_scan``: load the scan, verify the blob's
  SHA-256, scan, store the result, tell the closed loop) called directly in this process, no queue;
* ``celery, N workers``: R scans per package enqueued on the ``bulk`` queue, timed until all are stored.

Reports scans/s, the scaling factor against 1 worker, the figure per added worker, the queueing overhead
per job (1 worker's wall time per job minus the job run in process; and minus the bare scanner), the
web side's enqueue cost, and a projection for a nightly rescan of 20,000 apps. The load average is
printed with every round (the machine may be shared). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # this checkout's code (workers get it via PYTHONPATH too)

from tests.jobs.procs import RedisServer, Worker, stop_all, wait_for  # noqa: E402

APP_TYPE = "问诊挂号类"


def load() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.2f} {b:.2f} {c:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10, help="scans per package in each round (default 10)")
    ap.add_argument("--workers", default="1,2,4", help="worker counts, one round each (default 1,2,4)")
    ap.add_argument("--apps", type=int, default=20_000, help="apps of the nightly rescan projection")
    args = ap.parse_args()
    corpus = Path(os.environ.get("MEDRISK_CORPUS", REPO.parent / "shared" / "corpus" / "apks"))
    apks = sorted(corpus.glob("*.apk"))
    if not apks:
        raise SystemExit(f"no APKs at {corpus}")
    tmp = Path(tempfile.mkdtemp(prefix="medrisk-scale-"))
    os.environ["MEDRISK_LOG_FORMAT"] = "text"
    redis = RedisServer(tmp)
    redis.start()
    try:
        return run(args, apks, tmp, redis)
    finally:
        stop_all()  # workers and Redis, whatever happened


def run(args: argparse.Namespace, apks: list[Path], tmp: Path, redis: RedisServer) -> int:
    from sqlalchemy import select

    from medrisk.jobs.celery_backend import CeleryConfig
    from medrisk.platform import scanning
    from medrisk.platform.service import ServiceConfig, build
    from medrisk.store.models import Filing, Organisation, Scan, Version, utcnow

    cfg = ServiceConfig(data_dir=tmp, jobs="celery", scan_runner="thread", allow_generated_keystore_password=True)
    cfg.celery = CeleryConfig(broker_url=redis.url, fallback="none")  # a job no worker takes is an error here
    ctx = build(cfg)
    versions: list[tuple[int, int, int]] = []  # (version, filing, org)
    paths: list[Path] = []
    with ctx.db.session() as db:
        org = Organisation(name="bench", kind="national", path="/")
        db.add(org)
        db.flush()
        for i, apk in enumerate(apks):
            blob = ctx.blobs.put_chunks([apk.read_bytes()], 1 << 30)
            f = Filing(
                org_id=org.id,
                name=apk.stem,
                package=f"bench.{i}",
                platform="android",
                app_type=APP_TYPE,
                current_version="1.0",
                privacy_policy_url="https://example.org",
                status="approved",
            )
            db.add(f)
            db.flush()
            v = Version(
                filing_id=f.id,
                org_id=org.id,
                sha256=blob.sha256,
                size=blob.size,
                file_name=apk.name,
                package=f.package,
                certificates=[],
                created_at=utcnow(),
            )
            db.add(v)
            db.flush()
            versions.append((v.id, f.id, org.id))
            paths.append(ctx.blobs.path(blob.sha256))

    def new_scans(repeat: int, limit: int | None = None) -> list[int]:
        with ctx.db.session() as db:
            rows = [
                Scan(version_id=v, filing_id=f, org_id=o, status="queued", created_at=utcnow())
                for _ in range(repeat)
                for v, f, o in versions
            ][:limit]
            db.add_all(rows)
            db.flush()
            return [s.id for s in rows]

    def all_done(ids: list[int]) -> bool:
        with ctx.db.session() as db:
            statuses = list(db.scalars(select(Scan.status).where(Scan.id.in_(ids))))
        return len(statuses) == len(ids) and all(s in ("done", "failed") for s in statuses)

    print(f"corpus: {len(apks)} APKs, ×{args.repeat} per round; {os.cpu_count()} cores; {load()}")
    # 1. the bare scanner in this process (rule library loaded first)
    runner = ctx.scan_runner
    runner.run(paths[0], "warm", APP_TYPE)
    t0 = time.perf_counter()
    for p in paths:
        runner.run(p, p.name, APP_TYPE)
    scanner = (time.perf_counter() - t0) / len(paths)
    print(f"scanner, called directly:   {scanner * 1000:6.1f} ms per APK   ({load()})")
    # 2. the scan job's handler in this process, no queue (database reads and writes included)
    ids = new_scans(1)
    t0 = time.perf_counter()
    for sid in ids:
        scanning.run_scan(ctx, sid)
    job_direct = (time.perf_counter() - t0) / len(ids)
    print(f"scan job, called directly:  {job_direct * 1000:6.1f} ms per job   ({load()})")

    # 3. a job that does nothing (a finished scan: the handler reads it and returns), in process
    noop_ids = ids  # finished in step 2
    t0 = time.perf_counter()
    for sid in noop_ids:
        scanning.run_scan(ctx, sid)
    noop_direct = (time.perf_counter() - t0) / len(noop_ids)

    results: dict[int, float] = {}
    enqueue_cost: dict[int, float] = {}
    noop_celery: float | None = None
    for n in [int(x) for x in args.workers.split(",")]:
        workers = [Worker(f"w{n}-{i}", ctx.db.url, tmp, redis.url, {"MEDRISK_LOG_FORMAT": "text"}) for i in range(n)]
        for w in workers:
            w.wait_ready(120)
        nodes = {w.node for w in workers}
        wait_for(lambda nodes=nodes: nodes <= set(ctx.jobs.workers_alive()), 30, "worker heartbeats", 0.1)
        ctx.jobs.unavailable(max_age=0)
        # warm every pool process (rule library loaded) before timing: one package per process, twice
        warm = new_scans(1, limit=2 * n)
        for sid in warm:
            ctx.jobs.enqueue("scan.bulk", scan_id=sid)
        wait_for(lambda w=warm: all_done(w), 300, "the warm-up scans", 0.1)
        if n == 1:  # the queue alone: jobs that do nothing, one worker process, one after the other
            [ctx.jobs.enqueue("scan.bulk", scan_id=sid) for sid in noop_ids]  # warm-up of this path
            assert ctx.jobs.join(600), "no-op jobs did not finish"
            t0 = time.perf_counter()
            noop_jobs = [ctx.jobs.enqueue("scan.bulk", scan_id=sid) for sid in noop_ids * 3]
            assert ctx.jobs.join(600), "no-op jobs did not finish"
            noop_celery = (time.perf_counter() - t0) / len(noop_jobs)
            print(
                f"no-op job: {noop_direct * 1000:.1f} ms called directly, {noop_celery * 1000:.1f} ms per job through"
                f" Celery with 1 worker ({len(noop_jobs)} jobs)   ({load()})"
            )
        ids = new_scans(args.repeat)
        t0 = time.perf_counter()
        for sid in ids:
            ctx.jobs.enqueue("scan.bulk", scan_id=sid)
        enqueue_cost[n] = (time.perf_counter() - t0) / len(ids)
        wait_for(lambda i=ids: all_done(i), 3600, "the rescans", 0.1)
        wall = time.perf_counter() - t0
        results[n] = len(ids) / wall
        with ctx.db.session() as db:
            failed = db.scalar(select(Scan.id).where(Scan.id.in_(ids), Scan.status != "done").limit(1))
        bad = f"; SOME FAILED (e.g. scan {failed})" if failed else ""
        print(
            f"celery, {n} worker(s):      {wall / len(ids) * 1000:6.1f} ms per job   {len(ids)} scans in {wall:.1f} s"
            f" = {results[n]:.2f} scans/s; enqueue {enqueue_cost[n] * 1000:.2f} ms/job"
            f"{bad}   ({load()})"
        )
        for w in workers:
            w.stop()
    base = results.get(1) or results[min(results)]
    print("scaling (against 1 worker):")
    prev_n, prev_r = None, None
    for n, r in sorted(results.items()):
        step = "" if prev_n is None else f"; +{(r - prev_r) / (n - prev_n):.2f} scans/s per added worker"
        print(f"  {n} worker(s): ×{r / base:.2f} ({r:.2f} scans/s){step}")
        prev_n, prev_r = n, r
    if noop_celery is not None:
        print(
            f"queueing overhead per job (no-op jobs, 1 worker): {(noop_celery - noop_direct) * 1000:.1f} ms"
            " (target ≤ 20 ms)"
        )
    if 1 in results:
        per_job = 1 / results[1]
        print(
            f"scan jobs, 1 worker, wall time per job minus the job called directly: {(per_job - job_direct) * 1000:.1f}"
            f" ms; minus the bare scanner: {(per_job - scanner) * 1000:.1f} ms"
        )
    best_n = max(results, key=lambda k: results[k])
    best = results[best_n]
    print(
        f"{args.apps:,}-app nightly rescan at {best:.2f} scans/s ({best_n} workers, this 2-core machine): "
        f"{args.apps / best / 3600:.2f} h; per 2-core worker machine, 8 h night: {best * 8 * 3600:,.0f} scans"
    )
    ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
