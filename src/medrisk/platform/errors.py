"""Domain errors; the web layer maps each class to one HTTP status."""

from __future__ import annotations


class PlatformError(Exception):
    status = 400
    code = "error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class Invalid(PlatformError):
    """Input that is well-formed but not acceptable (names the field)."""

    status = 422
    code = "invalid"


class NotFound(PlatformError):
    """Missing, or not visible to the caller: the two are indistinguishable on purpose."""

    status = 404
    code = "not_found"


class Forbidden(PlatformError):
    status = 403
    code = "forbidden"


class Unauthenticated(PlatformError):
    status = 401
    code = "unauthenticated"


class Conflict(PlatformError):
    status = 409
    code = "conflict"


class TooLarge(PlatformError):
    status = 413
    code = "too_large"


class RateLimited(PlatformError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
