"""Background jobs behind one small interface.

A job is a registered name and a payload of plain ids (``enqueue("scan", scan_id=7)``),
never objects: a distributed backend (Celery) will carry the same payloads between
processes. ``ThreadQueue`` is the embedded in-process backend; ``InlineQueue`` runs
jobs at once (tests, the CLI).
"""

from medrisk.jobs.base import InlineQueue, JobQueue, ThreadQueue
from medrisk.jobs.periodic import Periodic

__all__ = ["InlineQueue", "JobQueue", "Periodic", "ThreadQueue"]
