"""Demo data for the embedded mode: a regulatory tree, two institutions and a user per role.

Passwords and TOTP secrets are random, returned to the caller to print once on the
console (never logged); only their hashes and ciphertexts are stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from medrisk.platform.auth import enrol_totp_directly
from medrisk.platform.context import Platform
from medrisk.platform.orgs import create_root
from medrisk.platform.roles import TOTP_REQUIRED, OrgKind, Role
from medrisk.platform.users import create_user
from medrisk.store.models import Organisation, User


@dataclass
class DemoUser:
    username: str
    password: str
    role: str
    organisation: str
    totp_secret: str | None


TREE = [
    # (key, parent key, name, kind, region code)
    ("nat", None, "国家卫生健康委员会", OrgKind.NATIONAL, "100000"),
    ("zj", "nat", "浙江省卫生健康委员会", OrgKind.PROVINCIAL, "330000"),
    ("hz", "zj", "杭州市卫生健康委员会", OrgKind.MUNICIPAL, "330100"),
    ("hosp", "hz", "杭州市示范人民医院", OrgKind.HOSPITAL, "330100"),
    ("corp", "hz", "杭州示范互联网医院有限公司", OrgKind.INTERNET_HOSPITAL, "330100"),
    ("js", "nat", "江苏省卫生健康委员会", OrgKind.PROVINCIAL, "320000"),
    ("nj", "js", "南京示范健康科技有限公司", OrgKind.APP_COMPANY, "320100"),
]

USERS = [
    ("admin", "nat", Role.PLATFORM_ADMIN, "平台管理员"),
    ("nat.auditor", "nat", Role.AUDITOR, "国家审计员"),
    ("zj.regulator", "zj", Role.REGULATOR, "浙江省监管员"),
    ("hz.regulator", "hz", Role.REGULATOR, "杭州市监管员"),
    ("hz.reviewer", "hz", Role.REVIEWER, "杭州市审核员"),
    ("hosp.admin", "hosp", Role.INSTITUTION_ADMIN, "医院管理员"),
    ("hosp.builder", "hosp", Role.BUILDER, "医院开发者"),
    ("corp.admin", "corp", Role.INSTITUTION_ADMIN, "公司管理员"),
    ("corp.builder", "corp", Role.BUILDER, "公司开发者"),
    ("js.regulator", "js", Role.REGULATOR, "江苏省监管员"),
    ("nj.builder", "nj", Role.BUILDER, "南京公司开发者"),
]


def is_empty(ctx: Platform) -> bool:
    with ctx.db.session() as db:
        return db.scalar(select(Organisation.id).limit(1)) is None and db.scalar(select(User.id).limit(1)) is None


def seed(ctx: Platform) -> list[DemoUser]:
    """Create the demo tree and users; call only on an empty database."""
    out: list[DemoUser] = []
    with ctx.db.session() as db:
        orgs: dict[str, Organisation] = {}
        for key, parent, name, kind, region in TREE:
            if parent is None:
                org = create_root(db, name)
            else:
                org = Organisation(name=name, kind=kind.value, parent_id=orgs[parent].id, region_code=region)
                db.add(org)
                db.flush()
                org.path = f"{orgs[parent].path}{org.id}/"
            org.region_code = region
            orgs[key] = org
        db.flush()
        for username, org_key, role, display in USERS:
            user, password = create_user(
                ctx, db, None, org_id=orgs[org_key].id, username=username, role=role.value, display_name=display
            )
            secret = enrol_totp_directly(ctx, db, user) if role in TOTP_REQUIRED else None
            assert password is not None
            out.append(DemoUser(username, password, role.value, orgs[org_key].name, secret))
    return out


def format_credentials(users: list[DemoUser], base_url: str) -> str:
    lines = [
        "",
        "MedRisk demo data created. These credentials are shown ONCE (only hashes are stored):",
        f"  console/API: {base_url}   (API docs: {base_url}/docs)",
        "",
        f"  {'user':<14} {'role':<18} {'password':<22} {'TOTP secret (add to an authenticator app)'}",
    ]
    for u in users:
        lines.append(f"  {u.username:<14} {u.role:<18} {u.password:<22} {u.totp_secret or '-'}")
    lines += ["", "  organisations: " + " → ".join(name for _, _, name, _, _ in TREE[:4]) + " (and more)", ""]
    return "\n".join(lines)
