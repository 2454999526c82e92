"""The web console (docs/console.md): server-rendered pages under /console for regulators,
builders and auditors, Chinese first with an English switch.

``mount(app)`` adds the pages, the static files (one CSS, one small script: no build step) and,
while the server runs, a background thread that keeps the posture index current and sends the
periodic statistical reports to their subscribers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from medrisk.platform.context import Platform

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
INDEX_EVERY_SECONDS = 30.0
REPORTS_EVERY_SECONDS = 3600.0


class Background:
    """Posture indexing every 30 s and the scheduled reports every hour (daemon thread)."""

    def __init__(self, ctx: Platform) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="medrisk-console", daemon=True)
        self._last_reports = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def run_once(self, now_monotonic: float) -> None:
        from medrisk.reports import posture, statistics

        try:
            posture.index_pending(self.ctx)
        except Exception:
            log.exception("posture indexing failed")
        if now_monotonic - self._last_reports >= REPORTS_EVERY_SECONDS:
            self._last_reports = now_monotonic
            try:
                statistics.run_due(self.ctx)
            except Exception:
                log.exception("scheduled reports failed")

    def _loop(self) -> None:
        import time

        while not self._stop.wait(INDEX_EVERY_SECONDS):
            self.run_once(time.monotonic())


def mount(app: FastAPI, ctx: Platform) -> None:
    from medrisk.web.console import routes

    app.include_router(routes.router)
    app.include_router(routes.site)
    app.mount("/console/static", StaticFiles(directory=str(STATIC)), name="console-static")
    bg = Background(ctx)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        bg.start()  # only a running server (uvicorn) starts it, not a TestClient used without `with`
        try:
            async with inner(a) as state:
                yield state
        finally:
            bg.stop()

    app.router.lifespan_context = lifespan
