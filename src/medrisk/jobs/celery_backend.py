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
* every sent job is also written to a Redis ledger (``PENDING_KEY``, ``PENDING_MSG_KEY``) until it has
  an outcome. kombu's Redis transport has a window in which a message exists only in a worker's memory:
  between ``BRPOP`` taking it from the list and the pipeline that records it as unacknowledged. Redis or
  the worker dying in that window loses the message (seen in the Redis-restart test, about one run in a
  hundred). The workers sweep the ledger (``reconcile``) and send such a job again; handlers are
  idempotent and a job that already has an outcome is skipped when delivered again.
* queues ``interactive``, ``default``, ``bulk`` are consumed in that order
  (``queue_order_strategy=priority``), one message per worker process at a time
  (prefetch 1), so a bulk rescan never delays a builder's upload by more than one job.

The web side (``CeleryQueue.enqueue``) checks that Redis answers and that a worker has
sent a heartbeat in the last ``HEARTBEAT_TTL`` seconds; if not, it logs why and runs the
job in process (``fallback=local``, the default) instead of hanging or losing it.
"""

from __future__ import annotations

import json
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
PENDING_KEY = "medrisk:jobs:pending"  # sorted set: job id -> time it was (last) sent, until it has an outcome
PENDING_MSG_KEY = "medrisk:jobs:pending:msg"  # hash: job id -> JSON {name, payload, meta, queue}, to send it again
RECONCILE_LOCK = "medrisk:jobs:reconcile"  # one worker sweeps the ledger per interval
RECONCILE_BATCH = 200
# a finished job's outcome, without counting an attempt; else count this one (atomically)
_BEGIN_ATTEMPT = """
local outcome = redis.call('GET', KEYS[1])
if outcome then return {redis.call('GET', KEYS[2]) or 0, outcome} end
local n = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return {n}
"""


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
        # the restore sweep's mutex outlives a Redis crash in the AOF: a holder that lost its connection
        # cannot release it, and no worker restores anything until it expires (default 300 s)
        "unacked_mutex_expire": max(2, min(300, int(cfg.visibility_timeout / 4))),
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
        attempt, finished = q.begin_attempt(job_id)
    except Exception as exc:  # Redis restarting: put the message back (or leave it unacknowledged), never drop it
        log.warning("job %s %s: cannot count its attempt (%s); requeued", name, job_id, exc)
        raise Reject(f"broker unavailable: {exc}", requeue=True) from exc
    if finished is not None:  # a second delivery of a finished job (the ledger sent it again): one effect
        log.info("job %s %s already %s; this delivery is skipped", name, job_id, finished)
        return finished
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
        q.record_outcome(job_id, res.outcome)
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
        return self.begin_attempt(job_id, patience)[0]

    def begin_attempt(self, job_id: str, patience: float = 5.0) -> tuple[int, str | None]:
        """(this delivery's attempt number, the job's outcome if it already finished)."""
        import redis as redis_lib

        key = ATTEMPTS_KEY.format(job_id)
        deadline, delay = time.monotonic() + patience, 0.1
        while True:
            try:
                reply = self.redis.eval(_BEGIN_ATTEMPT, 2, OUTCOME_KEY.format(job_id), key, ATTEMPTS_TTL)
                return int(reply[0]), (reply[1].decode() if len(reply) > 1 else None)
            except (redis_lib.ConnectionError, redis_lib.TimeoutError):
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def record_outcome(self, job_id: str, outcome: str) -> None:
        """The job finished (done or parked): its outcome for ``join``, and out of the ledger, atomically."""
        pipe = self.redis.pipeline()  # MULTI/EXEC
        pipe.set(OUTCOME_KEY.format(job_id), outcome, ex=OUTCOME_TTL)
        pipe.zrem(PENDING_KEY, job_id)
        pipe.hdel(PENDING_MSG_KEY, job_id)
        pipe.execute()

    # --- the ledger of sent jobs ---

    def _forget(self, job_id: str) -> None:
        """Out of the ledger: it was not sent (the fallback runs it, or it waits for ``medrisk jobs requeue``)."""
        try:
            pipe = self.redis.pipeline()
            pipe.zrem(PENDING_KEY, job_id)
            pipe.hdel(PENDING_MSG_KEY, job_id)
            pipe.execute()
        except Exception:  # Redis gone: the sweep may send it once more, and its handler is idempotent
            log.debug("job %s stays in the ledger", job_id, exc_info=True)

    def _publish(
        self, job_id: str, name: str, payload: dict[str, Payload], meta: dict[str, Any], queue: str, time_limit: float
    ) -> None:
        self.app.send_task(
            TASK,
            args=[name, dict(payload), meta],
            task_id=job_id,
            queue=queue,
            routing_key=queue,
            soft_time_limit=time_limit,
            time_limit=time_limit + 30,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        )

    def _held_job_ids(self) -> set[str]:
        """Jobs whose message a worker holds (reserved or running: kombu's unacknowledged hash)."""
        held = set()
        for raw in self.redis.hvals("unacked"):
            try:
                held.add(str(json.loads(json.loads(raw)[0])["headers"]["id"]))
            except (ValueError, KeyError, IndexError, TypeError):
                continue
        return held

    def _oldest_waiting(self) -> dict[str, float | None]:
        """Per queue, the time the next message to be taken was sent (None: the queue is empty).

        Lists are first in, first out (LPUSH, BRPOP): a job sent before that time and neither held nor
        finished is no longer in its queue. A message kombu restored goes to the back and can look lost
        for a while: it is then sent twice, and the second delivery is skipped (at least once)."""
        out: dict[str, float | None] = {}
        for q in QUEUES:
            raw = self.redis.lindex(q, -1)
            if raw is None:
                out[q] = None
                continue
            try:
                head_id = str(json.loads(raw)["headers"]["id"])
            except (ValueError, KeyError, TypeError):
                out[q] = 0.0  # not ours: nothing in this queue counts as lost
                continue
            score = self.redis.zscore(PENDING_KEY, head_id)
            out[q] = float(score) if score is not None else 0.0
        return out

    def _in_queue(self, queue: str, job_ids: set[str], chunk: int = 1000) -> set[str]:
        """Which of these jobs have a message waiting in the queue (scanned only for the few candidates)."""
        found: set[str] = set()
        needles = {j: f'"id": "{j}"'.encode() for j in job_ids}
        start = 0
        while len(found) < len(job_ids):
            raws = self.redis.lrange(queue, start, start + chunk - 1)
            for raw in raws:
                for j, needle in needles.items():
                    if needle in raw:
                        found.add(j)
            if len(raws) < chunk:
                break
            start += chunk
        return found

    def _missing(self, now: float) -> dict[str, dict[str, Any]]:
        cutoff = now - self.cfg.visibility_timeout
        rows = self.redis.zrangebyscore(PENDING_KEY, "-inf", cutoff, start=0, num=RECONCILE_BATCH, withscores=True)
        if not rows:
            return {}
        ids = [r[0].decode() for r in rows]
        pipe = self.redis.pipeline(transaction=False)
        for j in ids:
            pipe.exists(OUTCOME_KEY.format(j))
            pipe.hget(PENDING_MSG_KEY, j)
        answers = pipe.execute()
        heads = self._oldest_waiting()
        missing: dict[str, dict[str, Any]] = {}
        finished = []
        for j, (_, sent_at), has_outcome, raw in zip(ids, rows, answers[0::2], answers[1::2]):
            if has_outcome or raw is None:
                finished.append(j)  # its outcome was written but the ledger not cleaned (Redis went away)
                continue
            msg = json.loads(raw)
            head = heads.get(msg["queue"])
            if head is not None and sent_at >= head:
                continue  # it is still waiting its turn
            missing[j] = msg
        # A message kombu restored (its worker died) goes to the back of its queue: look for it there. The
        # queue is read before the held messages: a message moving from one to the other is seen in one.
        for q in {m["queue"] for m in missing.values()}:
            for j in self._in_queue(q, {j for j, m in missing.items() if m["queue"] == q}):
                del missing[j]
        if missing:
            for j in self._held_job_ids() & set(missing):
                del missing[j]
        if finished:
            pipe = self.redis.pipeline()
            pipe.zrem(PENDING_KEY, *finished)
            pipe.hdel(PENDING_MSG_KEY, *finished)
            pipe.execute()
        return missing

    def reconcile(self, owner: str, settle: float = 0.5) -> list[str]:
        """Send again the jobs the broker lost (see the module doc); one worker at a time. Returns their ids.

        A job counts as lost when it was sent more than ``visibility_timeout`` ago, has no outcome, no worker
        holds its message and its queue's next message is younger; it must look so twice, ``settle`` seconds
        apart, since a message a worker is taking at that moment is in neither place for a few milliseconds."""
        interval = max(1, int(self.cfg.visibility_timeout / 4))
        if not self.redis.set(RECONCILE_LOCK, owner, nx=True, ex=interval):
            return []
        first = self._missing(time.time())
        if not first:
            return []
        time.sleep(settle)
        again = self._missing(time.time())
        sent = []
        for job_id, msg in again.items():
            if job_id not in first:
                continue
            self.redis.zadd(PENDING_KEY, {job_id: time.time()})  # the next look waits a whole timeout again
            self._publish(job_id, msg["name"], msg["payload"], msg["meta"], msg["queue"], msg["time_limit"])
            metrics.RECOVERED.labels(msg["name"]).inc()
            sent.append(job_id)
        if sent:
            log.warning("medrisk jobs: %d job(s) lost by the broker sent again: %s", len(sent), ", ".join(sent[:10]))
        return sent

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
                record = {
                    "name": name,
                    "payload": dict(payload),
                    "meta": meta,
                    "queue": spec.queue,
                    "time_limit": spec.time_limit,
                }
                pipe = self.redis.pipeline()
                pipe.zadd(PENDING_KEY, {job_id: meta["enqueued_at"]})
                pipe.hset(PENDING_MSG_KEY, job_id, json.dumps(record))
                pipe.execute()
                self._publish(job_id, name, payload, meta, spec.queue, spec.time_limit)
                metrics.ENQUEUED.labels(name, spec.queue, "celery").inc()
                self._sent.append(job_id)
                self._announce(None)
                return job_id
            except Exception as exc:
                problem = f"job broker {self.cfg.safe_broker()}: publishing failed ({type(exc).__name__}: {exc})"
                self._problem, self._checked_at = problem, time.monotonic()
                self._forget(job_id)
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
