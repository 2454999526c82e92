"""Shared router pieces: the documented error responses and small presenters."""

from __future__ import annotations

from typing import Any

from medrisk.web.schemas import ErrorOut

_DESCRIPTIONS = {
    400: "bad request",
    401: "not logged in, or the session expired",
    403: "the role or token scope does not allow this",
    404: "not found, or not visible to the caller",
    409: "conflicts with the current state",
    413: "upload larger than the limit",
    422: "invalid input; `field` names the field",
    429: "too many attempts; see Retry-After",
}

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": d} for code, d in _DESCRIPTIONS.items()
}
