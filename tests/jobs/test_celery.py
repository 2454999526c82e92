"""Celery + Redis with real `medrisk worker` processes: an upload's scan on a worker, many scans
across two workers, a worker killed mid-scan, Redis restarted, fallback when they are gone."""

from __future__ import annotations

import logging
import signal
import time

import pytest

from medrisk.jobs import metrics
from medrisk.jobs.celery_backend import CeleryQueue
from medrisk.store.models import utcnow
from tests.jobs.conftest import Cluster
from tests.jobs.procs import wait_for

SMALL = "DroidBench-LogNoLeak.apk"


@pytest.fixture(autouse=True)
def healthy(cluster: Cluster) -> Cluster:
    """Every test starts on Redis and two ready workers, whichever tests ran before it on this
    xdist worker (in a whole-suite run a module's tests are spread over the xdist workers)."""
    cluster.ensure_workers(2)
    return cluster


def _fallbacks(job: str = "scan", queue: str = "interactive") -> float:
    return metrics.ENQUEUED.labels(job, queue, "fallback")._value.get()


def _done_on_workers(c: Cluster, job: str = "scan") -> float:
    return sum(w.metric("medrisk_jobs_total", job=job, outcome="done") for w in c.workers.values())


def test_an_uploads_scan_runs_on_a_worker(cluster, corpus_dir):
    assert isinstance(cluster.ctx.jobs, CeleryQueue)
    before, fallbacks = _done_on_workers(cluster), _fallbacks()
    if SMALL in cluster.uploads:  # filed by an earlier test of this cluster: upload a new release
        v, _first = cluster.uploads[SMALL]
        (sid,) = cluster.new_scans(v["id"], 1)
        cluster.ctx.jobs.enqueue("scan", scan_id=sid)
    else:
        _v, sid = cluster.upload(corpus_dir / SMALL)
    (scan,) = cluster.wait_scans([sid])
    assert scan.status == "done" and scan.grade in ("A", "B", "C") and scan.result_sm3
    assert _done_on_workers(cluster) == before + 1  # it ran on a worker, not in this process
    assert _fallbacks() == fallbacks


def test_many_scans_across_two_workers_each_stored_once(cluster, corpus_dir):
    v, first = cluster.upload(corpus_dir / SMALL)
    cluster.wait_scans([first])
    vid = v["id"]
    before = {n: w.metric("medrisk_jobs_total", job="scan.bulk", outcome="done") for n, w in cluster.workers.items()}
    ids = cluster.new_scans(vid, 60)
    t0 = time.monotonic()
    for sid in ids:
        cluster.ctx.jobs.enqueue("scan.bulk", scan_id=sid)
    rows = cluster.wait_scans(ids, timeout=120)
    elapsed = time.monotonic() - t0
    assert all(s.status == "done" for s in rows), [
        (s.id, s.status, s.error_message) for s in rows if s.status != "done"
    ]
    assert len({s.result_sm3 for s in rows}) == 1  # the same package and rules: one result, stored per scan
    # a worker counts a job after its handler returned, just after the scan row says done: wait for it
    deadline = time.monotonic() + 15
    while True:
        per_worker = {
            n: w.metric("medrisk_jobs_total", job="scan.bulk", outcome="done") - before[n]
            for n, w in cluster.workers.items()
        }
        if sum(per_worker.values()) >= len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sum(per_worker.values()) >= len(ids), per_worker
    assert all(v >= 5 for v in per_worker.values()), per_worker  # spread across both workers
    assert elapsed < 120


LARGE = "InsecureBankv2.apk"


def _attempts(c: Cluster, job_id: str) -> int:
    return int(c.redis.client().get(f"medrisk:job:{job_id}:attempts") or 0)


def test_graceful_stop_then_a_worker_killed_mid_scan_its_job_completes_on_the_other(cluster, corpus_dir):
    v, first = cluster.upload(corpus_dir / LARGE)
    cluster.wait_scans([first])
    # graceful shutdown: worker b finishes what it runs and exits 0; its heartbeat is withdrawn at once
    b = cluster.workers.pop("b")
    node = b.node
    assert node in cluster.ctx.jobs.workers_alive()
    assert b.stop() == 0
    assert node not in cluster.ctx.jobs.workers_alive()
    ids = cluster.new_scans(v["id"], 4)
    jobs = {sid: cluster.ctx.jobs.enqueue("scan.bulk", scan_id=sid) for sid in ids}
    a = cluster.workers["a"]
    running = wait_for(lambda: [s.id for s in cluster.scans(ids) if s.status == "running"], 30, "a running scan", 0.01)
    a.kill(signal.SIGKILL)  # the whole worker, pool included: nothing acknowledges the message
    a.proc.wait(10)
    cluster.workers.pop("a")
    other = cluster.add_worker("c").wait_ready()
    rows = cluster.wait_scans(ids, timeout=60)
    assert [s.status for s in rows] == ["done"] * 4, [(s.id, s.status, s.error_message) for s in rows]
    assert _attempts(cluster, jobs[running[0]]) == 2  # redelivered once, after the visibility timeout
    assert other.metric("medrisk_jobs_total", job="scan.bulk", outcome="done") >= 1
    assert len({s.result_sm3 for s in rows}) == 1


