"""Background jobs behind one small interface, with two backends.

A job is a registered name and a payload of plain ids (``enqueue("scan", scan_id=7)``),
never objects or blobs. ``ThreadQueue`` is the embedded in-process backend (the default),
``InlineQueue`` runs jobs at once (tests, the CLI) and ``celery_backend.CeleryQueue`` sends
them to ``medrisk worker`` processes through Redis. All three run a job the same way
(``base.run_attempt``): bounded retries with backoff, then the job is parked (docs/jobs.md).
"""

from medrisk.jobs.base import QUEUES, InlineQueue, JobQueue, JobSpec, ThreadQueue
from medrisk.jobs.periodic import Periodic

__all__ = ["QUEUES", "InlineQueue", "JobQueue", "JobSpec", "Periodic", "ThreadQueue"]
