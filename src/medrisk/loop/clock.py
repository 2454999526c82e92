"""An injectable clock: the service uses the system clock, tests a fake one they move by hand."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that stands still until ``advance`` (a whole 30-day rectification in milliseconds)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, **kw: float) -> datetime:
        with self._lock:
            self._now += delta or timedelta(**kw)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when
