"""A daemon thread that runs housekeeping tasks at a fixed interval (embedded mode)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, interval_seconds: float, tasks: list[tuple[str, Callable[[], object]]]) -> None:
        self.interval = interval_seconds
        self.tasks = tasks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="medrisk-periodic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run_once(self) -> None:
        for name, task in self.tasks:
            try:
                task()
            except Exception:
                log.exception("periodic task %s failed", name)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def stop(self) -> None:
        self._stop.set()
