"""Roles and what each may do (least privilege), and which organisation kinds each belongs to."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    REGULATOR = "regulator"
    REVIEWER = "reviewer"
    INSTITUTION_ADMIN = "institution_admin"
    BUILDER = "builder"
    AUDITOR = "auditor"


class OrgKind(StrEnum):
    NATIONAL = "national"
    PROVINCIAL = "provincial"
    MUNICIPAL = "municipal"
    HOSPITAL = "hospital"
    INTERNET_HOSPITAL = "internet_hospital"
    APP_COMPANY = "app_company"


REGULATOR_KINDS = {OrgKind.NATIONAL, OrgKind.PROVINCIAL, OrgKind.MUNICIPAL}
INSTITUTION_KINDS = {OrgKind.HOSPITAL, OrgKind.INTERNET_HOSPITAL, OrgKind.APP_COMPANY}
LEVEL = {OrgKind.NATIONAL: 0, OrgKind.PROVINCIAL: 1, OrgKind.MUNICIPAL: 2}

# which roles a user of an organisation of each kind may hold
ROLES_FOR_KIND = {
    "regulator": {Role.PLATFORM_ADMIN, Role.REGULATOR, Role.REVIEWER, Role.AUDITOR},
    "institution": {Role.INSTITUTION_ADMIN, Role.BUILDER, Role.AUDITOR},
}

# roles whose users must use TOTP two-factor authentication
TOTP_REQUIRED = {Role.PLATFORM_ADMIN, Role.REGULATOR, Role.REVIEWER, Role.INSTITUTION_ADMIN}


class Perm(StrEnum):
    ORG_READ = "orgs:read"
    ORG_WRITE = "orgs:write"
    USER_READ = "users:read"
    USER_WRITE = "users:write"
    FILING_READ = "filings:read"
    FILING_WRITE = "filings:write"
    FILING_REVIEW = "filings:review"
    AUTHCODE_MANAGE = "authcodes:manage"
    VERSION_UPLOAD = "versions:write"
    SCAN_REQUEST = "scans:write"
    AUDIT_READ = "audit:read"
    EXPORT = "exports:read"
    CONFIG_WRITE = "config:write"
    TOKEN_MANAGE = "tokens:manage"  # noqa: S105 - a permission name
    CHANNEL_MANAGE = "channels:manage"


_ALL_READ = {Perm.ORG_READ, Perm.FILING_READ}
PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.PLATFORM_ADMIN: frozenset(Perm) - {Perm.FILING_WRITE, Perm.VERSION_UPLOAD, Perm.FILING_REVIEW},
    Role.REGULATOR: frozenset(
        _ALL_READ
        | {Perm.ORG_WRITE, Perm.USER_READ, Perm.USER_WRITE, Perm.FILING_REVIEW, Perm.AUTHCODE_MANAGE}
        | {Perm.SCAN_REQUEST, Perm.AUDIT_READ, Perm.EXPORT, Perm.TOKEN_MANAGE, Perm.CHANNEL_MANAGE}
    ),
    Role.REVIEWER: frozenset(_ALL_READ | {Perm.FILING_REVIEW, Perm.SCAN_REQUEST, Perm.EXPORT, Perm.TOKEN_MANAGE}),
    Role.INSTITUTION_ADMIN: frozenset(
        _ALL_READ
        | {Perm.USER_READ, Perm.USER_WRITE, Perm.FILING_WRITE, Perm.VERSION_UPLOAD, Perm.SCAN_REQUEST}
        | {Perm.EXPORT, Perm.TOKEN_MANAGE}
    ),
    Role.BUILDER: frozenset(_ALL_READ | {Perm.FILING_WRITE, Perm.VERSION_UPLOAD, Perm.SCAN_REQUEST, Perm.TOKEN_MANAGE}),
    Role.AUDITOR: frozenset(_ALL_READ | {Perm.USER_READ, Perm.AUDIT_READ, Perm.EXPORT}),
}

# roles each role may grant (further limited by the target organisation's kind and the grantor's subtree)
ASSIGNABLE: dict[Role, frozenset[Role]] = {
    Role.PLATFORM_ADMIN: frozenset(Role),
    Role.REGULATOR: frozenset({Role.REGULATOR, Role.REVIEWER, Role.AUDITOR, Role.INSTITUTION_ADMIN, Role.BUILDER}),
    Role.INSTITUTION_ADMIN: frozenset({Role.INSTITUTION_ADMIN, Role.BUILDER, Role.AUDITOR}),
}


def kind_class(kind: str) -> str:
    return "regulator" if kind in REGULATOR_KINDS else "institution"
