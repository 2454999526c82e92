"""Per-role allowed/denied tests on each endpoint, and visibility across the tree (by id, list filters, exports)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from medrisk.platform.users import create_user
from tests.platform.world import PASSWORD, USERS, World

ALL = [k for k, _, _ in USERS]
HOSP_READERS = {"admin", "auditor", "zj_reg", "hz_reg", "hz_rev", "hosp_admin", "hosp_builder", "hosp_auditor"}
AUDIT_READERS = {"admin", "auditor", "zj_reg", "hz_reg", "js_reg", "hosp_auditor"}
_n = itertools.count(1)


@pytest.fixture(scope="module")
def targets(world: World, corpus_dir) -> dict[str, int]:
    approved = world.file_app(signing_certificates=["cd" * 32])
    world.approve(approved["id"])
    return {"filing": approved["id"], "user": world.accounts["hosp_builder"].user_id}


def _fresh_user(world: World) -> int:
    with world.ctx.db.session() as db:
        u, _ = create_user(
            world.ctx,
            db,
            None,
            org_id=world.org("hosp"),
            username=f"t{next(_n)}.{world.tag}",
            role="builder",
            password=PASSWORD,
        )
        return u.id


def _pending(world: World) -> int:
    return world.file_app()["id"]


Op = Callable[[World, dict[str, str], dict[str, int]], object]
OPS: list[tuple[str, Op, set[str]]] = [
    ("GET org", lambda w, h, t: w.client.get(f"/api/v1/orgs/{w.org('hosp')}", headers=h), HOSP_READERS),
    (
        "POST org",
        lambda w, h, t: w.client.post(
            "/api/v1/orgs",
            json={"name": f"新公司{next(_n)}", "kind": "app_company", "parent_id": w.org("hz")},
            headers=h,
        ),
        {"admin", "zj_reg", "hz_reg"},
    ),
    (
        "GET users",
        lambda w, h, t: w.client.get("/api/v1/users", headers=h),
        {"admin", "auditor", "zj_reg", "hz_reg", "js_reg", "hosp_admin", "hosp_auditor", "corp_admin"},
    ),
    (
        "GET user",
        lambda w, h, t: w.client.get(f"/api/v1/users/{t['user']}", headers=h),
        {"admin", "auditor", "zj_reg", "hz_reg", "hosp_admin", "hosp_auditor", "hosp_builder"},
    ),
    (
        "POST user",
        lambda w, h, t: w.client.post(
            "/api/v1/users",
            json={"org_id": w.org("hosp"), "username": f"n{next(_n)}.{w.tag}", "role": "builder"},
            headers=h,
        ),
        {"admin", "zj_reg", "hz_reg", "hosp_admin"},
    ),
    (
        "PATCH user",
        lambda w, h, t: w.client.patch(f"/api/v1/users/{_fresh_user(w)}", json={"disabled": True}, headers=h),
        {"admin", "zj_reg", "hz_reg", "hosp_admin"},
    ),
    ("GET filing", lambda w, h, t: w.client.get(f"/api/v1/filings/{t['filing']}", headers=h), HOSP_READERS),
    ("GET versions", lambda w, h, t: w.client.get(f"/api/v1/filings/{t['filing']}/versions", headers=h), HOSP_READERS),
    ("GET authcode", lambda w, h, t: w.client.get(f"/api/v1/filings/{t['filing']}/authcode", headers=h), HOSP_READERS),
    (
        "POST filing",
        lambda w, h, t: w.client.post("/api/v1/filings", json=w.filing_body(org_id=w.org("hosp")), headers=h),
        {"hosp_admin", "hosp_builder"},
    ),
    (
        "PATCH filing",
        lambda w, h, t: w.client.patch(f"/api/v1/filings/{_pending(w)}", json={"name": "改名"}, headers=h),
        {"hosp_admin", "hosp_builder"},
    ),
    (
        "POST review",
        lambda w, h, t: w.client.post(
            f"/api/v1/filings/{_pending(w)}/review", json={"decision": "rejected", "reason": "x"}, headers=h
        ),
        {"zj_reg", "hz_reg", "hz_rev"},
    ),
    (
        "POST reissue",
        lambda w, h, t: w.client.post(f"/api/v1/filings/{t['filing']}/authcode", json={}, headers=h),
        {"admin", "zj_reg", "hz_reg"},
    ),
    ("GET audit", lambda w, h, t: w.client.get("/api/v1/audit", headers=h), AUDIT_READERS),
    (
        "GET audit verify",
        lambda w, h, t: w.client.get("/api/v1/audit/verify", headers=h),
        {"admin", "auditor", "hosp_auditor"},
    ),
    ("GET alerts", lambda w, h, t: w.client.get("/api/v1/alerts", headers=h), AUDIT_READERS),
    ("GET config", lambda w, h, t: w.client.get("/api/v1/config", headers=h), AUDIT_READERS),
    (
        "PATCH config",
        lambda w, h, t: w.client.patch("/api/v1/config", json={"lockout_minutes": 15}, headers=h),
        {"admin"},
    ),
    (
        "GET export",
        lambda w, h, t: w.client.get("/api/v1/exports/filings", headers=h),
        set(ALL) - {"hosp_builder", "corp_builder", "nj_builder"},
    ),
    (
        "POST token",
        lambda w, h, t: w.client.post("/api/v1/tokens", json={"name": "x", "scopes": ["filings:read"]}, headers=h),
        set(ALL) - {"auditor", "hosp_auditor"},
    ),
]


@pytest.mark.parametrize(("name", "op", "allowed"), OPS, ids=[o[0] for o in OPS])
def test_each_role_on_each_endpoint(world, targets, name, op, allowed):
    wrong = []
    for key in ALL:
        r = op(world, world.h(key), targets)
        ok = r.status_code < 300
        if ok != (key in allowed) or (not ok and r.status_code not in (403, 404)):
            wrong.append(f"{key}: {r.status_code} {r.text[:120]}")
    assert not wrong, f"{name}: " + "; ".join(wrong)


def test_unauthenticated_is_401_everywhere(world, targets):
    for path in (
        "/api/v1/filings",
        f"/api/v1/filings/{targets['filing']}",
        "/api/v1/users",
        "/api/v1/orgs",
        "/api/v1/audit",
    ):
        r = world.client.get(path)
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"


def test_lists_are_scoped_to_the_subtree(world, targets):
    corp = world.file_app(who="corp_builder")
    ids = lambda who, **q: {f["id"] for f in world.client.get("/api/v1/filings", params=q, headers=world.h(who)).json()}  # noqa: E731
    assert targets["filing"] in ids("hz_reg") and corp["id"] in ids("hz_reg") and corp["id"] in ids("zj_reg")
    assert targets["filing"] not in ids("js_reg") and corp["id"] not in ids("js_reg")
    assert targets["filing"] not in ids("corp_builder") and corp["id"] in ids("corp_builder")
    assert ids("corp_builder", org_id=world.org("hosp")) == set()  # a filter cannot widen the scope
    assert ids("nj_builder", package=world.filing_body()["package"]) == set()
    orgs = {o["id"] for o in world.client.get("/api/v1/orgs", headers=world.h("hosp_auditor")).json()}
    assert orgs == {world.org("hosp")}
    orgs = {o["id"] for o in world.client.get("/api/v1/orgs", headers=world.h("hz_reg")).json()}
    assert {world.org("hz"), world.org("hosp"), world.org("corp")} <= orgs and world.org("zj") not in orgs
    users = world.client.get(
        "/api/v1/users", params={"org_id": world.org("hosp")}, headers=world.h("corp_admin")
    ).json()
    assert users == []
    assert world.client.get(f"/api/v1/users/{targets['user']}", headers=world.h("corp_admin")).status_code == 404


def test_exports_are_scoped(world, targets):
    corp = world.file_app(who="corp_builder")
    text = world.client.get(
        "/api/v1/exports/filings", params={"org_id": world.org("hosp")}, headers=world.h("corp_admin")
    ).text
    assert text.strip().count("\n") == 0  # the header only
    data = world.client.get("/api/v1/exports/filings", params={"format": "json"}, headers=world.h("corp_admin")).json()
    assert {r["filing_id"] for r in data["filings"]} == {
        f["id"] for f in world.client.get("/api/v1/filings", headers=world.h("corp_admin")).json()
    }
    assert corp["id"] in {r["filing_id"] for r in data["filings"]} and targets["filing"] not in {
        r["filing_id"] for r in data["filings"]
    }
    js = world.client.get("/api/v1/exports/filings", params={"format": "json"}, headers=world.h("js_reg")).json()
    assert not {r["filing_id"] for r in js["filings"]} & {corp["id"], targets["filing"]}
    assert "phone" not in text and "contacts" not in str(data)


def test_role_grants_are_limited(world):
    def create(who, org, role):
        return world.client.post(
            "/api/v1/users",
            json={"org_id": world.org(org), "username": f"g{next(_n)}.{world.tag}", "role": role},
            headers=world.h(who),
        )

    assert create("hosp_admin", "hosp", "regulator").status_code == 422  # no such role in a hospital
    assert create("hosp_admin", "corp", "builder").status_code == 404  # another institution
    assert create("hz_reg", "hz", "platform_admin").status_code == 403  # cannot grant above itself
    assert create("hz_reg", "zj", "regulator").status_code == 404  # outside its region
    assert create("admin", "hz", "reviewer").status_code == 201
    me = world.accounts["hosp_admin"].user_id
    r = world.client.patch(f"/api/v1/users/{me}", json={"role": "builder"}, headers=world.h("hosp_admin"))
    assert r.status_code == 403  # not on oneself
