"""The job interface and the in-process backends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

log = logging.getLogger(__name__)

Payload = int | str | None
Handler = Callable[..., None]


class JobQueue(Protocol):
    def register(self, name: str, handler: Handler) -> None: ...

    def enqueue(self, name: str, **payload: Payload) -> None: ...

    def join(self, timeout: float | None = None) -> bool: ...

    def shutdown(self) -> None: ...


class _Registry:
    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def register(self, name: str, handler: Handler) -> None:
        self.handlers[name] = handler

    def _handler(self, name: str, payload: dict[str, Payload]) -> Handler:
        if name not in self.handlers:
            raise KeyError(f"no job named {name!r}")
        for k, v in payload.items():
            if not isinstance(v, int | str | type(None)):
                raise TypeError(f"job payload {k} must be an id (int or str), not {type(v).__name__}")
        return self.handlers[name]

    @staticmethod
    def _run(name: str, handler: Handler, payload: dict[str, Payload]) -> None:
        try:
            handler(**payload)
        except Exception:  # a failed job must not kill the worker; the handler records its own state
            log.exception("job %s failed (payload ids %s)", name, sorted(payload))


class InlineQueue(_Registry):
    """Runs each job immediately in the caller's thread."""

    def enqueue(self, name: str, **payload: Payload) -> None:
        self._run(name, self._handler(name, payload), payload)

    def join(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class ThreadQueue(_Registry):
    """A thread pool; ``join`` waits until every job enqueued so far has finished."""

    def __init__(self, workers: int = 2) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="medrisk-job")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def enqueue(self, name: str, **payload: Payload) -> None:
        handler = self._handler(name, payload)
        fut = self._pool.submit(self._run, name, handler, payload)
        with self._lock:
            self._pending.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: Future[None]) -> None:
        with self._lock:
            self._pending.discard(fut)

    def join(self, timeout: float | None = None) -> bool:
        import concurrent.futures

        with self._lock:
            pending = list(self._pending)
        done, not_done = concurrent.futures.wait(pending, timeout=timeout)
        return not not_done

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
