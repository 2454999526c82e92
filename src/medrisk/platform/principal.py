"""Who is calling: a user session or an API token, with the permissions that result."""

from __future__ import annotations

from dataclasses import dataclass, field

from medrisk.platform.errors import Forbidden
from medrisk.platform.roles import PERMISSIONS, Perm, Role


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: Role
    org_id: int
    org_path: str  # materialised path of the caller's organisation: the root of what it may see
    org_kind: str
    address: str = ""
    token_scopes: frozenset[str] | None = None  # None for a user session; an API token's scopes otherwise
    session_id: int | None = None
    token_id: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def can(self, perm: Perm) -> bool:
        if perm not in PERMISSIONS[self.role]:
            return False
        return self.token_scopes is None or perm.value in self.token_scopes

    def require(self, perm: Perm) -> None:
        if not self.can(perm):
            raise Forbidden(f"role {self.role.value} may not do this ({perm.value})", code="forbidden")

    @property
    def is_admin(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN


SYSTEM = Principal(user_id=0, username="system", role=Role.PLATFORM_ADMIN, org_id=0, org_path="/", org_kind="national")
