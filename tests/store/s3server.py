"""A real S3-compatible server for the S3 blob store tests: s3rver (npm, Node.js) on a free port.

scripts/test.sh installs the pinned s3rver into .cache/npm (``npm install --prefix .cache/npm
s3rver@3.7.1``); when it is missing the tests FAIL with that command (never a skip). Each server
runs in its own session with its data in a temporary directory, and is stopped (its process
group) by the fixture that started it, or at exit of the interpreter should the session die first.

s3rver accepts the credentials ``S3RVER`` / ``S3RVER``. It rejects an unknown access key, but does
not verify AWS Signature V4 signatures (a wrong secret key with the right access key is accepted),
so the wrong-credentials test uses a wrong access key.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
S3RVER = Path(os.environ.get("MEDRISK_S3RVER", REPO / ".cache" / "npm" / "node_modules" / ".bin" / "s3rver"))
S3RVER_HINT = "install s3rver: `npm install --prefix .cache/npm --no-save s3rver@3.7.1` (scripts/test.sh does)"
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"  # noqa: S105 - s3rver's built-in test account

_RUNNING: dict[int, subprocess.Popen] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    proc: subprocess.Popen
    port: int
    root: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY):  # noqa: ANN201 - minio.Minio
        from minio import Minio

        return Minio(f"127.0.0.1:{self.port}", access_key=access_key, secret_key=secret_key, secure=False)

    def new_bucket(self) -> str:
        name = "medrisk-" + uuid.uuid4().hex[:12]
        self.client().make_bucket(name)
        return name

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        _RUNNING.pop(self.proc.pid, None)
        shutil.rmtree(self.root, ignore_errors=True)


def start_s3rver() -> S3Server:
    if not os.access(S3RVER, os.X_OK):
        pytest.fail(f"s3rver not found at {S3RVER}: {S3RVER_HINT}", pytrace=False)
    if shutil.which("node") is None:
        pytest.fail("node not found: `apt-get install -y nodejs npm` (scripts/test.sh does)", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="medrisk-s3rver-"))
    port = free_port()
    log = open(root / "s3rver.log", "wb")  # noqa: SIM115 - the child writes to it
    (root / "data").mkdir()
    proc = subprocess.Popen(
        [str(S3RVER), "-d", str(root / "data"), "-a", "127.0.0.1", "-p", str(port), "--no-vhost-buckets"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    _RUNNING[proc.pid] = proc
    server = S3Server(proc, port, root)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.05)
    output = (root / "s3rver.log").read_text(errors="replace")[-2000:]
    server.stop()
    pytest.fail(f"s3rver did not start on port {port}: {output}", pytrace=False)


def _stop_all() -> None:
    for proc in list(_RUNNING.values()):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


atexit.register(_stop_all)
