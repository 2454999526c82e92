"""Fixtures of the trail tests: a platform per backend (SQLite and a throwaway PostgreSQL) with the
test world, an approved internet-hospital filing, a registered sender (SM2 key) and its ingestion token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from medrisk.crypto import SM2PrivateKey
from medrisk.platform.context import Platform
from medrisk.trails import ledger
from tests.platform.fixtures import (  # noqa: F401
    BACKENDS,
    _fast_argon2,
    fresh_ctx,
    make_platform,
    new_url,
    pg_server,
    scan_runner,
)
from tests.platform.world import World, build_world


@dataclass
class Sender:
    key: SM2PrivateKey
    key_id: str
    source_id: int
    token: str
    filing_id: int
    org_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def body(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        return {"key_id": self.key_id, "signature": ledger.sign_batch(self.key, events), "events": events}


def make_sender(w: World, admin: str = "corp_admin", filing: bool = True) -> Sender:
    fid = None
    if filing:
        f = w.file_app(who=admin, signing_certificates=["cd" * 32])
        w.approve(f["id"])
        fid = f["id"]
    key = SM2PrivateKey.generate()
    r = w.client.post(
        "/api/v1/trails/sources",
        json={"name": "互联网医院 HIS", "public_key_pem": key.public_key().to_pem().decode(), "filing_id": fid},
        headers=w.h(admin),
    )
    assert r.status_code == 201, r.text
    src = r.json()
    r = w.client.post("/api/v1/trails/tokens", json={"name": "his-sender", "read": True}, headers=w.h(admin))
    assert r.status_code == 201, r.text
    return Sender(key, src["key_id"], src["id"], r.json()["token"], fid or 0, src["org_id"])


@pytest.fixture(scope="module", params=BACKENDS)
def tw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, scan_runner) -> Iterator[World]:  # noqa: F811
    """A trail world per module and backend: w.sender is the internet hospital's registered system."""
    tmp: Path = tmp_path_factory.mktemp(f"trails-{request.param}")
    ctx: Platform = make_platform(new_url(request, request.param, tmp), tmp, scan_runner)
    ctx.info["backend"] = request.param
    w = build_world(ctx)
    w.sender = make_sender(w)  # type: ignore[attr-defined]
    yield w
    ctx.close()
