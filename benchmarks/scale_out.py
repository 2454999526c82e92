"""Scale-out benchmark: rescan the corpus ×R through Celery with 1, 2 and 4 worker processes.

    python benchmarks/scale_out.py [--repeat 10] [--workers 1,2,4]

Starts a throwaway redis-server and `medrisk worker` processes (one pool process each), stores the
corpus ($MEDRISK_CORPUS, default ../shared/corpus/apks) once in a fresh SQLite platform, then for each
worker count enqueues R scans per package on the bulk queue and times until all are stored. Reports
scans/s, the scaling factor against 1 worker, the figure per added worker, the queueing overhead per job
(celery wall time per job with 1 worker minus the direct in-process scan time per job) and a projection
for a nightly rescan of 20,000 apps. A benchmark, not a test: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.jobs.procs import RedisServer, Worker, wait_for  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    corpus = Path(os.environ.get("MEDRISK_CORPUS", REPO.parent / "shared" / "corpus" / "apks"))
    apks = sorted(corpus.glob("*.apk"))
    if not apks:
        raise SystemExit(f"no APKs at {corpus}")
    from sqlalchemy import select

    from medrisk.jobs.celery_backend import CeleryConfig
    from medrisk.platform.scanning import ThreadScanRunner
    from medrisk.platform.service import ServiceConfig, build
    from medrisk.store.models import Filing, Organisation, Scan, Version, utcnow

    tmp = Path(tempfile.mkdtemp(prefix="medrisk-scale-"))
    redis = RedisServer(tmp)
    redis.start()
    os.environ["MEDRISK_LOG_FORMAT"] = "text"
    cfg = ServiceConfig(data_dir=tmp, jobs="celery", scan_runner="thread", allow_generated_keystore_password=True)
    cfg.celery = CeleryConfig(broker_url=redis.url, fallback="none")
    ctx = build(cfg)
    versions: list[int] = []
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
                app_type="问诊挂号类",
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
            versions.append(v.id)
    # direct: the scanner called in this process, no queue (rule library loaded first)
    runner = ThreadScanRunner()
    runner.run(ctx.blobs.path(ctx.blobs.put_chunks([apks[0].read_bytes()], 1 << 30).sha256), "warm", "问诊挂号类")
    t0 = time.perf_counter()
    for apk in apks:
        runner.run(apk, apk.name, "问诊挂号类")
    direct = (time.perf_counter() - t0) / len(apks)
    print(f"direct scan: {direct * 1000:.1f} ms per APK ({len(apks)} APKs)")
    results = {}
    for n in [int(x) for x in args.workers.split(",")]:
        workers = [Worker(f"w{n}-{i}", ctx.db.url, tmp, redis.url, {"MEDRISK_LOG_FORMAT": "text"}) for i in range(n)]
        for w in workers:
            w.wait_ready(120)
        # warm every pool process (rule library load) before timing
        with ctx.db.session() as db:
            warm = [
                Scan(version_id=versions[0], filing_id=1, org_id=1, status="queued", created_at=utcnow())
                for _ in range(n * 2)
            ]
            db.add_all(warm)
        for s in warm:
            ctx.jobs.enqueue("scan.bulk", scan_id=s.id)
        ids: list[int] = []
        with ctx.db.session() as db:
            for _ in range(args.repeat):
                for vid in versions:
                    v = db.get(Version, vid)
                    s = Scan(
                        version_id=vid, filing_id=v.filing_id, org_id=v.org_id, status="queued", created_at=utcnow()
                    )
                    db.add(s)
                    db.flush()
                    ids.append(s.id)
        warm_ids = [s.id for s in warm]
        wait_for(lambda w=warm_ids: all_done(ctx, w, Scan, select), 300, "warm-up")
        t0 = time.perf_counter()
        for sid in ids:
            ctx.jobs.enqueue("scan.bulk", scan_id=sid)
        wait_for(lambda i=ids: all_done(ctx, i, Scan, select), 3600, "the rescans", 0.2)
        wall = time.perf_counter() - t0
        results[n] = len(ids) / wall
        print(
            f"{n} worker(s): {len(ids)} scans in {wall:.1f} s = {results[n]:.1f} scans/s, "
            f"{wall / len(ids) * 1000:.1f} ms/job"
        )
        for w in workers:
            w.stop()
    base = results[min(results)]
    for n, r in sorted(results.items()):
        print(f"  {n} workers: ×{r / base:.2f}; per added worker +{(r - base) / max(1, n - 1):.1f} scans/s")
    if 1 in results:
        print(f"queueing overhead per job (1 worker vs direct): {(1 / results[1] - direct) * 1000:.1f} ms")
    best = max(results.values())
    print(f"20,000-app nightly rescan at {best:.1f} scans/s: {20000 / best / 3600:.2f} h on this machine")
    redis.kill()
    return 0


def all_done(ctx, ids, Scan, select) -> bool:  # noqa: N803
    with ctx.db.session() as db:
        return all(s in ("done", "failed") for s in db.scalars(select(Scan.status).where(Scan.id.in_(ids))))


if __name__ == "__main__":
    sys.exit(main())
