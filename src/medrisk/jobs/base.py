"""The job interface, the shared run-retry-park logic and the in-process backends.

A job is a registered name and a payload of plain ids. Every backend runs a job the same
way (``run_attempt``): the handler is called; an exception is retried with exponential
backoff until ``max_attempts`` is used up, then the job is *parked* (a ``parked_jobs`` row
with the error, visible in the API and ``medrisk jobs parked``) and the registered
``on_park`` hook lets the owner record the outcome (a parked scan becomes ``failed``).
Handlers must be idempotent: every backend delivers at least once.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from medrisk.jobs import logs, metrics

log = logging.getLogger(__name__)

Payload = int | str | None
Handler = Callable[..., None]

# Queues in priority order: a worker always takes the first non-empty one (builders' uploads
# before periodic work before bulk rescans).
QUEUES = ("interactive", "default", "bulk")


@dataclass(frozen=True)
class JobSpec:
    name: str
    handler: Handler
    queue: str = "default"
    time_limit: float = 600.0  # seconds of wall time per attempt (Celery: soft limit; hard = +30 s)
    max_attempts: int = 3
    retry_backoff: float = 2.0  # seconds before the 2nd attempt, doubled for each further one
    retry_backoff_max: float = 300.0
    # called once when the job is parked, with its payload and the last error (record the outcome)
    on_park: Callable[[dict[str, Payload], str], None] | None = None
    # called before a parked job is enqueued again by a person (undo what ``on_park`` recorded)
    on_unpark: Callable[[dict[str, Payload]], None] | None = None

    def backoff(self, attempt: int) -> float:
        return min(self.retry_backoff * 2 ** max(0, attempt - 1), self.retry_backoff_max)


class Parking(Protocol):
    """Where parked jobs go (``medrisk.jobs.parking.DbParking``: the ``parked_jobs`` table)."""

    def park(self, job_id: str, spec: JobSpec, payload: dict[str, Payload], attempts: int, error: str) -> None: ...


class LogParking:
    """No database (the CLI's inline queue): a parked job is an error in the log."""

    def park(self, job_id: str, spec: JobSpec, payload: dict[str, Payload], attempts: int, error: str) -> None:
        log.error("job %s %s parked after %s attempts: %s", spec.name, job_id, attempts, error.splitlines()[-1:])


class JobQueue(Protocol):
    def register(self, name: str, handler: Handler, **options: Any) -> None: ...

    def enqueue(self, name: str, **payload: Payload) -> str: ...

    def join(self, timeout: float | None = None) -> bool: ...

    def shutdown(self) -> None: ...


def check_payload(payload: dict[str, Payload]) -> None:
    for k, v in payload.items():
        if not isinstance(v, int | str | type(None)) or isinstance(v, bool):
            raise TypeError(f"job payload {k} must be an id (int or str), not {type(v).__name__}")
        if isinstance(v, str) and len(v) > 256:
            raise ValueError(f"job payload {k} is {len(v)} characters: payloads are ids, put data in the blob store")


def error_text(exc: BaseException) -> str:
    """The error as kept on a parked job: the exception line first, then the end of the traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{type(exc).__name__}: {exc}\n{tb[-4000:]}"


@dataclass
class Attempt:
    """The outcome of one attempt: ``done``, ``retry`` (after ``delay`` seconds) or ``parked``."""

    outcome: str
    delay: float = 0.0
    error: str | None = None


def run_attempt(
    spec: JobSpec,
    payload: dict[str, Payload],
    job_id: str,
    attempt: int,
    parking: Parking,
    enqueued_at: float | None = None,
    request_id: str | None = None,
) -> Attempt:
    """Run one attempt of a job; never raises (a failed job must not kill its worker)."""
    if attempt > spec.max_attempts:  # redelivered after its last attempt died with its worker
        error = f"gave up: attempt {attempt} of {spec.max_attempts} (the previous attempts died with their worker)"
        _park(spec, payload, job_id, attempt - 1, error, parking)
        return Attempt("parked", error=error)
    token = logs.bind(job_id=job_id, job=spec.name, request_id=request_id)
    log.info("job %s started (attempt %s/%s)", spec.name, attempt, spec.max_attempts)
    started = time.perf_counter()
    try:
        spec.handler(**payload)
    except Exception as exc:  # retried, then parked: the queue goes on
        error = error_text(exc)
        metrics.JOB_DURATION.labels(spec.name).observe(time.perf_counter() - started)
        if attempt < spec.max_attempts:
            delay = spec.backoff(attempt)
            log.warning(
                "job %s attempt %s/%s failed, retrying in %.1f s: %s",
                spec.name,
                attempt,
                spec.max_attempts,
                delay,
                error.splitlines()[0],
            )
            metrics.JOBS.labels(spec.name, "retried").inc()
            return Attempt("retry", delay, error)
        log.error("job %s failed on its last attempt %s: %s", spec.name, attempt, error.splitlines()[0])
        _park(spec, payload, job_id, attempt, error, parking)
        return Attempt("parked", error=error)
    finally:
        logs.unbind(token)
    metrics.JOB_DURATION.labels(spec.name).observe(time.perf_counter() - started)
    metrics.JOBS.labels(spec.name, "done").inc()
    if enqueued_at is not None:
        metrics.JOB_LATENCY.labels(spec.name, spec.queue).observe(max(0.0, time.time() - enqueued_at))
    return Attempt("done")


def _park(spec: JobSpec, payload: dict[str, Payload], job_id: str, attempts: int, error: str, parking: Parking) -> None:
    metrics.JOBS.labels(spec.name, "parked").inc()
    try:
        parking.park(job_id, spec, payload, attempts, error)
    except Exception:
        log.exception("could not record parked job %s %s", spec.name, job_id)
    if spec.on_park is not None:
        try:
            spec.on_park(payload, error)
        except Exception:
            log.exception("on_park of job %s %s failed", spec.name, job_id)


class Registry:
    """Job specs by name; shared by every backend (and by a Celery worker and its web side)."""

    def __init__(self, parking: Parking | None = None) -> None:
        self.specs: dict[str, JobSpec] = {}
        self.parking: Parking = parking or LogParking()

    @property
    def handlers(self) -> dict[str, Handler]:  # the registered handlers by name (read-only view)
        return {n: s.handler for n, s in self.specs.items()}

    def register(self, name: str, handler: Handler, **options: Any) -> None:
        """``options``: ``queue`` (interactive | default | bulk), ``time_limit``, ``max_attempts``,
        ``retry_backoff``, ``on_park``, ``on_unpark`` (see ``JobSpec``)."""
        queue = options.get("queue", "default")
        if queue not in QUEUES:
            raise ValueError(f"unknown queue {queue!r} (one of {', '.join(QUEUES)})")
        self.specs[name] = JobSpec(name, handler, **options)

    def spec(self, name: str, payload: dict[str, Payload]) -> JobSpec:
        if name not in self.specs:
            raise KeyError(f"no job named {name!r}")
        check_payload(payload)
        return self.specs[name]


def new_job_id() -> str:
    return uuid.uuid4().hex


class InlineQueue(Registry):
    """Runs each job immediately in the caller's thread; retries at once (no backoff sleep)."""

    def enqueue(self, name: str, **payload: Payload) -> str:
        spec = self.spec(name, payload)
        job_id = new_job_id()
        metrics.ENQUEUED.labels(name, spec.queue, "inline").inc()
        for attempt in range(1, spec.max_attempts + 1):
            if run_attempt(spec, payload, job_id, attempt, self.parking, time.time(), logs.request_id()).outcome != (
                "retry"
            ):
                break
        return job_id

    def join(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self) -> None:
        pass


@dataclass(order=True)
class _Item:
    priority: int
    seq: int
    not_before: float = field(compare=False)
    spec: JobSpec = field(compare=False)
    payload: dict[str, Payload] = field(compare=False)
    job_id: str = field(compare=False)
    attempt: int = field(compare=False)
    enqueued_at: float = field(compare=False)
    request_id: str | None = field(compare=False)


class ThreadQueue(Registry):
    """The embedded backend: worker threads take jobs by queue priority; retries wait their backoff.

    ``join`` waits until every job enqueued so far has finished (retries included).
    """

    def __init__(self, workers: int = 2, parking: Parking | None = None) -> None:
        super().__init__(parking)
        self._cv = threading.Condition()
        self._ready: list[_Item] = []  # a heap by (queue priority, order)
        self._delayed: list[_Item] = []
        self._outstanding = 0
        self._seq = 0
        self._closed = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"medrisk-job-{i}", daemon=True) for i in range(max(1, workers))
        ]
        for t in self._threads:
            t.start()

    def enqueue(self, name: str, **payload: Payload) -> str:
        spec = self.spec(name, payload)
        job_id = new_job_id()
        metrics.ENQUEUED.labels(name, spec.queue, "thread").inc()
        self._put(spec, dict(payload), job_id, 1, time.time(), logs.request_id(), 0.0)
        return job_id

    def _put(
        self,
        spec: JobSpec,
        payload: dict[str, Payload],
        job_id: str,
        attempt: int,
        enqueued_at: float,
        request_id: str | None,
        delay: float,
        new: bool = True,
    ) -> None:
        import heapq

        with self._cv:
            if self._closed:
                return
            self._seq += 1
            item = _Item(
                QUEUES.index(spec.queue),
                self._seq,
                time.monotonic() + delay,
                spec,
                payload,
                job_id,
                attempt,
                enqueued_at,
                request_id,
            )
            if new:
                self._outstanding += 1
            heapq.heappush(self._ready, item) if delay <= 0 else self._delayed.append(item)
            self._cv.notify()

    def depth(self) -> dict[str, int]:
        with self._cv:
            out = dict.fromkeys(QUEUES, 0)
            for it in self._ready + self._delayed:
                out[it.spec.queue] += 1
            return out

    def _next(self) -> _Item | None:
        import heapq

        with self._cv:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                for it in [d for d in self._delayed if d.not_before <= now]:
                    self._delayed.remove(it)
                    heapq.heappush(self._ready, it)
                if self._ready:
                    return heapq.heappop(self._ready)
                wait = min((d.not_before for d in self._delayed), default=now + 1.0) - now
                self._cv.wait(max(0.01, min(wait, 1.0)))

    def _loop(self) -> None:
        while (it := self._next()) is not None:
            res = run_attempt(it.spec, it.payload, it.job_id, it.attempt, self.parking, it.enqueued_at, it.request_id)
            if res.outcome == "retry":
                self._put(
                    it.spec, it.payload, it.job_id, it.attempt + 1, it.enqueued_at, it.request_id, res.delay, new=False
                )
                continue
            with self._cv:
                self._outstanding -= 1
                self._cv.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while self._outstanding > 0:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(left if left is not None else 1.0)
            return True

    def shutdown(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
