"""The ledger of sent jobs on a real Redis, without workers: which jobs count as lost by the broker.

A job counts as lost when it was sent more than the visibility timeout ago, has no outcome, no worker
holds its message (kombu's ``unacked`` hash) and its queue's next message was sent after it."""

from __future__ import annotations

import json
import time

import pytest

from medrisk.jobs.celery_backend import (
    OUTCOME_KEY,
    PENDING_KEY,
    PENDING_MSG_KEY,
    RECONCILE_LOCK,
    CeleryConfig,
    CeleryQueue,
)
from tests.jobs.procs import RedisServer

OLD = 10.0  # seconds ago: past the visibility timeout of 1 s


@pytest.fixture
def queue(redis_server: RedisServer):
    q = CeleryQueue(CeleryConfig(broker_url=redis_server.url.replace("/0", "/7"), visibility_timeout=1.0))
    q.redis.flushdb()
    yield q
    q.redis.flushdb()
    q.shutdown()


def _send(q: CeleryQueue, job_id: str, age: float, scan_id: int = 1) -> None:
    """What ``enqueue`` does, with the send time set in the past."""
    sent_at = time.time() - age
    meta = {"job_id": job_id, "enqueued_at": sent_at, "request_id": None}
    record = {"name": "scan.bulk", "payload": {"scan_id": scan_id}, "meta": meta, "queue": "bulk", "time_limit": 60}
    q.redis.zadd(PENDING_KEY, {job_id: sent_at})
    q.redis.hset(PENDING_MSG_KEY, job_id, json.dumps(record))
    q._publish(job_id, "scan.bulk", record["payload"], meta, "bulk", 60)


def _ids_in(q: CeleryQueue, queue: str) -> list[str]:
    return [json.loads(raw)["headers"]["id"] for raw in q.redis.lrange(queue, 0, -1)]


def test_waiting_jobs_are_not_lost(queue):
    for i, job in enumerate(("j1", "j2", "j3")):
        _send(queue, job, OLD - i)
    assert _ids_in(queue, "bulk") == ["j3", "j2", "j1"]  # LPUSH: the next to be taken is on the right
    assert queue._missing(time.time()) == {}


def test_a_message_taken_and_not_recorded_is_lost_and_sent_again(queue):
    for i, job in enumerate(("j1", "j2", "j3")):
        _send(queue, job, OLD - i)
    raw = queue.redis.rpop("bulk")  # a worker's BRPOP took j1 ... and died before recording it
    assert json.loads(raw)["headers"]["id"] == "j1"
    assert set(queue._missing(time.time())) == {"j1"}
    assert queue.reconcile("test", settle=0.05) == ["j1"]
    assert _ids_in(queue, "bulk")[0] == "j1"  # sent again, behind the others
    assert queue.redis.zscore(PENDING_KEY, "j1") > time.time() - 5  # the next look waits a whole timeout
    assert queue._missing(time.time()) == {}


def test_a_held_message_is_not_lost(queue):
    _send(queue, "j1", OLD)
    raw = queue.redis.rpop("bulk")
    queue.redis.hset("unacked", "tag-1", json.dumps([raw.decode(), "", "bulk"]))  # kombu's record of it
    assert queue._missing(time.time()) == {}


def test_a_young_job_is_not_lost_yet(queue):
    _send(queue, "j1", 0.0)
    queue.redis.rpop("bulk")
    assert queue._missing(time.time()) == {}  # within the visibility timeout: kombu's restore may still come


def test_finished_jobs_leave_the_ledger(queue):
    _send(queue, "j1", OLD)
    queue.redis.rpop("bulk")
    queue.record_outcome("j1", "done")
    assert queue.redis.get(OUTCOME_KEY.format("j1")) == b"done"
    assert queue.redis.zcard(PENDING_KEY) == 0 and queue.redis.hlen(PENDING_MSG_KEY) == 0
    # an outcome written while the ledger could not be cleaned: the sweep cleans it, sends nothing
    _send(queue, "j2", OLD)
    queue.redis.rpop("bulk")
    queue.redis.set(OUTCOME_KEY.format("j2"), "parked")
    assert queue._missing(time.time()) == {}
    assert queue.redis.zcard(PENDING_KEY) == 0


def test_one_sweeper_per_interval(queue):
    _send(queue, "j1", OLD)
    queue.redis.rpop("bulk")
    queue.redis.set(RECONCILE_LOCK, "another worker", ex=5)
    assert queue.reconcile("test", settle=0.05) == []
    assert queue.redis.llen("bulk") == 0


def test_a_second_delivery_of_a_finished_job_is_skipped(queue):
    assert queue.begin_attempt("j1") == (1, None)
    queue.record_outcome("j1", "done")
    assert queue.begin_attempt("j1") == (1, "done")  # not counted: it cannot park a finished job
    assert queue.begin_attempt("j2") == (1, None)


def test_a_restored_message_at_the_back_of_its_queue_is_not_lost(queue):
    """kombu restores a dead worker's message with LPUSH: behind younger ones, still waiting."""
    for i, job in enumerate(("j1", "j2", "j3")):
        _send(queue, job, OLD - i)
    raw = queue.redis.rpop("bulk")
    queue.redis.lpush("bulk", raw)
    assert _ids_in(queue, "bulk") == ["j1", "j3", "j2"]
    assert queue._missing(time.time()) == {}
    assert queue._in_queue("bulk", {"j1", "j2", "jX"}, chunk=1) == {"j1", "j2"}  # read in chunks
