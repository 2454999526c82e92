"""A populated organisation tree with one user per role, and an API client that logs them in."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from medrisk.platform.auth import enrol_totp_directly
from medrisk.platform.context import Platform
from medrisk.platform.orgs import create_root
from medrisk.platform.roles import TOTP_REQUIRED, Role
from medrisk.platform.users import create_user
from medrisk.store.models import Organisation
from medrisk.web.app import create_app

PASSWORD = "Correct-Horse-Battery-42"  # noqa: S105 - test users only
_counter = itertools.count(1)

ORGS = [
    # key, parent, kind
    ("nat", None, "national"),
    ("zj", "nat", "provincial"),
    ("hz", "zj", "municipal"),
    ("hosp", "hz", "hospital"),
    ("corp", "hz", "internet_hospital"),
    ("js", "nat", "provincial"),
    ("nj", "js", "app_company"),
]
USERS = [
    ("admin", "nat", Role.PLATFORM_ADMIN),
    ("auditor", "nat", Role.AUDITOR),
    ("zj_reg", "zj", Role.REGULATOR),
    ("hz_reg", "hz", Role.REGULATOR),
    ("hz_rev", "hz", Role.REVIEWER),
    ("hosp_admin", "hosp", Role.INSTITUTION_ADMIN),
    ("hosp_builder", "hosp", Role.BUILDER),
    ("hosp_auditor", "hosp", Role.AUDITOR),
    ("corp_admin", "corp", Role.INSTITUTION_ADMIN),
    ("corp_builder", "corp", Role.BUILDER),
    ("js_reg", "js", Role.REGULATOR),
    ("nj_builder", "nj", Role.BUILDER),
]


@dataclass
class Account:
    username: str
    password: str
    role: Role
    org_id: int
    user_id: int
    totp_secret: str | None
    step_used: int = 0


@dataclass
class World:
    ctx: Platform
    client: TestClient
    tag: str
    orgs: dict[str, Organisation] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    _headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def org(self, key: str) -> int:
        return self.orgs[key].id

    def totp(self, key: str) -> str:
        """A fresh one-time code (each 30-second step is accepted once; drift of one step allowed).

        When this world has used up the steps the server accepts now (several logins of one user in
        a few seconds), it waits for the next 30-second step instead of sending a code the server
        must refuse.
        """
        import time

        acc = self.accounts[key]
        assert acc.totp_secret
        now_step = int(time.time()) // 30
        step = max(now_step - 1, acc.step_used + 1)
        if step > now_step + 1:
            time.sleep((step - 1) * 30 - time.time() + 0.05)
        acc.step_used = step
        return pyotp.TOTP(acc.totp_secret).at(step * 30)

    def login(self, key: str, **client_kw: Any) -> dict[str, str]:
        acc = self.accounts[key]
        body: dict[str, Any] = {"username": acc.username, "password": acc.password}
        for _attempt in range(3):
            if acc.totp_secret:
                body["totp_code"] = self.totp(key)
            r = self.client.post("/api/v1/auth/login", json=body)
            # Another world (another test module on the same database) may have used this user's
            # current step already: a one-time code is accepted once, so take the next step.
            if r.status_code == 200 or not acc.totp_secret:
                break
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def h(self, key: str) -> dict[str, str]:
        """Cached bearer headers of the user with this key."""
        if key not in self._headers:
            self._headers[key] = self.login(key)
        return self._headers[key]

    def filing_body(self, package: str | None = None, **over: Any) -> dict[str, Any]:
        body = {
            "name": f"互联网医院 App {self.tag}",
            "package": package or f"com.example.{self.tag}.app{next(_counter)}",
            "platform": "android",
            "app_type": "问诊挂号类",
            "current_version": "1.0.3",
            "privacy_policy_url": "https://example.org/privacy",
            "channels": [{"name": "应用宝", "url": "https://sj.qq.com/"}],
            "sdks": [{"name": "Tencent Bugly", "version": "4.1", "purpose": "crash reports"}],
            "contacts": [
                {"name": "张三", "phone": "+86 138 0000 0000", "email": "zhang@example.org", "role": "负责人"}
            ],
            "signing_certificates": [],
        }
        body.update(over)
        return body

    def file_app(self, who: str = "hosp_builder", **over: Any) -> dict[str, Any]:
        r = self.client.post("/api/v1/filings", json=self.filing_body(**over), headers=self.h(who))
        assert r.status_code == 201, r.text
        return r.json()

    def approve(self, filing_id: int, who: str = "hz_rev", **over: Any) -> dict[str, Any]:
        r = self.client.post(
            f"/api/v1/filings/{filing_id}/review",
            json={"decision": "approved", "reason": "符合要求", **over},
            headers=self.h(who),
        )
        assert r.status_code == 200, r.text
        return r.json()

    def upload(self, filing_id: int, apk: Path, who: str = "hosp_builder") -> Any:
        return self.client.post(
            f"/api/v1/filings/{filing_id}/versions",
            params={"file_name": apk.name},
            content=apk.read_bytes(),
            headers={**self.h(who), "Content-Type": "application/vnd.android.package-archive"},
        )


def build_world(ctx: Platform, client: TestClient | None = None) -> World:
    tag = f"w{next(_counter)}x{id(ctx) % 10000}"
    w = World(ctx, client or TestClient(create_app(ctx)), tag)
    with ctx.db.session() as db:
        for key, parent, kind in ORGS:
            if parent is None:
                org = create_root(db, f"国家卫生健康委员会-{tag}")
            else:
                org = Organisation(name=f"{key}-{tag}", kind=kind, parent_id=w.orgs[parent].id)
                db.add(org)
                db.flush()
                org.path = f"{w.orgs[parent].path}{org.id}/"
            w.orgs[key] = org
        db.flush()
        for key, org_key, role in USERS:
            username = f"{key}.{tag}"
            user, _ = create_user(
                ctx, db, None, org_id=w.orgs[org_key].id, username=username, role=role.value, password=PASSWORD
            )
            secret = enrol_totp_directly(ctx, db, user) if role in TOTP_REQUIRED else None
            w.accounts[key] = Account(username, PASSWORD, role, user.org_id, user.id, secret)
    return w
