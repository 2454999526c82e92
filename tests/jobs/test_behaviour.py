"""Job behaviour both backends must show: the in-process default (``thread``) and Celery with
two real workers. A poison package is parked after its retries without blocking the queue,
a job delivered twice has one effect, and operations endpoints report the state."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from medrisk import platform_cli
from medrisk.store.models import LoopEvent, ParkedJob
from tests.jobs.conftest import Cluster

POISON = "DroidBench-DirectLeak1.apk"
OTHER = "androguard-TestActivity.apk"


def test_a_poison_package_is_parked_after_its_retries_and_the_queue_goes_on(jobs_platform: Cluster, corpus_dir, capsys):
    c = jobs_platform
    v, first = c.upload(corpus_dir / POISON)
    assert c.wait_scans([first])[0].status == "done"
    blob = c.ctx.blobs.path(v["sha256"])
    good = blob.read_bytes()
    blob.write_bytes(good[: len(good) // 2])  # the stored package is torn: every attempt fails
    try:
        (sid,) = c.new_scans(v["id"], 1)
        job_id = c.ctx.jobs.enqueue("scan", scan_id=sid)
        _v2, other = c.upload(corpus_dir / OTHER)  # queued behind it
        (scan,) = c.wait_scans([sid], timeout=60)
        assert scan.status == "failed" and scan.error_code == "job_parked"
        assert "corrupt" in scan.error_message
        assert c.wait_scans([other], timeout=60)[0].status == "done"  # the queue was not blocked
        with c.ctx.db.session() as db:
            parked = db.scalars(select(ParkedJob).where(ParkedJob.job_id == job_id)).one()
            assert (parked.name, parked.payload, parked.attempts, parked.status) == (
                "scan",
                {"scan_id": sid},
                3,
                "parked",
            )
            assert "ScanJobError" in parked.error and "corrupt" in parked.error
        # visible to administrators over the API, and on the command line
        r = c.world.client.get("/api/v1/jobs/parked", headers=c.world.h("admin"))
        assert r.status_code == 200
        (row,) = [j for j in r.json() if j["job_id"] == job_id]
        assert row["attempts"] == 3 and "corrupt" in row["error"]
        assert c.world.client.get("/api/v1/jobs/parked", headers=c.world.h("hosp_builder")).status_code == 403
        assert platform_cli.main(["jobs", "parked", "--db", c.db_url, "--data-dir", str(c.data_dir), "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert any(j["job_id"] == job_id and j["attempts"] == 3 for j in listed)
    finally:
        blob.write_bytes(good)
    # fixed: an administrator retries it, the same scan runs to the end
    r = c.world.client.post(f"/api/v1/jobs/parked/{parked.id}/retry", headers=c.world.h("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "retried" and r.json()["new_job_id"]
    (scan,) = c.wait_scans([sid], timeout=60, status=("done",))
    assert scan.grade in ("A", "B", "C")
    again = c.world.client.post(f"/api/v1/jobs/parked/{parked.id}/retry", headers=c.world.h("admin"))
    assert again.json()["status"] == "retried" and again.json()["new_job_id"] is None  # once


def test_a_job_delivered_twice_has_one_effect(jobs_platform: Cluster, corpus_dir):
    c = jobs_platform
    v, first = c.upload(corpus_dir / OTHER)
    c.wait_scans([first])
    (sid,) = c.new_scans(v["id"], 1)
    for _ in range(3):  # at-least-once: the same message may arrive more than once, even concurrently
        c.ctx.jobs.enqueue("scan", scan_id=sid)
    (scan,) = c.wait_scans([sid], timeout=60)
    assert scan.status == "done"
    finished, digest = scan.finished_at, scan.result_sm3
    c.ctx.jobs.enqueue("scan", scan_id=sid)  # and again, long after
    assert c.ctx.jobs.join(30)
    (after,) = c.scans([sid])
    assert (after.finished_at, after.result_sm3) == (finished, digest)  # never rewritten
    with c.ctx.db.session() as db:
        events = db.scalar(select(func.count()).select_from(LoopEvent).where(LoopEvent.event_id == f"scan:{sid}"))
    assert events <= 1


def test_operations_endpoints(jobs_platform: Cluster, corpus_dir):
    c = jobs_platform
    client = c.world.client
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    if c.backend == "celery":
        assert ready.json()["jobs"]["mode"] == "workers" and len(ready.json()["jobs"]["workers"]) == 2
    r = client.get("/api/v1/auth/me", headers={"X-Request-ID": "req-42.test"})
    assert r.headers["x-request-id"] == "req-42.test"
    assert len(client.get("/healthz").headers["x-request-id"]) == 32  # one is made when none is sent
    v, first = c.upload(corpus_dir / OTHER)
    c.wait_scans([first])
    (waiting,) = c.new_scans(v["id"], 1)  # queued, not sent yet
    body = client.get("/metrics").text
    for name in (
        'medrisk_queue_depth{queue="interactive"}',
        'medrisk_scans_finished_last_minute{status="done"}',
        'medrisk_scans_unfinished{status="queued"} 1.0',
        "medrisk_jobs_parked",
        "medrisk_jobs_broker_up 1.0",
    ):
        assert name in body, name
    c.ctx.jobs.enqueue("scan", scan_id=waiting)
    c.wait_scans([waiting])
    assert 'medrisk_scans_unfinished{status="queued"}' not in client.get("/metrics").text
    if c.backend == "celery":
        assert "medrisk_workers_alive 2.0" in body
        assert sum(w.metric("medrisk_job_duration_seconds_count", job="scan") for w in c.workers.values()) >= 1
    else:
        assert 'medrisk_jobs_total{job="scan",outcome="done"}' in body
