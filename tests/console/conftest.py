"""A running console for the tests: the demo data of `medrisk serve` (real corpus APKs scanned for
real) on SQLite, served by uvicorn on a loopback port in a thread, and one headless Chromium.

Chromium is Debian's (`apt-get install chromium`, scripts/test.sh); Playwright only drives it
(never `playwright install`). A missing browser fails the tests with the install command.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from medrisk.platform import demo, scanning
from medrisk.platform.context import Platform
from medrisk.store.models import Filing
from tests.loop.conftest import smtp  # noqa: F401 - a real SMTP server on loopback
from tests.platform.fixtures import _fast_argon2, make_platform, pg_server, scan_runner  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS_ENV = "MEDRISK_ARTIFACTS"  # keep screenshots somewhere else (e.g. a CI artefact folder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Console:
    ctx: Platform
    base: str
    users: dict[str, demo.DemoUser]
    _steps: dict[str, int] = field(default_factory=dict)

    def totp(self, username: str) -> str:
        """A one-time code not used before by these tests (each 30-second step is accepted once)."""
        secret = self.users[username].totp_secret
        assert secret
        now_step = int(time.time()) // 30
        # the current step first: the server accepts one step either side, so the code stays valid
        # 30-60 s. (The previous step, tried first before, expired at the next boundary: a login
        # typed on a loaded machine across it was refused, a flaky journey.)
        step = max(now_step, self._steps.get(username, 0) + 1)
        if step > now_step + 1:
            time.sleep((step - 1) * 30 - time.time() + 0.05)
        self._steps[username] = step
        return pyotp.TOTP(secret).at(step * 30)


def running_console(request: pytest.FixtureRequest, tmp: Path, backend: str, runner) -> Iterator[Console]:
    """The demo data on ``backend`` served by uvicorn on a free loopback port, in a thread."""
    import uvicorn

    from medrisk.web.app import create_app
    from tests.platform.fixtures import new_url

    ctx = make_platform(new_url(request, backend, tmp), tmp, runner)
    users = {u.username: u for u in demo.seed(ctx)}
    scanning.requeue_unfinished(ctx)  # what `medrisk serve` does on start: the demo scans run (inline here)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("the console server did not start")
        time.sleep(0.05)
    try:
        yield Console(ctx, f"http://127.0.0.1:{port}", users)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ctx.close()


@pytest.fixture(scope="module")
def console(request, tmp_path_factory: pytest.TempPathFactory, scan_runner, corpus_dir) -> Iterator[Console]:  # noqa: F811
    yield from running_console(request, tmp_path_factory.mktemp("console"), "sqlite", scan_runner)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
        pytest.fail("chromium not found: apt-get install chromium (or run scripts/test.sh)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: the pytest temporary directory, or $MEDRISK_ARTIFACTS."""
    import os

    env = os.environ.get(ARTIFACTS_ENV)
    path = Path(env) / "console" if env else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_channel_findings(console, package: str, channel: str) -> dict[str, int]:
    """A channel where the filed app is listed twice (filed version and a drifted one), a
    repackaged copy signed by someone else and a look-alike, as channel monitoring records them."""
    from medrisk.store.models import Channel, ChannelListing, ChannelVerdict, utcnow

    with console.ctx.db.session() as db:
        f = db.scalars(select(Filing).where(Filing.package == package)).one()
        ch = Channel(org_id=f.org_id, name=channel, kind="folder", url="/tmp/none", created_at=utcnow())
        db.add(ch)
        db.flush()

        def listing(key: str, **kw) -> ChannelListing:
            row = ChannelListing(channel_id=ch.id, org_id=f.org_id, listing_key=key, **kw)
            db.add(row)
            db.flush()
            return row

        genuine = listing(
            f"{package}@1",
            package=package,
            app_name=f.name,
            version_name=f.current_version,
            version_code=1,
            filing_id=f.id,
            signer_sha256=["aa" * 32],
            scan_grade="C",
            scan_score=40.0,
        )
        drifted = listing(
            f"{package}@9",
            package=package,
            app_name=f.name,
            version_name="9.9",
            version_code=9,
            filing_id=f.id,
            signer_sha256=["aa" * 32],
            downloads=1200,
        )
        repack = listing(
            f"{package}@1#x",
            package=package,
            app_name=f.name,
            version_name=f.current_version,
            version_code=1,
            filing_id=f.id,
            signer_sha256=["bb" * 32],
            apk_sha256="cc" * 32,
        )
        fake = listing("fake@1", package=package + ".pro", app_name=f.name + " 专业版", developer="某某科技")
        out = {"genuine": genuine.id}
        for kind, row, score, threshold, evidence in (
            ("drift", drifted, None, None, {"seen": "9.9", "filed": f.current_version, "class": "major"}),
            ("tampered", repack, None, None, {"listed_signers": ["bb" * 32], "filed_signers": ["aa" * 32]}),
            (
                "lookalike",
                fake,
                0.91,
                0.85,
                {
                    "listed": {"package": fake.package, "name": fake.app_name, "developer": "某某科技"},
                    "filed": {"package": package, "name": f.name, "institution": "医院"},
                    "fired": [
                        {"by": "name", "score": 0.91, "threshold": 0.85},
                        {"by": "icon", "distance": 6, "threshold": 10, "score": 0.906},
                    ],
                },
            ),
        ):
            v = ChannelVerdict(
                dedupe_key=f"{channel}:{kind}:{row.id}",
                kind=kind,
                severity="high",
                channel_id=ch.id,
                listing_id=row.id,
                filing_id=f.id,
                org_id=f.org_id,
                score=score,
                threshold=threshold,
                evidence=evidence,
            )
            db.add(v)
            db.flush()
            out[kind] = v.id
        out["filing"] = f.id
        return out
