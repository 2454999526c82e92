"""Property-based tests of the whole API against its own OpenAPI document (schemathesis).

Every operation gets a bounded number of generated requests (valid and invalid); the
responses must not be server errors and must match the documented status codes,
content types and schemas. Each request carries a fresh API token of a role that may
call the operation, so a generated logout or token revocation cannot lock the run out.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from medrisk.platform import sessions
from medrisk.platform.roles import PERMISSIONS
from tests.platform.fixtures import BACKENDS, make_platform, new_url
from tests.platform.world import World, build_world

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, scan_runner) -> World:  # noqa: F811
    """PostgreSQL too: it is the stricter store (NUL characters, integer ranges, encodings)."""
    tmp: Path = tmp_path_factory.mktemp("openapi")
    ctx = make_platform(new_url(request, request.param, tmp), tmp, scan_runner)
    w = build_world(ctx)
    w.file_app(signing_certificates=["ef" * 32])
    return w


@pytest.fixture(scope="module")
def api_schema(api: World):
    return schemathesis.openapi.from_asgi("/openapi.json", api.client.app)


schema = schemathesis.pytest.from_fixture("api_schema")


def _who(method: str, path: str) -> str:
    if method == "POST" and path == "/api/v1/filings" or method == "PATCH" and path.startswith("/api/v1/filings/"):
        return "hosp_builder"
    if path.endswith("/versions") and method == "POST" or path.endswith("/privacy-policy") and method == "PUT":
        return "hosp_builder"
    if path.endswith("/review"):
        return "hz_rev"
    return "admin"


def _token(api: World, key: str) -> str:
    from medrisk.platform.sessions import _principal
    from medrisk.store.models import User

    with api.ctx.db.session() as db:
        user = db.get(User, api.accounts[key].user_id)
        p = _principal(db, user, "schemathesis")
        token, _ = sessions.create_token(db, p, "fuzz", [x.value for x in PERMISSIONS[p.role]], 1)
    return token


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, api):
    headers = {"Authorization": f"Bearer {_token(api, _who(case.method, case.path))}"}
    case.call_and_validate(headers=headers, checks=CHECKS)


def test_openapi_document_is_valid(api):
    from openapi_spec_validator import validate

    doc = api.client.get("/openapi.json").json()
    validate(doc)
    assert "/api/v1/filings/{filing_id}/versions" in doc["paths"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
