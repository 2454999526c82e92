"""Fixtures of the job tests: a real Redis server, real `medrisk worker` processes, platforms.

``cluster`` (per test module): Redis, a platform whose jobs go to Celery, a populated world
and two workers (one pool process each). ``jobs_platform`` is parametrised over the
in-process default (``thread``) and ``celery``, for the job-behaviour tests both must pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from medrisk.jobs.celery_backend import CeleryConfig
from medrisk.platform.context import Platform
from medrisk.platform.scanning import ThreadScanRunner
from medrisk.platform.service import ServiceConfig, build
from medrisk.store.models import Scan, Version, utcnow
from tests.jobs.procs import RedisServer, Worker, stop_all, wait_for
from tests.platform.fixtures import _fast_argon2  # noqa: F401
from tests.platform.world import World, build_world

FINAL = ("done", "failed")
VISIBILITY = 4.0  # seconds before a dead worker's job goes to another (production: 1 h)
# the same job settings for this process (thread backend, fallback) and the workers
JOB_ENV = {
    "MEDRISK_JOBS_VISIBILITY_TIMEOUT": str(VISIBILITY),
    "MEDRISK_JOBS_RETRY_BACKOFF": "0.2",
    "MEDRISK_LOG_FORMAT": "json",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Keep a module's tests on one xdist worker, so one cluster serves them all.

    Only an optimisation: xdist's controller calls this hook only when this file is an initial
    conftest (``pytest -n 2 tests/jobs``), not in a run of the whole suite, where a module's tests
    are spread over the xdist workers and each builds its own cluster (own Redis, own workers, own
    database). No test relies on another having run before it (``healthy`` in test_celery.py)."""
    from xdist.scheduler import LoadScopeScheduling

    return LoadScopeScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def _job_env() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in JOB_ENV}
    os.environ.update(JOB_ENV)
    try:
        yield
    finally:
        stop_all()  # no Redis or worker process outlives the session, whatever failed
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


def make_platform(data_dir: Path, jobs: str, broker: str | None = None) -> Platform:
    cfg = ServiceConfig(
        data_dir=data_dir,
        db_url=f"sqlite:///{data_dir / 'medrisk.db'}",
        jobs=jobs,
        scan_runner="thread",
        allow_generated_keystore_password=True,
        keystore_iterations=100_000,
    )
    if broker:
        cfg.celery = CeleryConfig(broker_url=broker, visibility_timeout=VISIBILITY)
    return build(cfg)


@dataclass
class Cluster:
    ctx: Platform
    world: World
    backend: str
    data_dir: Path
    redis: RedisServer | None = None
    workers: dict[str, Worker] = field(default_factory=dict)
    uploads: dict[str, tuple[dict, int]] = field(default_factory=dict)
    _used: set[str] = field(default_factory=set)  # worker names given so far (each log file its own)

    @property
    def db_url(self) -> str:
        return self.ctx.db.url

    def add_worker(self, name: str, concurrency: int = 1) -> Worker:
        assert self.redis is not None
        w = Worker(name, self.db_url, self.data_dir, self.redis.url, JOB_ENV, concurrency)
        self._used.add(name)
        self.workers[name] = w
        return w

    def stop_workers(self) -> None:
        for w in self.workers.values():
            w.stop()
        self.workers.clear()

    def ensure_workers(self, n: int = 2) -> None:
        """Redis up and ``n`` ready workers (replacing any that died), whatever an earlier test left."""
        assert self.redis is not None
        if not self.redis.ping():
            self.redis.start()
        for name, w in list(self.workers.items()):
            if w.proc.poll() is not None:
                w.stop()
                del self.workers[name]
        while len(self.workers) < n:
            name = next(c for c in "abcdefghijklmnopqrstuvwxyz" if c not in self.workers and c not in self._used)
            self._used.add(name)
            self.add_worker(name)
        for w in self.workers.values():
            w.wait_ready()
        nodes = {w.node for w in self.workers.values()}
        wait_for(lambda: nodes <= set(self.ctx.jobs.workers_alive()), 30, f"heartbeats of {sorted(nodes)}", 0.1)
        assert self.ctx.jobs.unavailable(max_age=0) is None  # the web side sees them now, not in a second

    def scans(self, ids: list[int]) -> list[Scan]:
        with self.ctx.db.session() as db:
            return list(db.scalars(select(Scan).where(Scan.id.in_(ids)).order_by(Scan.id)))

    def wait_scans(
        self, ids: list[int], timeout: float = 60, status: tuple[str, ...] = ("done", "failed")
    ) -> list[Scan]:
        def finished() -> list[Scan] | None:
            rows = self.scans(ids)
            return rows if len(rows) == len(ids) and all(s.status in status for s in rows) else None

        try:
            return wait_for(finished, timeout, f"scans {ids[:5]}… to finish", 0.2)
        except AssertionError as exc:  # say which ones, and in what state, to tell a lost job from a slow one
            late = [(s.id, s.status) for s in self.scans(ids) if s.status not in status]
            raise AssertionError(f"{exc}; not finished: {late}") from None

    def upload(self, apk: Path, who: str = "hosp_builder") -> tuple[dict, int]:
        """File an app for this package and upload it: (the version, its first scan's id).

        A package is filed once per platform: a second call returns the first upload."""
        from medrisk.platform.versions import inspect_package

        if apk.name in self.uploads:
            return self.uploads[apk.name]
        facts = inspect_package(apk.read_bytes())
        f = self.world.file_app(who, package=facts.package, current_version=facts.version_name or "1.0")
        r = self.world.upload(f["id"], apk, who)
        assert r.status_code == 201, r.text
        v = r.json()
        with self.ctx.db.session() as db:
            sid = db.scalar(select(Scan.id).where(Scan.version_id == v["id"]).order_by(Scan.id))
        self.uploads[apk.name] = (v, int(sid))
        return v, int(sid)

    def new_scans(self, version_id: int, n: int) -> list[int]:
        """``n`` queued scans of one stored version (as a bulk rescan creates them)."""
        with self.ctx.db.session() as db:
            v = db.get(Version, version_id)
            assert v is not None
            rows = [
                Scan(version_id=v.id, filing_id=v.filing_id, org_id=v.org_id, status="queued", created_at=utcnow())
                for _ in range(n)
            ]
            db.add_all(rows)
            db.flush()
            return [s.id for s in rows]


def _cluster(tmp: Path, backend: str, redis: RedisServer | None, workers: int) -> Cluster:
    ctx = make_platform(tmp, backend, redis.url if redis else None)
    ctx.scan_runner = ThreadScanRunner()  # this process's scans (thread backend, fallback)
    c = Cluster(ctx, build_world(ctx), backend, tmp, redis)
    for i in range(workers):
        c.add_worker(chr(ord("a") + i))
    for w in c.workers.values():
        w.wait_ready()
    return c


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = _cluster(tmp_path_factory.mktemp("cluster"), "celery", redis_server, 2)
    try:
        yield c
    finally:
        c.stop_workers()
        c.ctx.close()


@pytest.fixture(scope="module", params=["thread", "celery"])
def jobs_platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The same job-behaviour tests on the in-process default and on Celery with two workers."""
    if request.param == "celery":
        yield request.getfixturevalue("cluster")
        return
    c = _cluster(tmp_path_factory.mktemp("thread"), "thread", None, 0)
    try:
        yield c
    finally:
        c.ctx.close()
