from __future__ import annotations

import pytest

from medrisk.platform.context import Platform
from tests.platform.fixtures import _fast_argon2, ctx, fresh_ctx, pg_server, scan_runner  # noqa: F401
from tests.platform.world import World, build_world


@pytest.fixture(scope="module")
def world(ctx: Platform) -> World:  # noqa: F811
    return build_world(ctx)
