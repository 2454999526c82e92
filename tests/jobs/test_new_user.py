"""The issue's "done when", as a new user meets it, with the real commands: `redis-server`,
`medrisk serve --jobs celery` and two `medrisk worker` processes. An upload's scan runs on a worker;
with the workers stopped, and then Redis too, uploads are still scanned (in the service's process),
each change of state is one clear line in the service's log, and no request hangs."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from medrisk.platform.versions import inspect_package
from tests.jobs.procs import RedisServer, Worker, _code_path, _reap, _started, free_port, wait_for

APKS = ("androguard-hello-world.apk", "DroidBench-LogNoLeak.apk", "androguard-TestActivity.apk")


class Service:
    def __init__(self, data: Path, broker: str, extra_env: dict[str, str] | None = None) -> None:
        import os

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.err = data.parent / "serve.err"
        self.out = data.parent / "serve.out"
        env = {k: v for k, v in os.environ.items() if k not in ("MEDRISK_KEYSTORE_PASSWORD", "MEDRISK_DB_URL")}
        env.update(MEDRISK_LOG_FORMAT="text", PYTHONPATH=_code_path(), **(extra_env or {}))
        cmd = [sys.executable, "-m", "medrisk.cli", "serve", "--data-dir", str(data), "--port", str(self.port)]
        cmd += ["--workers", "1", "--jobs", "celery", "--broker", broker]
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = _started(subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True))
        self.http = httpx.Client(base_url=self.base, timeout=30)

    def up(self) -> bool:
        assert self.proc.poll() is None, self.err.read_text()[-3000:]
        try:
            return self.http.get("/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.err.read_text(errors="replace")

    def login(self, user: str) -> dict[str, str]:
        rows = {m[0]: m[2] for m in re.findall(r"^  (\S+)\s+(\S+)\s+(\S+)\s+(\S+)$", self.out.read_text(), re.M)}
        r = self.http.post("/api/v1/auth/login", json={"username": user, "password": rows[user]})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def upload(self, who: dict[str, str], apk: Path) -> tuple[int, float]:
        """File an app for ``apk`` and upload it: (the version id, seconds the upload request took)."""
        facts = inspect_package(apk.read_bytes())
        body = {
            "name": f"App {facts.package}",
            "package": facts.package,
            "app_type": "问诊挂号类",
            "current_version": facts.version_name or "1.0",
            "privacy_policy_url": "https://example.org/privacy",
            "contacts": [{"name": "王五", "phone": "13800000000"}],
        }
        f = self.http.post("/api/v1/filings", headers=who, json=body)
        assert f.status_code == 201, f.text
        t0 = time.monotonic()
        v = self.http.post(
            f"/api/v1/filings/{f.json()['id']}/versions",
            headers={**who, "Content-Type": "application/octet-stream"},
            content=apk.read_bytes(),
        )
        took = time.monotonic() - t0
        assert v.status_code == 201, v.text
        return v.json()["id"], took

    def scan_done(self, who: dict[str, str], version: int, timeout: float = 90) -> dict:
        def done() -> dict | None:
            scans = self.http.get(f"/api/v1/versions/{version}/scans", headers=who).json()
            return scans[0] if scans and scans[0]["status"] in ("done", "failed") else None

        scan = wait_for(done, timeout, f"the scan of version {version}", 0.2)
        assert scan["status"] == "done" and scan["grade"] in ("A", "B", "C"), scan
        return scan

    def metric(self, line_start: str) -> float:
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(line_start):
                return float(line.rpartition(" ")[2])
        return 0.0


def _worker_scans(workers: list[Worker]) -> float:
    return sum(w.metric("medrisk_jobs_total", job="scan", outcome="done") for w in workers)


def test_upload_scanned_on_a_worker_then_clean_fallback(tmp_path, corpus_dir):
    redis = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    redis.start()
    data = tmp_path / "data"
    svc = Service(data, redis.url)
    workers: list[Worker] = []
    try:
        wait_for(svc.up, 90, "medrisk serve to answer")
        builder = svc.login("hosp.builder")
        db_url = f"sqlite:///{data / 'medrisk.db'}"
        workers = [Worker(n, db_url, data, redis.url, {"MEDRISK_LOG_FORMAT": "json"}) for n in ("one", "two")]
        for w in workers:
            w.wait_ready()
        ready = wait_for(
            lambda: (r := svc.http.get("/readyz").json())["jobs"]["mode"] == "workers" and r, 15, "mode workers"
        )
        assert len(ready["jobs"]["workers"]) == 2, ready
        fallback = 'medrisk_jobs_enqueued_total{backend="fallback",job="scan",queue="interactive"}'
        before = svc.metric(fallback)

        # 1. with Redis and two workers: the upload's scan runs on a worker
        version, _ = svc.upload(builder, corpus_dir / APKS[0])
        svc.scan_done(builder, version)
        assert _worker_scans(workers) == 1
        assert svc.metric(fallback) == before
        # the demo's scans, sent before the workers started, ran in the service: that line, and the
        # "workers are back" of the upload above, are before this point
        seen = len(svc.log())

        # 2. workers stopped: one clear line, the scan runs in the service, the request does not hang
        for w in workers:
            assert w.stop() == 0
        wait_for(lambda: svc.http.get("/readyz").json()["jobs"]["mode"] != "workers", 15, "the service to notice")
        version, took = svc.upload(builder, corpus_dir / APKS[1])
        assert took < 5
        svc.scan_done(builder, version)
        assert svc.metric(fallback) == before + 1
        warning = "WARNING medrisk.jobs.celery_backend: medrisk jobs: "
        lines = [ln for ln in svc.log()[seen:].splitlines() if warning in ln]
        assert len(lines) == 1, lines  # one line for the change of state, not one per job
        assert "no medrisk worker is alive" in lines[0] and "start `medrisk worker`" in lines[0]
        assert "running jobs in this process" in lines[0]

        # 3. Redis gone as well: the same, naming the broker
        redis.kill()
        wait_for(lambda: "unreachable" in str(svc.http.get("/readyz").json()), 15, "the service to notice")
        version, took = svc.upload(builder, corpus_dir / APKS[2])
        assert took < 5
        svc.scan_done(builder, version)
        assert svc.metric(fallback) == before + 2
        lines = [ln for ln in svc.log()[seen:].splitlines() if warning in ln]
        assert len(lines) == 2, lines
        assert re.search(r"job broker redis://127\.0\.0\.1:\d+/0 is unreachable", lines[1]), lines
    finally:
        for w in workers:
            w.stop()
        _reap(svc.proc)
        redis.kill()


def test_demo_scans_of_a_first_start_go_to_the_workers(tmp_path, corpus_dir):
    """`medrisk serve --jobs celery` on an empty data directory, Redis and a worker running: the scans
    the demo seeding creates are sent to the worker like any upload (no `medrisk jobs requeue`)."""
    import sqlite3

    from medrisk.store import migrate

    demo_apks = tmp_path / "corpus"  # two of the demo's corpus APKs, linked (never copied into the repo)
    demo_apks.mkdir()
    for name in ("com.politedroid_4.apk", "DiabetesIntegration-DMS-app-release.apk"):
        (demo_apks / name).symlink_to(corpus_dir / name)
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    data = tmp_path / "data"
    data.mkdir()
    db_url = f"sqlite:///{data / 'medrisk.db'}"
    migrate.upgrade(db_url)  # the schema only: no organisation, no user, so serve seeds the demo
    worker = Worker("demo", db_url, data, redis.url, {"MEDRISK_LOG_FORMAT": "json"})
    svc = None
    try:
        worker.wait_ready()
        svc = Service(data, redis.url, {"MEDRISK_CORPUS": str(demo_apks), "MEDRISK_JOBS_FALLBACK": "none"})
        wait_for(svc.up, 90, "medrisk serve to answer")
        assert "2 corpus releases queued for scanning" in svc.log()

        def statuses() -> list[str] | None:
            with sqlite3.connect(data / "medrisk.db") as con:
                rows = [r[0] for r in con.execute("SELECT status FROM scans ORDER BY id")]
            return rows if len(rows) == 2 and all(r in ("done", "failed") for r in rows) else None

        assert wait_for(statuses, 120, "the demo scans", 0.5) == ["done", "done"]
        assert worker.metric("medrisk_jobs_total", job="scan", outcome="done") == 2
        assert "not sent" not in svc.log() and "running jobs in this process" not in svc.log()
    finally:
        worker.stop()
        if svc is not None:
            _reap(svc.proc)
        redis.kill()