def test_redis_restart_loses_no_job(cluster, corpus_dir):
    v, first = cluster.upload(corpus_dir / SMALL)
    cluster.wait_scans([first])
    ids = cluster.new_scans(v["id"], 20)
    for sid in ids:
        cluster.ctx.jobs.enqueue("scan.bulk", scan_id=sid)
    cluster.redis.kill(signal.SIGKILL)  # no clean shutdown: only the append-only file survives
    time.sleep(1.0)
    cluster.redis.start()
    rows = cluster.wait_scans(ids, timeout=90)
    assert [s.status for s in rows] == ["done"] * len(ids), [(s.id, s.status, s.error_message) for s in rows]
    for w in cluster.workers.values():
        wait_for(w.ready, 30, f"worker {w.name} ready again after the broker restart", 0.2)


def test_priorities_uploads_before_bulk_rescans(cluster, corpus_dir):
    """With every worker busy on a bulk rescan, a builder's upload is the next job to run."""
    v, first = cluster.upload(corpus_dir / SMALL)
    cluster.wait_scans([first])
    bulk = cluster.new_scans(v["id"], 16)
    (urgent,) = cluster.new_scans(v["id"], 1)
    for sid in bulk:
        cluster.ctx.jobs.enqueue("scan.bulk", scan_id=sid)
    waiting = cluster.ctx.jobs.queue_depth()["bulk"]
    sent_at = utcnow()
    cluster.ctx.jobs.enqueue("scan", scan_id=urgent)
    assert waiting >= 4, "the bulk jobs were all taken before the upload arrived: nothing to overtake"
    rows = {s.id: s for s in cluster.wait_scans([*bulk, urgent], timeout=90)}
    # bulk jobs that started after the upload was sent and before it: only those a worker process
    # already held (prefetch 1 per process); however loaded the machine, not the waiting ones
    overtaken = [i for i in bulk if sent_at <= rows[i].started_at < rows[urgent].started_at]
    assert len(overtaken) <= len(cluster.workers), (overtaken, waiting)
    assert any(rows[i].started_at > rows[urgent].started_at for i in bulk)


def test_fallback_when_workers_or_redis_are_gone(cluster, corpus_dir, caplog):
    v, first = cluster.upload(corpus_dir / SMALL)
    cluster.wait_scans([first])
    cluster.stop_workers()
    caplog.set_level(logging.WARNING, logger="medrisk.jobs.celery_backend")
    (sid,) = cluster.new_scans(v["id"], 1)
    # the availability check is cached for a second: wait until the web side has noticed
    wait_for(lambda: cluster.ctx.jobs.unavailable(), 5, "the web side to notice the workers are gone", 0.1)
    fallbacks = _fallbacks()
    t0 = time.monotonic()
    cluster.ctx.jobs.enqueue("scan", scan_id=sid)
    assert time.monotonic() - t0 < 3
    assert cluster.wait_scans([sid], timeout=30)[0].status == "done"
    assert _fallbacks() == fallbacks + 1  # ran in this process
    assert "no medrisk worker is alive" in caplog.text and "running jobs in this process" in caplog.text
    cluster.redis.kill(signal.SIGKILL)
    caplog.clear()
    (sid2,) = cluster.new_scans(v["id"], 1)
    wait_for(
        lambda: "unreachable" in (cluster.ctx.jobs.unavailable() or ""), 5, "the web side to notice Redis is gone", 0.1
    )
    t0 = time.monotonic()
    cluster.ctx.jobs.enqueue("scan", scan_id=sid2)
    assert time.monotonic() - t0 < 3  # no hanging on a dead broker
    assert cluster.wait_scans([sid2], timeout=30)[0].status == "done"
    assert _fallbacks() == fallbacks + 2
    assert "is unreachable" in caplog.text


def test_a_job_the_broker_lost_is_sent_again(cluster, corpus_dir):
    """kombu's window: BRPOP took the message, Redis (or the worker) died before it was recorded as
    unacknowledged. What is left is the ledger entry and no message anywhere: a worker's sweep sends
    it again, the scan is done once and the ledger is cleaned."""
    import json

    from medrisk.jobs.base import new_job_id
    from medrisk.jobs.celery_backend import OUTCOME_KEY, PENDING_KEY, PENDING_MSG_KEY
    from tests.jobs.conftest import VISIBILITY

    v, first = cluster.upload(corpus_dir / SMALL)
    cluster.wait_scans([first])
    (sid,) = cluster.new_scans(v["id"], 1)
    job_id, sent_at = new_job_id(), time.time() - VISIBILITY - 1
    meta = {"job_id": job_id, "enqueued_at": sent_at, "request_id": None}
    record = {"name": "scan.bulk", "payload": {"scan_id": sid}, "meta": meta, "queue": "bulk", "time_limit": 600}
    r = cluster.ctx.jobs.redis
    r.zadd(PENDING_KEY, {job_id: sent_at})
    r.hset(PENDING_MSG_KEY, job_id, json.dumps(record))
    (row,) = cluster.wait_scans([sid], timeout=30)
    assert row.status == "done", (row.status, row.error_message)
    assert wait_for(lambda: r.get(OUTCOME_KEY.format(job_id)), 15, "its outcome") == b"done"
    assert r.zscore(PENDING_KEY, job_id) is None and not r.hexists(PENDING_MSG_KEY, job_id)
    assert sum(w.metric("medrisk_jobs_recovered_total", job="scan.bulk") for w in cluster.workers.values()) == 1
