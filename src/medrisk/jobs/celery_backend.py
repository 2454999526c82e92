"""The distributed backend: Celery with Redis as broker and result backend.

One Celery task, ``medrisk.job(name, payload, meta)``, carries every job: the name picks the
registered ``JobSpec`` on the worker (the worker builds the same Platform, so the same jobs
are registered there), the payload is the job's ids and ``meta`` its id, enqueue time and
the request id. Reliability settings (docs/jobs.md):

* ``acks_late`` + ``reject_on_worker_lost``: a message is acknowledged after the job ran;
  a pool child that dies requeues it at once, a whole worker that dies (SIGKILL, power)
  leaves it unacknowledged in Redis, and another worker restores it after the visibility
  timeout.
* attempts are counted in Redis per job id (``medrisk:job:<id>:attempts``), so retries
  after an exception *and* redeliveries after a crash are bounded: past ``max_attempts``
  the job is parked, never retried forever.
* queues ``interactive``, ``default``, ``bulk`` are consumed in that order
  (``queue_order_strategy=priority``), one message per worker process at a time
  (prefetch 1), so a bulk rescan never delays a builder's upload by more than one job.

The web side (``CeleryQueue.enqueue``) checks that Redis answers and that a worker has
sent a heartbeat in the last ``HEARTBEAT_TTL`` seconds; if not, it logs why and runs the
job in process (``fallback=local``, the default) instead of hanging or losing it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery import Celery
from kombu import Queue

from medrisk.jobs import logs, metrics
from medrisk.jobs.base import QUEUES, Handler, Parking, Payload, Registry, ThreadQueue, new_job_id, run_attempt

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

TASK = "medrisk.job"
BROKER_ENV = "MEDRISK_BROKER_URL"
RESULT_ENV = "MEDRISK_RESULT_BACKEND"
FALLBACK_ENV = "MEDRISK_JOBS_FALLBACK"
VISIBILITY_ENV = "MEDRISK_JOBS_VISIBILITY_TIMEOUT"
WORKERS_KEY = "medrisk:workers"  # sorted set: worker name -> time of its last heartbeat
HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TTL = 10.0  # a worker silent for longer counts as gone
ATTEMPTS_TTL = 7 * 24 * 3600
ATTEMPTS_KEY = "medrisk:job:{}:attempts"
OUTCOME_KEY = "medrisk:job:{}:outcome"  # done | parked, when the job has finished (for ``join``)
OUTCOME_TTL = 24 * 3600


@dataclass
class CeleryConfig:
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str | None = None  # default: the broker
    # seconds before an unacknowledged message (its worker died) is given to another worker;
    # must exceed the longest job including its wait in a worker's prefetch buffer
    visibility_timeout: float = 3600.0
    fallback: str = "local"  # local: run in process while no broker/worker; none: log and leave it queued
    local_workers: int = 2  # threads of the in-process fallback

    @classmethod
    def from_env(cls, broker_url: str | None = None) -> CeleryConfig:
        env = os.environ.get
        return cls(
            broker_url=broker_url or env(BROKER_ENV) or cls.broker_url,
            result_backend=env(RESULT_ENV) or None,
            visibility_timeout=float(env(VISIBILITY_ENV) or cls.visibility_timeout),
            fallback=env(FALLBACK_ENV) or "local",
        )

    def safe_broker(self) -> str:
        from kombu.utils.url import maybe_sanitize_url

        return str(maybe_sanitize_url(self.broker_url))


def make_app(cfg: CeleryConfig) -> Celery:
    app = Celery("medrisk", broker=cfg.broker_url, backend=cfg.result_backend or cfg.broker_url, set_as_current=False)
    transport = {
        "visibility_timeout": cfg.visibility_timeout,
        "queue_order_strategy": "priority",  # interactive before default before bulk, strictly
        "socket_connect_timeout": 2,
        "socket_timeout": 10,  # a publish on a dead connection fails instead of hanging
        "health_check_interval": 10,
        # look for messages of dead workers every visibility_timeout/4 (at least every 1 s)
        "unacked_restore_interval": max(1, min(60, int(cfg.visibility_timeout / 4))),
        "unacked_restore_throttle": 1,
    }
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure=True,  # our task only fails if the retry could not be published (logged)
        task_acks_on_timeout=False,  # a hard time limit requeues: the attempt counter parks a repeat offender
        worker_prefetch_multiplier=1,
        task_queues=[Queue(q, routing_key=q) for q in QUEUES],
        task_default_queue="default",
        task_create_missing_queues=False,
        broker_transport_options=transport,
        result_backend_transport_options={"socket_connect_timeout": 2, "socket_timeout": 10},
        redis_socket_connect_timeout=2,
        redis_socket_timeout=10,
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # workers wait for Redis as long as it takes
        broker_connection_timeout=2,
        worker_cancel_long_running_tasks_on_connection_loss=False,  # acks_late: they are redelivered if needed
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_enable_remote_control=True,
        # No result backend traffic per job: a STARTED and a SUCCESS record cost four Redis round trips,
        # and a STARTED write that fails (Redis restarting) failed the task before its body ran, and the
        # message was then acknowledged: the job was lost. Outcomes are one key per job (``OUTCOME_KEY``).
        task_track_started=False,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        broker_channel_error_retry=True,
    )
    app.task(name=TASK, bind=True, max_retries=None, acks_late=True)(_run_task)
    return app


# --- worker side -------------------------------------------------------------------------------------

# The worker's queue (its Platform's ``jobs``), built in each pool process by ``medrisk.jobs.worker``.
_WORKER_QUEUE: CeleryQueue | None = None
_WORKER_FACTORY: Any = None  # () -> CeleryQueue, set by the worker before the pool forks


def worker_queue() -> CeleryQueue:
    global _WORKER_QUEUE
    if _WORKER_QUEUE is None:
        assert _WORKER_FACTORY is not None, "not a medrisk worker (start it with `medrisk worker`)"
        _WORKER_QUEUE = _WORKER_FACTORY()
    return _WORKER_QUEUE


def _run_task(task: Any, name: str, payload: dict[str, Payload], meta: dict[str, Any]) -> str:
    from celery.exceptions import Reject

    q = worker_queue()
    spec = q.specs.get(name)
    job_id = str(meta.get("job_id") or task.request.id)
    if spec is None:  # a worker of another version: put it back for one that knows the job
        log.error("job %s %s is not registered in this worker", name, job_id)
        raise Reject(f"unknown job {name}", requeue=False)
    try:
        attempt = q.count_attempt(job_id)
    except Exception as exc:  # Redis restarting: put the message back (or leave it unacknowledged), never drop it
        log.warning("job %s %s: cannot count its attempt (%s); requeued", name, job_id, exc)
        raise Reject(f"broker unavailable: {exc}", requeue=True) from exc
    res = run_attempt(spec, payload, job_id, attempt, q.parking, meta.get("enqueued_at"), meta.get("request_id"))
    if res.outcome == "retry":
        try:
            raise task.retry(countdown=res.delay, max_retries=None)
        except Reject:
            raise
        except Exception as exc:
            from celery.exceptions import Retry

            if isinstance(exc, Retry):
                raise
            log.error("job %s %s: could not schedule its retry (%s); requeued", name, job_id, exc)
            raise Reject(str(exc), requeue=True) from exc
    try:
        q.redis.set(OUTCOME_KEY.format(job_id), res.outcome, ex=OUTCOME_TTL)
    except Exception as exc:  # the job itself is finished; only ``join`` on the web side misses it
        log.warning("job %s %s: outcome not recorded (%s)", name, job_id, exc)
    return res.outcome


# --- the queue ---------------------------------------------------------------------------------------


class CeleryQueue(Registry):
    """``JobQueue`` on Celery; the same object serves the web side (enqueue) and the workers (registry)."""

    def __init__(self, cfg: CeleryConfig, parking: Parking | None = None) -> None:
        super().__init__(parking)
        self.cfg = cfg
        self.app = make_app(cfg)
        self._redis: redis.Redis | None = None
        self._checked_at = 0.0
        self._problem: str | None = None
        self._announced: str | None = "unknown"
        self._local: ThreadQueue | None = None
        self._lock = threading.Lock()
        self._sent: deque[str] = deque(maxlen=10_000)

    # --- connections ---

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            import redis as redis_lib

            self._redis = redis_lib.Redis.from_url(
                self.cfg.broker_url, socket_connect_timeout=1, socket_timeout=2, health_check_interval=10
            )
        return self._redis

    def workers_alive(self) -> list[str]:
        now = time.time()
        return [m.decode() for m in self.redis.zrangebyscore(WORKERS_KEY, now - HEARTBEAT_TTL, "+inf")]

    def queue_depth(self) -> dict[str, int]:
        """Messages waiting per queue (not counting those a worker holds)."""
        pipe = self.redis.pipeline()
        for q in QUEUES:
            pipe.llen(q)
        return dict(zip(QUEUES, (int(n) for n in pipe.execute())))

    def unavailable(self, max_age: float = 1.0) -> str | None:
        """Why jobs cannot go to workers now (None: they can); checked at most once per ``max_age``."""
        now = time.monotonic()
        if now - self._checked_at < max_age:
            return self._problem
        try:
            self.redis.ping()
            alive = self.workers_alive()
            problem = (
                None
                if alive
                else f"no medrisk worker is alive (no heartbeat within {HEARTBEAT_TTL:g} s): start `medrisk worker`"
            )
        except Exception as exc:
            problem = f"job broker {self.cfg.safe_broker()} is unreachable ({type(exc).__name__}: {exc})"
        self._problem, self._checked_at = problem, now
        return problem

    def count_attempt(self, job_id: str, patience: float = 5.0) -> int:
        """This delivery's attempt number (counted in Redis; retried for ``patience`` s while Redis restarts)."""
        import redis as redis_lib

        key = ATTEMPTS_KEY.format(job_id)
        deadline, delay = time.monotonic() + patience, 0.1
        while True:
            try:
                pipe = self.redis.pipeline()
                pipe.incr(key)
                pipe.expire(key, ATTEMPTS_TTL)
                return int(pipe.execute()[0])
            except (redis_lib.ConnectionError, redis_lib.TimeoutError):
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    # --- JobQueue ---

    def register(self, name: str, handler: Handler, **options: Any) -> None:
        super().register(name, handler, **options)

    def enqueue(self, name: str, **payload: Payload) -> str:
        spec = self.spec(name, payload)
        job_id = new_job_id()
        problem = self.unavailable()
        if problem is None:
            meta = {"job_id": job_id, "enqueued_at": time.time(), "request_id": logs.request_id()}
            try:
                self.app.send_task(
                    TASK,
                    args=[name, dict(payload), meta],
                    task_id=job_id,
                    queue=spec.queue,
                    routing_key=spec.queue,
                    soft_time_limit=spec.time_limit,
                    time_limit=spec.time_limit + 30,
                    retry=True,
                    retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
                )
                metrics.ENQUEUED.labels(name, spec.queue, "celery").inc()
                self._sent.append(job_id)
                self._announce(None)
                return job_id
            except Exception as exc:
                problem = f"job broker {self.cfg.safe_broker()}: publishing failed ({type(exc).__name__}: {exc})"
                self._problem, self._checked_at = problem, time.monotonic()
        metrics.BROKER_ERRORS.inc()
        self._announce(problem)
        if self.cfg.fallback != "local":
            log.error("job %s %s not sent (%s); it stays queued in the database", name, job_id, problem)
            return job_id
        metrics.ENQUEUED.labels(name, spec.queue, "fallback").inc()
        return self.local.enqueue(name, **payload)

    def _announce(self, problem: str | None) -> None:
        """One clear line per change of state, not one per job."""
        with self._lock:
            if problem == self._announced:
                return
            previous, self._announced = self._announced, problem
        if problem is not None:
            how = "running jobs in this process until it is back" if self.cfg.fallback == "local" else "jobs wait"
            log.warning("medrisk jobs: %s; %s", problem, how)
        elif previous != "unknown":
            log.warning("medrisk jobs: workers are back (broker %s); jobs go to them again", self.cfg.safe_broker())

    @property
    def local(self) -> ThreadQueue:
        with self._lock:
            if self._local is None:
                self._local = ThreadQueue(self.cfg.local_workers, self.parking)
                self._local.specs = self.specs  # the same registrations
            return self._local

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the jobs this process sent (and its in-process fallback) to finish."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._local is not None and not self._local.join(timeout):
            return False
        pending = list(self._sent)
        while pending:
            outcomes = self.redis.mget([OUTCOME_KEY.format(j) for j in pending])
            pending = [j for j, o in zip(pending, outcomes) if o is None]
            if not pending:
                break
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def shutdown(self) -> None:
        if self._local is not None:
            self._local.shutdown()
        if self._redis is not None:
            self._redis.close()


def worker_name(prefix: str = "medrisk") -> str:
    return f"{prefix}-{os.getpid()}@{socket.gethostname()}"
