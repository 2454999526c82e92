"""Real processes for the job tests: a throwaway Redis server and `medrisk worker` processes.

Redis is Debian's ``redis-server`` on a random free port, with the append-only file synced
on every write (so a restart loses nothing, as in production). Every process is started in
its own session and stopped (its whole process group) when the test session ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REDIS_HINT = "install Redis: `apt-get install -y redis-server` (scripts/test.sh does)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    def __init__(self, root: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(f"redis-server not found: {REDIS_HINT}", pytrace=False)
        self.binary = binary
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--protected-mode",
            "no",
        ]
        log = open(self.root / "redis.log", "ab")  # noqa: SIM115 - the server keeps it
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        wait_for(self.ping, 10, "redis-server to answer")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(10)
        self.proc = None

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)


class Worker:
    """One `medrisk worker` process (its own session: SIGKILL reaches the pool children too)."""

    def __init__(self, name: str, db_url: str, data_dir: Path, broker: str, env: dict[str, str], concurrency: int = 1):
        self.name = name
        self.health_port = free_port()
        self.log_path = data_dir / f"worker-{name}.log"
        cmd = [
            sys.executable,
            "-m",
            "medrisk.cli",
            "worker",
            "--db",
            db_url,
            "--data-dir",
            str(data_dir),
            "--broker",
            broker,
            "--concurrency",
            str(concurrency),
            "--health-port",
            str(self.health_port),
            "--log-level",
            "info",
        ]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True
        )

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}{path}", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker {self.name} exited {self.proc.returncode}:\n{self.log()[-3000:]}")
        return self.get("/readyz")[0] == 200

    def wait_ready(self, timeout: float = 60) -> Worker:
        wait_for(self.ready, timeout, f"worker {self.name} to be ready", 0.2)
        return self

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples matching the labels, from the worker's /metrics."""
        status, body = self.get("/metrics")
        assert status == 200, f"worker {self.name} /metrics: {status}"
        total = 0.0
        for line in body.decode().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 20) -> int | None:
        """Graceful (SIGTERM: running jobs finish), then SIGKILL if it does not exit in time."""
        self.kill(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.proc.wait(10)
        try:  # the pool children of a killed worker
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        return self.proc.returncode


def json_of(body: bytes) -> dict:
    return json.loads(body or b"{}")
