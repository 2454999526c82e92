"""Structured logs: one JSON object per line, with the request id and the job id of the context.

The web side binds ``request_id`` for each request (``X-Request-ID`` in, or a new one, and
back out in the response); a job carries the request id that enqueued it, so one upload's
lines can be followed from the request to the worker that scanned it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

_CONTEXT: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("medrisk_log_context", default={})  # noqa: B039 - never mutated
LOG_FORMAT_ENV = "MEDRISK_LOG_FORMAT"


def bind(**fields: str | None) -> contextvars.Token[dict[str, str]]:
    ctx = dict(_CONTEXT.get())
    ctx.update({k: v for k, v in fields.items() if v})
    return _CONTEXT.set(ctx)


def unbind(token: contextvars.Token[dict[str, str]]) -> None:
    _CONTEXT.reset(token)


def current() -> dict[str, str]:
    return _CONTEXT.get()


def request_id() -> str | None:
    return _CONTEXT.get().get("request_id")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
            "pid": record.process,
        }
        out.update(_CONTEXT.get())
        for key in ("job_id", "job", "request_id"):  # Celery passes them as record attributes too
            if key not in out and getattr(record, key, None):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup(service: str, fmt: str | None = None, level: str = "info") -> None:
    """``fmt``: ``json`` or ``text`` (default: ``$MEDRISK_LOG_FORMAT``, else json)."""
    fmt = (fmt or os.environ.get(LOG_FORMAT_ENV) or "json").lower()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # APScheduler logs every run of every job at INFO (the gate refreshes twice a second): at the
    # default level that buried the demo credentials `medrisk serve` prints once
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
