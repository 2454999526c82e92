"""Demo data for the embedded mode: a regulatory tree, three institutions, a user per role and,
when the corpus of real APKs is present ($MEDRISK_CORPUS, default ../shared/corpus/apks), a few
filed apps whose releases are uploaded and scanned for real, so the console shows real grades.

Passwords and TOTP secrets are random, returned to the caller to print once on the
console (never logged); only their hashes and ciphertexts are stored.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from medrisk.platform.auth import enrol_totp_directly
from medrisk.platform.context import Platform
from medrisk.platform.orgs import create_root
from medrisk.platform.principal import Principal
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
    ("nat.regulator", "nat", Role.REGULATOR, "国家监管员"),
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
    seed_apps(ctx)
    return out


# (institution, builder, reviewer, corpus APK, app name, approve?)
APPS = [
    ("hosp", "hosp.builder", "hz.reviewer", "DiabetesIntegration-DMS-app-release.apk", "糖尿病健康管理", True),
    ("hosp", "hosp.builder", "hz.reviewer", "pivaa.apk", "掌上示范医院", True),
    ("corp", "corp.builder", "hz.reviewer", "exodus-blooddonation.apk", "无偿献血助手", True),
    ("corp", "corp.builder", "hz.reviewer", "AndroGoat.apk", "互联网医院在线问诊", False),  # left for review
    ("nj", "nj.builder", "js.regulator", "DamnVulnerableBank.apk", "南京健康云", True),
    ("nj", "nj.builder", "js.regulator", "com.politedroid_4.apk", "用药提醒", True),
]


def corpus_dir() -> Path:
    default = Path(__file__).resolve().parents[3].parent / "shared" / "corpus" / "apks"
    return Path(os.environ.get("MEDRISK_CORPUS") or default)


def _principal(db: object, username: str) -> Principal:
    from sqlalchemy.orm import Session

    assert isinstance(db, Session)
    user = db.scalar(select(User).where(User.username == username))
    assert user is not None
    org = db.get(Organisation, user.org_id)
    assert org is not None
    return Principal(user.id, user.username, Role(user.role), org.id, org.path, org.kind, address="demo")


class _Hold:
    """A job queue that keeps the jobs the seeding creates until the demo tree is complete, so
    they are sent once, after it (see the end of ``seed_apps``)."""

    def __init__(self) -> None:
        self.held: list[tuple[str, dict[str, object]]] = []

    def enqueue(self, name: str, **payload: object) -> None:
        self.held.append((name, payload))


def seed_apps(ctx: Platform, corpus: Path | None = None) -> int:
    """File, approve and upload the demo apps whose APKs are in the corpus.

    Their scans are new jobs of this process. With a backend whose start re-sends unfinished scans
    (thread, inline) they are left queued for that re-send (``service.start_background`` →
    ``requeue_unfinished``; sending them here too would scan twice). Celery mode does not re-send on
    start (N web replicas), so they are sent here through the active backend, like any upload."""
    from medrisk.platform import filings, scanning, versions

    corpus = corpus or corpus_dir()
    if not corpus.is_dir():
        print(f"medrisk: demo apps skipped: no APK corpus at {corpus} (set MEDRISK_CORPUS)", file=sys.stderr)
        return 0
    uploaded = 0
    hold = _Hold()
    for _org, builder, reviewer, apk_name, app_name, approve in APPS:
        path = corpus / apk_name
        if not path.is_file():
            continue
        data = path.read_bytes()
        facts = versions.inspect_package(data)
        with ctx.db.session() as db:
            b = _principal(db, builder)
            f = filings.create_filing(
                ctx,
                db,
                b,
                {
                    "name": app_name,
                    "package": facts.package,
                    "platform": "android",
                    "app_type": "问诊挂号类",
                    "current_version": facts.version_name or "1.0",
                    "privacy_policy_url": "https://example.org/privacy",
                    "channels": [{"name": "应用宝", "url": "https://sj.qq.com/"}],
                    "sdks": [],
                    "contacts": [],
                    "signing_certificates": facts.certificates,
                },
            )
            fid = f.id
            if approve:
                filings.review(ctx, db, _principal(db, reviewer), fid, decision="approved", reason="演示数据：材料齐全")
        if approve:
            blob = ctx.blobs.put_chunks([data], len(data) + 1)
            jobs, ctx.jobs = ctx.jobs, hold  # type: ignore[assignment]
            try:
                versions.accept_upload(ctx, b, fid, blob, apk_name)  # a real scan, queued
            finally:
                ctx.jobs = jobs
            uploaded += 1
    if ctx.jobs is not None and not scanning.resent_on_start(ctx.jobs):
        for name, payload in hold.held:
            ctx.jobs.enqueue(name, **payload)  # type: ignore[arg-type]
    print(f"medrisk: demo apps filed; {uploaded} corpus releases queued for scanning", file=sys.stderr)
    return uploaded


def format_credentials(users: list[DemoUser], base_url: str) -> str:
    lines = [
        "",
        "MedRisk demo data created. These credentials are shown ONCE (only hashes are stored):",
        f"  console/API: {base_url}   (API docs: {base_url}/docs)",
        f"  web console: {base_url}/console/  (regulators: nat.regulator, zj.regulator, hz.regulator with a TOTP code;"
        " builders: hosp.builder, corp.builder, nj.builder)",
        "",
        f"  {'user':<14} {'role':<18} {'password':<22} {'TOTP secret (add to an authenticator app)'}",
    ]
    for u in users:
        lines.append(f"  {u.username:<14} {u.role:<18} {u.password:<22} {u.totp_secret or '-'}")
    lines += ["", "  organisations: " + " → ".join(name for _, _, name, _, _ in TREE[:4]) + " (and more)", ""]
    return "\n".join(lines)
