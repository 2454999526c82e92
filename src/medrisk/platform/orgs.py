"""The organisation tree: national authority → provincial → municipal regulators → institutions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medrisk.platform import audit
from medrisk.platform.context import Platform
from medrisk.platform.errors import Conflict, Forbidden, Invalid
from medrisk.platform.principal import Principal
from medrisk.platform.roles import INSTITUTION_KINDS, LEVEL, OrgKind, Perm
from medrisk.platform.scope import get_visible, scoped
from medrisk.store.models import Organisation


def _check_placement(kind: OrgKind, parent: Organisation | None) -> None:
    if kind is OrgKind.NATIONAL:
        if parent is not None:
            raise Invalid("the national authority is the root and has no parent", field="parent_id")
        return
    if parent is None:
        raise Invalid("every organisation except the national authority needs a parent", field="parent_id")
    parent_kind = OrgKind(parent.kind)
    if parent_kind in INSTITUTION_KINDS:
        raise Invalid("institutions cannot have child organisations", field="parent_id")
    if kind in INSTITUTION_KINDS:
        return  # an institution is registered with the regulator of its region, at any level
    if LEVEL[kind] != LEVEL[parent_kind] + 1:
        raise Invalid(f"a {kind.value} regulator must sit directly under a {_above(kind)} one", field="parent_id")


def _above(kind: OrgKind) -> str:
    return {OrgKind.PROVINCIAL: "national", OrgKind.MUNICIPAL: "provincial"}.get(kind, "")


def create_org(
    ctx: Platform,
    db: Session,
    p: Principal,
    *,
    name: str,
    kind: str,
    parent_id: int | None,
    region_code: str | None = None,
) -> Organisation:
    p.require(Perm.ORG_WRITE)
    okind = OrgKind(kind)
    parent = get_visible(db, p, Organisation, parent_id, "parent organisation") if parent_id is not None else None
    if parent is None and not p.is_admin:
        raise Forbidden("only a platform administrator may create a root organisation")
    _check_placement(okind, parent)
    org = Organisation(name=name, kind=okind.value, parent_id=parent.id if parent else None, region_code=region_code)
    try:
        with db.begin_nested():
            db.add(org)
            db.flush()
    except IntegrityError:
        raise Conflict(f"an organisation named {name!r} already exists there", field="name") from None
    org.path = f"{parent.path if parent else '/'}{org.id}/"
    db.flush()
    audit.record(
        ctx.keys,
        db,
        "org.created",
        actor=p,
        org_id=org.id,
        target=f"org:{org.id}",
        details={"kind": kind, "parent_id": parent_id},
    )
    return org


def list_orgs(
    db: Session, p: Principal, *, kind: str | None = None, parent_id: int | None = None
) -> list[Organisation]:
    p.require(Perm.ORG_READ)
    stmt = select(Organisation).order_by(Organisation.path)
    if kind:
        stmt = stmt.where(Organisation.kind == kind)
    if parent_id is not None:
        stmt = stmt.where(Organisation.parent_id == parent_id)
    return list(db.scalars(scoped(stmt, p, Organisation)))


def get_org(db: Session, p: Principal, org_id: int) -> Organisation:
    p.require(Perm.ORG_READ)
    return get_visible(db, p, Organisation, org_id, "organisation")


def ancestors(db: Session, org: Organisation) -> list[Organisation]:
    ids = [int(x) for x in org.path.strip("/").split("/") if x]
    rows = {o.id: o for o in db.scalars(select(Organisation).where(Organisation.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def create_root(db: Session, name: str) -> Organisation:
    """The national authority, for bootstrapping (CLI, demo data); no principal yet."""
    org = Organisation(name=name, kind=OrgKind.NATIONAL.value, parent_id=None)
    db.add(org)
    db.flush()
    org.path = f"/{org.id}/"
    db.flush()
    return org
