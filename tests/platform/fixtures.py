"""Fixtures shared by tests/platform and tests/web: a throwaway PostgreSQL server, platforms
on SQLite and PostgreSQL, and a populated organisation tree ("world") with a user per role.

The PostgreSQL server is real (Debian's `postgresql` package: initdb + pg_ctl into a
temporary directory, as the `postgres` user when the tests run as root). Missing
binaries FAIL the tests that need them, with the install command: never a skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from medrisk.platform import passwords
from medrisk.platform.context import Platform
from medrisk.platform.scanning import ThreadScanRunner
from medrisk.platform.service import ServiceConfig, build

BACKENDS = ["sqlite", "postgresql"]
PG_HINT = "install the PostgreSQL server binaries: `apt-get install -y postgresql` (or set MEDRISK_PG_BINDIR)"


def _pg_bindir() -> Path:
    env = os.environ.get("MEDRISK_PG_BINDIR")
    candidates = [env] if env else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    which = shutil.which("initdb")
    if which and not env:
        candidates.append(str(Path(which).parent))
    for d in candidates:
        if d and (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file():
            return Path(d)
    pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {PG_HINT}", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        import psycopg

        name = "medrisk_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _pg_bindir()
    root = Path(tempfile.mkdtemp(prefix="medrisk-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        user = "postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
        prefix = ["runuser", "-u", user, "--"]
        info = pwd.getpwnam(user)
        os.chown(root, info.pw_uid, info.pw_gid)
    data, log = root / "data", root / "server.log"
    port = _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    try:
        subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            **run,
        )
        fast = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"  # throwaway data
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 {fast}"
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "start"], **run
        )
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr or ""
        if log.exists():
            detail += log.read_text(errors="replace")
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start a throwaway PostgreSQL server: {detail[-2000:]}", pytrace=False)
    try:
        yield PgServer(port)
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _fast_argon2() -> Iterator[None]:
    """Still Argon2id, with test-sized cost (production keeps argon2-cffi's RFC 9106 defaults)."""
    saved = passwords._hasher, passwords._DUMMY_HASH
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    passwords._DUMMY_HASH = passwords._hasher.hash("dummy-password-1A!")
    yield
    passwords._hasher, passwords._DUMMY_HASH = saved


@pytest.fixture(scope="session")
def scan_runner() -> ThreadScanRunner:
    return ThreadScanRunner()


def new_url(request: pytest.FixtureRequest, backend: str, tmp: Path) -> str:
    if backend == "postgresql":
        return request.getfixturevalue("pg_server").create_database()
    return f"sqlite:///{tmp / 'medrisk.db'}"


def make_platform(url: str, data_dir: Path, runner: ThreadScanRunner) -> Platform:
    cfg = ServiceConfig(
        data_dir=data_dir,
        db_url=url,
        jobs="inline",
        scan_runner="thread",
        allow_generated_keystore_password=True,
        keystore_iterations=100_000,
    )
    ctx = build(cfg)
    ctx.scan_runner = runner
    return ctx


@pytest.fixture(scope="module", params=BACKENDS)
def ctx(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, scan_runner: ThreadScanRunner
) -> Iterator[Platform]:
    """A platform per test module and backend (tests create their own, uniquely named data)."""
    tmp = tmp_path_factory.mktemp(f"platform-{request.param}")
    p = make_platform(new_url(request, request.param, tmp), tmp, scan_runner)
    p.info["backend"] = request.param
    yield p
    p.db.dispose()


@pytest.fixture(params=BACKENDS)
def fresh_ctx(request: pytest.FixtureRequest, tmp_path: Path, scan_runner: ThreadScanRunner) -> Iterator[Platform]:
    """A platform of its own, for tests that tamper with the database."""
    p = make_platform(new_url(request, request.param, tmp_path), tmp_path, scan_runner)
    p.info["backend"] = request.param
    yield p
    p.db.dispose()
