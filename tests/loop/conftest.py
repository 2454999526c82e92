"""Fixtures of the closed-loop tests: a platform per backend with a fake clock, a stub scan runner
(real uploads, chosen grades), a real SMTP server (aiosmtpd) and a real webhook receiver on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from medrisk.loop.clock import FakeClock
from medrisk.loop.notify import NotifyConfig, verify_webhook
from tests.platform.fixtures import (  # noqa: F401
    BACKENDS,
    _fast_argon2,
    make_platform,
    new_url,
    pg_server,
    scan_runner,
)
from tests.platform.world import World, build_world


def free_port_for_tests() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A fake clock ahead of real time: authorisation codes are issued (nbf) with the real clock, and this
# module is imported when the worker collects tests, maybe many minutes before a loop test runs. Three
# hours ahead keeps every code already valid on the fake clock for any suite run under three hours.
START = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=3)


class StubRunner:
    """Returns a scan result with the grade chosen per file name (the pipeline around it is real)."""

    def __init__(self) -> None:
        self.grades: dict[str, str] = {}

    def run(self, path: Path, name: str, app_type: str | None, policy: Path | None = None) -> dict[str, Any]:
        grade = self.grades.get(name, "A")
        score = {"A": 95.0, "B": 80.0, "C": 40.0}[grade]
        return {
            "rules_version": "test-1",
            "app": {"package": "stub"},
            "risk": {"score": score, "grade": grade},
            "findings": []
            if grade != "C"
            else [
                {
                    "rule_id": "CRY-001",
                    "severity": "high",
                    "title": {"zh": "使用不安全的加密算法", "en": "Insecure cipher"},
                    "remediation": {"zh": "改用 SM4-GCM", "en": "Use SM4-GCM"},
                }
            ],
        }

    def close(self) -> None:
        pass


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        msg = message_from_bytes(envelope.content, policy=policy.default)
        msg["X-Rcpt"] = ",".join(envelope.rcpt_tos)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["X-Rcpt"]]


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port_for_tests()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    yield box, port
    ctl.stop()


class Receiver:
    """A real HTTP webhook receiver: checks the HMAC-SM3 signature, can be 'down'."""

    def __init__(self) -> None:
        self.secret: bytes = b""
        self.up = True
        self.received: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.clock: FakeClock | None = None
        self.sms = False  # act as an SMS provider's gateway instead (no signature, a bearer token)
        self.auth: str | None = None
        rec = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not rec.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                if rec.sms:
                    rec.auth = self.headers.get("Authorization")
                    rec.received.append(json.loads(body))
                    self.send_response(200)
                    self.end_headers()
                    return
                now = int((rec.clock.now() if rec.clock else datetime.now(UTC)).timestamp())
                ok = verify_webhook(
                    rec.secret,
                    self.headers.get("X-MedRisk-Timestamp", ""),
                    body,
                    self.headers.get("X-MedRisk-Signature", ""),
                    now,
                )
                if not ok:
                    rec.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                rec.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def make_loop_platform(url: str, tmp: Path, runner: StubRunner, smtp_port: int, clock: FakeClock):
    ctx = make_platform(url, tmp, runner)  # type: ignore[arg-type]
    assert ctx.loop is not None
    ctx.loop.clock = clock
    ctx.loop.config = NotifyConfig(smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_tls="none", webhook_timeout=3)
    return ctx


@pytest.fixture(params=BACKENDS)
def lw(request: pytest.FixtureRequest, tmp_path: Path, smtp) -> Iterator[World]:
    """A loop world of its own per test: platform, users, fake clock (w.clock), stub runner (w.runner)."""
    runner = StubRunner()
    clock = FakeClock(START)
    url = new_url(request, request.param, tmp_path)
    ctx = make_loop_platform(url, tmp_path, runner, smtp[1], clock)
    w = build_world(ctx)
    w.runner = runner  # type: ignore[attr-defined]
    w.clock = clock  # type: ignore[attr-defined]
    w.url = url  # type: ignore[attr-defined]
    w.tmp = tmp_path  # type: ignore[attr-defined]
    yield w
    ctx.close()


def approved_app(w: World, **over: Any) -> tuple[dict[str, Any], str]:
    """A filed and approved app and its authorisation code."""
    over.setdefault("signing_certificates", ["ab" * 32])
    f = w.file_app(**over)
    w.approve(f["id"])
    code = w.client.get(f"/api/v1/filings/{f['id']}/authcode", headers=w.h("hosp_builder")).json()["code"]
    return f, code


def gate(w: World, code: str, version: str | None = None) -> dict[str, Any]:
    params = {"code": code, **({"version": version} if version else {})}
    r = w.client.get("/api/v1/gate", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(pred: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.01)
