"""/api/v1/orgs and /api/v1/users: the organisation tree and its people."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from medrisk.platform import orgs, users
from medrisk.platform.context import Platform
from medrisk.platform.roles import OrgKind, Role
from medrisk.store.models import User
from medrisk.web.common import ERRORS
from medrisk.web.deps import Caller, Ctx, Id
from medrisk.web.schemas import MAX_ID, NewUserOut, OrgIn, OrgOut, PasswordResetOut, UserIn, UserOut, UserPatch

router = APIRouter(prefix="/api/v1", responses=ERRORS)

QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def user_out(ctx: Platform, u: User) -> UserOut:
    data = {
        k: getattr(u, k)
        for k in ("id", "org_id", "username", "display_name", "role", "totp_enabled", "disabled", "created_at")
    }
    return UserOut.model_validate({**data, "phone": users.phone_of(ctx, u), "locked": users.is_locked(u)})


@router.get("/orgs", response_model=list[OrgOut], tags=["organisations"], summary="Organisations the caller can see")
def list_orgs(ctx: Ctx, p: Caller, kind: OrgKind | None = None, parent_id: QueryId = None) -> list[OrgOut]:
    with ctx.db.session() as db:
        return [
            OrgOut.model_validate(o)
            for o in orgs.list_orgs(db, p, kind=kind.value if kind else None, parent_id=parent_id)
        ]


@router.post("/orgs", status_code=201, response_model=OrgOut, tags=["organisations"], summary="Add an organisation")
def create_org(body: OrgIn, ctx: Ctx, p: Caller) -> OrgOut:
    with ctx.db.session() as db:
        o = orgs.create_org(
            ctx, db, p, name=body.name, kind=body.kind.value, parent_id=body.parent_id, region_code=body.region_code
        )
        return OrgOut.model_validate(o)


@router.get("/orgs/{org_id}", response_model=OrgOut, tags=["organisations"])
def get_org(org_id: Id, ctx: Ctx, p: Caller) -> OrgOut:
    with ctx.db.session() as db:
        return OrgOut.model_validate(orgs.get_org(db, p, org_id))


@router.get("/users", response_model=list[UserOut], tags=["users"], summary="Users the caller can see")
def list_users(ctx: Ctx, p: Caller, org_id: QueryId = None, role: Role | None = None) -> list[UserOut]:
    with ctx.db.session() as db:
        return [user_out(ctx, u) for u in users.list_users(db, p, org_id=org_id, role=role.value if role else None)]


@router.post("/users", status_code=201, response_model=NewUserOut, tags=["users"], summary="Add a user")
def create_user(body: UserIn, ctx: Ctx, p: Caller) -> NewUserOut:
    with ctx.db.session() as db:
        u, generated = users.create_user(
            ctx,
            db,
            p,
            org_id=body.org_id,
            username=body.username,
            role=body.role.value,
            display_name=body.display_name,
            password=body.password,
            phone=body.phone,
        )
        return NewUserOut.model_validate({**user_out(ctx, u).model_dump(), "initial_password": generated})


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
def get_user(user_id: Id, ctx: Ctx, p: Caller) -> UserOut:
    with ctx.db.session() as db:
        return user_out(ctx, users.get_user(db, p, user_id))


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"], summary="Change role, status, name or phone")
def update_user(user_id: Id, body: UserPatch, ctx: Ctx, p: Caller) -> UserOut:
    with ctx.db.session() as db:
        changes = body.model_dump(exclude_unset=True)
        if "role" in changes and changes["role"] is not None:
            changes["role"] = changes["role"].value
        return user_out(ctx, users.update_user(ctx, db, p, user_id, changes))


@router.post("/users/{user_id}/reset-password", response_model=PasswordResetOut, tags=["users"])
def reset_password(user_id: Id, ctx: Ctx, p: Caller) -> PasswordResetOut:
    with ctx.db.session() as db:
        return PasswordResetOut(temporary_password=users.reset_password(ctx, db, p, user_id))


@router.post("/users/{user_id}/reset-totp", status_code=204, response_class=Response, tags=["users"])
def reset_totp(user_id: Id, ctx: Ctx, p: Caller) -> Response:
    with ctx.db.session() as db:
        users.reset_totp(ctx, db, p, user_id)
    return Response(status_code=204)


@router.post("/users/{user_id}/unlock", status_code=204, response_class=Response, tags=["users"])
def unlock(user_id: Id, ctx: Ctx, p: Caller) -> Response:
    with ctx.db.session() as db:
        users.unlock(ctx, db, p, user_id)
    return Response(status_code=204)
