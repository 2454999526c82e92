"""Alembic migrations: `medrisk db upgrade` on both databases, and models that match the migrations."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from medrisk import platform_cli
from medrisk.store import migrate
from medrisk.store.db import make_engine
from medrisk.store.models import Base
from tests.platform.fixtures import BACKENDS, new_url


@pytest.mark.parametrize("backend", BACKENDS)
def test_db_upgrade_and_models_match(request, backend, tmp_path, capsys):
    url = new_url(request, backend, tmp_path)
    assert platform_cli.main(["db", "upgrade", "--db", url, "--data-dir", str(tmp_path)]) == 0
    assert f"revision {migrate.head()}" in capsys.readouterr().out
    assert migrate.current(url) == migrate.head()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ: add a migration ({diff})"
    assert platform_cli.main(["db", "upgrade", "--db", url]) == 0  # idempotent
