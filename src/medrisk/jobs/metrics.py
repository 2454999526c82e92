"""Prometheus metrics of the job system (prometheus-client).

Counters and histograms are updated where jobs run: the service (in-process backend, and
the fallback) and each worker. A Celery worker runs its jobs in prefork child processes,
so ``medrisk worker`` switches prometheus-client to its multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``) before this module is imported; its health port serves the
aggregate. Gauges that describe shared state (queue depth, workers alive, scans per
minute, parked jobs) are computed at scrape time by the service (``medrisk.ops``).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)

JOBS = Counter("medrisk_jobs", "Job attempts by outcome (done, retried, parked)", ["job", "outcome"])
ENQUEUED = Counter(
    "medrisk_jobs_enqueued", "Jobs enqueued, by backend (celery, thread, inline, fallback)", ["job", "queue", "backend"]
)
JOB_DURATION = Histogram(
    "medrisk_job_duration_seconds", "Run time of one job attempt", ["job"], buckets=_LATENCY_BUCKETS
)
JOB_LATENCY = Histogram(
    "medrisk_job_latency_seconds",
    "Time from enqueue to the job's successful end (queueing + retries + run)",
    ["job", "queue"],
    buckets=_LATENCY_BUCKETS,
)
RECOVERED = Counter("medrisk_jobs_recovered", "Jobs the broker lost, sent again from the ledger", ["job"])
BROKER_ERRORS = Counter("medrisk_jobs_broker_unavailable", "Enqueues that found the broker or workers unavailable")
GATE_DECISIONS = Counter("medrisk_gate_decisions", "Circuit-breaker gate decisions served over HTTP", ["decision"])
