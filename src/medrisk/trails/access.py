"""Who may send and read trails: an institution's API tokens by scope, regulators by hierarchy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medrisk.platform.errors import Forbidden
from medrisk.platform.principal import Principal
from medrisk.platform.roles import INSTITUTION_KINDS, Perm, Role

if TYPE_CHECKING:
    pass


TRAILS_WRITE = "trails:write"  # send trail events (institution systems' API tokens)
TRAILS_READ = "trails:read"  # read violations, receipts and indicators with an API token


def require_sender(p: Principal) -> None:
    if p.token_scopes is None or TRAILS_WRITE not in p.token_scopes:
        raise Forbidden(
            f"sending trails needs an institution's API token with scope {TRAILS_WRITE} "
            "(an institution administrator creates one with POST /api/v1/trails/tokens)",
            code="forbidden",
        )
    if p.org_kind not in INSTITUTION_KINDS:
        raise Forbidden("only institutions send trails", code="forbidden")


def require_reader(p: Principal) -> None:
    if p.token_scopes is not None:
        if TRAILS_READ not in p.token_scopes:
            raise Forbidden(f"this API token lacks scope {TRAILS_READ}", code="forbidden")
        return
    p.require(Perm.FILING_READ)


def require_institution_admin(p: Principal) -> None:
    if p.token_scopes is not None or p.role is not Role.INSTITUTION_ADMIN or p.org_kind not in INSTITUTION_KINDS:
        raise Forbidden("only an institution administrator (logged in, not a token) may do this", code="forbidden")


def can_see_identities(p: Principal) -> bool:
    """Who sees staff licence numbers in evidence: regulators, auditors, platform and institution admins."""
    return p.token_scopes is None and p.role in (
        Role.PLATFORM_ADMIN,
        Role.REGULATOR,
        Role.AUDITOR,
        Role.INSTITUTION_ADMIN,
    )
