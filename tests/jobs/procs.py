"""Real processes for the job tests: a throwaway Redis server and `medrisk worker` processes.

Redis is Debian's ``redis-server`` on a random free port, with the append-only file synced
on every write (so a restart loses nothing, as in production). Every process is started in
its own session and stopped (its whole process group) when the test session ends.
"""

from __future__ import annotations

import atexit
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

# Every process started here, until it is stopped: ``stop_all`` (end of the test session, and at exit
# of the interpreter should the session die first) leaves none behind. Each runs in its own session,
# so killing its process group reaches its children (a worker's pool) too.
_RUNNING: dict[int, subprocess.Popen] = {}


def _started(proc: subprocess.Popen) -> subprocess.Popen:
    _RUNNING[proc.pid] = proc
    return proc


def _reap(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGKILL the process group of ``proc`` (it and its children) and wait for it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    _RUNNING.pop(proc.pid, None)


def stop_all() -> None:
    """Stop what is still running of the processes started here (gracefully first)."""
    procs = list(_RUNNING.values())
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _reap(p)


atexit.register(stop_all)


def _code_path() -> str:
    """PYTHONPATH that makes a child run the same ``medrisk`` as this process (not another checkout's
    editable install)."""
    import medrisk

    here = str(Path(medrisk.__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH")
    return here if not rest else f"{here}{os.pathsep}{rest}"


def _port_taken(log: str) -> bool:
    return "Address already in use" in log or "EADDRINUSE" in log


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
        for _ in range(5):  # a free port can be taken by another process (an xdist worker) before we bind it
            with open(self.root / "redis.log", "ab") as log:
                args[2] = str(self.port)
                self.proc = _started(subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True))
            wait_for(lambda: self.proc.poll() is not None or self.ping(), 10, "redis-server to answer")
            if self.proc.poll() is None and self._ours():
                return
            _reap(self.proc)
            self.proc = None
            self.port = free_port()
        raise AssertionError(f"redis-server did not start: {(self.root / 'redis.log').read_text()[-2000:]}")

    def _ours(self) -> bool:
        """The server answering on the port is the one we started (not another test session's)."""
        try:
            info = self.client().info("server")
        except Exception:
            return False
        return int(info.get("process_id", -1)) == self.proc.pid

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
        if self.proc is not None:
            _RUNNING.pop(self.proc.pid, None)
        self.proc = None

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)


class Worker:
    """One `medrisk worker` process (its own session: SIGKILL reaches the pool children too)."""

    def __init__(self, name: str, db_url: str, data_dir: Path, broker: str, env: dict[str, str], concurrency: int = 1):
        self.name = name
        self.log_path = data_dir / f"worker-{name}.log"
        self._env = {**os.environ, **env, "PYTHONPATH": _code_path()}
        self._args = [
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
            "--log-level",
            "info",
        ]
        self._start()

    def _start(self) -> None:
        self.health_port = free_port()
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            cmd = [*self._args, "--health-port", str(self.health_port)]
            self.proc = _started(
                subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self._env, start_new_session=True)
            )

    @property
    def node(self) -> str:
        """The Celery node name this worker announces in its heartbeat (``celery_backend.worker_name``)."""
        return f"medrisk-{self.proc.pid}@{socket.gethostname()}"

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
            mine = self.log()[self._offset :]
            if _port_taken(mine):  # its health port was taken in the meantime: start again on another
                _RUNNING.pop(self.proc.pid, None)
                self._start()
                return False
            raise AssertionError(f"worker {self.name} exited {self.proc.returncode}:\n{mine[-3000:]}")
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
        code = self.proc.returncode
        _reap(self.proc)  # the pool children of a killed worker
        return code


def json_of(body: bytes) -> dict:
    return json.loads(body or b"{}")
