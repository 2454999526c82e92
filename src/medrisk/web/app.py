"""The FastAPI application: routers, error mapping and the OpenAPI document."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from medrisk import __version__
from medrisk.platform.context import Platform
from medrisk.platform.errors import PlatformError, RateLimited
from medrisk.store.blobs import BlobStoreError

log = logging.getLogger(__name__)

DESCRIPTION = """MedRisk platform API: organisations and roles, filing (备案) with SM2-signed
authorisation codes, versions and scans, and the tamper-evident audit log.

Log in with `POST /api/v1/auth/login` and send the token as `Authorization: Bearer <token>`.
Errors have one shape: `{"code", "message", "field", "detail"}`; invalid input is 422 and names the field."""


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(x) for x in loc if x not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _error(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    detail: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"code": code, "message": message, "field": field, "detail": detail or []}
    return JSONResponse(body, status_code=status, headers=headers or None)


def create_app(ctx: Platform) -> FastAPI:
    from medrisk.web import (
        routes_admin,
        routes_auth,
        routes_channels,
        routes_filings,
        routes_loop,
        routes_orgs,
        routes_public,
        routes_trails,
        routes_versions,
    )

    app = FastAPI(title="MedRisk platform", version=__version__, description=DESCRIPTION)
    app.state.platform = ctx

    @app.exception_handler(PlatformError)
    async def _platform_error(request: Request, exc: PlatformError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        detail = [{"loc": ["body", exc.field], "msg": exc.message, "type": exc.code}] if exc.field else []
        return _error(exc.status, exc.code, exc.message, exc.field, detail, headers)

    @app.exception_handler(BlobStoreError)
    async def _blob_store_error(request: Request, exc: BlobStoreError) -> JSONResponse:
        log.error("%s %s: %s", request.method, request.url.path, exc)  # names the store, never a secret
        message = "the package store is unavailable; try again later"
        return _error(503, "blob_store_unavailable", message, headers={"Retry-After": "30"})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
        field = _field_of(first["loc"])
        return _error(422, "invalid", f"{field}: {first['msg']}", field, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return _error(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))

    for module in (
        routes_auth,
        routes_orgs,
        routes_filings,
        routes_versions,
        routes_admin,
        routes_public,
        routes_loop,
        routes_channels,
        routes_trails,
    ):
        app.include_router(module.router)
    app.add_middleware(routes_loop.GateFastPath)  # gate decisions from memory before routing
    from medrisk.web import routes_ops

    routes_ops.install(app, ctx)  # /metrics, /healthz, /readyz, parked jobs; request ids (outermost)
    from medrisk.web import console

    console.mount(app, ctx)  # the web console under /console (docs/console.md)
    return app
