"""Visibility in ONE place: what rows a principal may see.

Every scoped row carries the ``org_id`` of the organisation it belongs to. A caller
sees the rows of its own organisation's subtree (a regulator: its whole region; an
institution: only itself, because institutions are leaves); a platform administrator
sees everything. Every list and get in ``medrisk.platform`` goes through ``scoped``
or ``get_visible``; a row outside the scope is reported as not found.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from medrisk.platform.errors import NotFound
from medrisk.platform.principal import Principal
from medrisk.store.models import Organisation

T = TypeVar("T")


def visible_orgs(principal: Principal) -> Select[Any]:
    """Ids of the organisations the principal may see, as a subquery."""
    if principal.is_admin:
        return select(Organisation.id)
    return select(Organisation.id).where(Organisation.path.startswith(principal.org_path, autoescape=True))


def scoped(stmt: Select[Any], principal: Principal, model: Any) -> Select[Any]:
    """Restrict ``stmt`` (selecting ``model``) to the rows the principal may see."""
    column = model.id if model is Organisation else model.org_id
    if principal.is_admin:
        return stmt
    return stmt.where(column.in_(visible_orgs(principal)))


def get_visible(db: Session, principal: Principal, model: type[T], ident: Any, what: str | None = None) -> T:
    row = db.scalars(scoped(select(model).where(model.id == ident), principal, model)).first()  # type: ignore[attr-defined]
    if row is None:
        raise NotFound(f"{what or model.__name__.lower()} {ident} not found")
    return row


def org_visible(db: Session, principal: Principal, org_id: int) -> bool:
    return (
        db.scalar(scoped(select(Organisation.id).where(Organisation.id == org_id), principal, Organisation)) is not None
    )
