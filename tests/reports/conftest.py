"""A platform with the demo data of `medrisk serve`: real corpus APKs filed, approved, uploaded and
scanned (inline), for the report tests. Also the SMTP server of the loop tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from medrisk.platform import demo, scanning
from medrisk.platform.context import Platform
from tests.loop.conftest import smtp  # noqa: F401 - a real SMTP server on loopback
from tests.platform.fixtures import _fast_argon2, make_platform, pg_server, scan_runner  # noqa: F401


@pytest.fixture(scope="module")
def demo_ctx(tmp_path_factory: pytest.TempPathFactory, scan_runner, corpus_dir) -> Iterator[Platform]:  # noqa: F811
    tmp = tmp_path_factory.mktemp("reports")
    ctx = make_platform(f"sqlite:///{tmp / 'medrisk.db'}", tmp, scan_runner)
    ctx.info["demo_users"] = {u.username: u for u in demo.seed(ctx)}  # type: ignore[assignment]
    scanning.requeue_unfinished(ctx)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_any(request, tmp_path_factory, scan_runner, corpus_dir) -> Iterator[Platform]:  # noqa: F811
    """The demo platform on both databases (the posture queries must agree on each)."""
    from tests.platform.fixtures import new_url

    tmp = tmp_path_factory.mktemp(f"reports-{request.param}")
    ctx = make_platform(new_url(request, request.param, tmp), tmp, scan_runner)
    demo.seed(ctx)
    scanning.requeue_unfinished(ctx)
    yield ctx
    ctx.close()
