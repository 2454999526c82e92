"""Request and response bodies. Constraints here produce the 422 answers that name the field."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from medrisk.platform.roles import OrgKind, Perm, Role
from medrisk.platform.settings import SPECS

MAX_ID = 2_147_483_647
IdField = Annotated[int, Field(ge=1, le=MAX_ID)]
PHONE = r"^\+?[0-9][0-9 \-]{4,19}$"
EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,255}$"
PACKAGE = r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$"
SHA256 = r"^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$"
URL = r"^https?://[^\s]{1,2000}$"


def _check_text(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
    elif isinstance(value, list):
        for v in value:
            _check_text(v)
    return value


class In(BaseModel):
    """Base of request bodies: unknown fields are refused, text must be storable anywhere."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return _check_text(v)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    code: str
    message: str
    field: str | None = None
    detail: list[FieldError] = []


# --- auth -----------------------------------------------------------------------------------


class LoginIn(In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    totp_code: str | None = Field(default=None, pattern=r"^\d{6}$")


class LoginOut(Out):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type
    expires_at: datetime
    totp_enrolment_required: bool


class PasswordIn(In):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class TotpEnrolOut(Out):
    secret: str
    otpauth_uri: str


class TotpConfirmIn(In):
    code: str = Field(pattern=r"^\d{6}$")


class SessionOut(Out):
    id: int
    kind: str
    address: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool = False


class TokenIn(In):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Perm] = Field(min_length=1, max_length=len(Perm))
    expires_in_days: int | None = Field(default=90, ge=1, le=365)


class TokenOut(Out):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="shown once; store it now")


# --- organisations and users ------------------------------------------------------------------


class OrgIn(In):
    name: str = Field(min_length=1, max_length=200)
    kind: OrgKind
    parent_id: IdField | None = None
    region_code: str | None = Field(default=None, pattern=r"^\d{6}$")


class OrgOut(Out):
    id: int
    parent_id: int | None
    name: str
    kind: str
    region_code: str | None
    path: str


class UserIn(In):
    org_id: IdField
    username: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
    role: Role
    display_name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, min_length=1, max_length=256)
    phone: str | None = Field(default=None, pattern=PHONE)


class UserPatch(In):
    role: Role | None = None
    disabled: bool | None = None
    display_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, pattern=PHONE)


class UserOut(Out):
    id: int
    org_id: int
    username: str
    display_name: str
    role: str
    phone: str | None = None
    totp_enabled: bool
    disabled: bool
    locked: bool = False
    created_at: datetime


class MeOut(UserOut):
    organisation: OrgOut
    permissions: list[str]
    session_kind: str | None = None


class NewUserOut(UserOut):
    initial_password: str | None = Field(default=None, description="generated password, shown once")


class PasswordResetOut(Out):
    temporary_password: str


# --- filings ----------------------------------------------------------------------------------


class Platform_(StrEnum):
    ANDROID = "android"
    HARMONYOS = "harmonyos"
    IOS = "ios"


class ChannelIn(In):
    name: str = Field(min_length=1, max_length=100)
    url: str | None = Field(default=None, pattern=URL)


class SdkIn(In):
    name: str = Field(min_length=1, max_length=200)
    version: str | None = Field(default=None, max_length=64)
    purpose: str | None = Field(default=None, max_length=500)


class ContactIn(In):
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(pattern=PHONE)
    email: str | None = Field(default=None, pattern=EMAIL)
    role: str = Field(default="", max_length=50)


class FilingIn(In):
    org_id: IdField | None = Field(default=None, description="the institution; defaults to the caller's")
    name: str = Field(min_length=1, max_length=200)
    package: str = Field(max_length=255, pattern=PACKAGE)
    platform: Platform_ = Platform_.ANDROID
    app_type: str = Field(min_length=1, max_length=64, description="type from the necessary-information list")
    current_version: str = Field(min_length=1, max_length=64)
    privacy_policy_url: str = Field(pattern=URL)
    channels: list[ChannelIn] = Field(default=[], max_length=50)
    sdks: list[SdkIn] = Field(default=[], max_length=200)
    contacts: list[ContactIn] = Field(min_length=1, max_length=10)
    signing_certificates: list[Annotated[str, Field(pattern=SHA256)]] = Field(default=[], max_length=10)


class FilingPatch(In):
    package: str | None = Field(default=None, max_length=255, pattern=PACKAGE)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    platform: Platform_ | None = None
    app_type: str | None = Field(default=None, min_length=1, max_length=64)
    current_version: str | None = Field(default=None, min_length=1, max_length=64)
    privacy_policy_url: str | None = Field(default=None, pattern=URL)
    channels: list[ChannelIn] | None = Field(default=None, max_length=50)
    sdks: list[SdkIn] | None = Field(default=None, max_length=200)
    contacts: list[ContactIn] | None = Field(default=None, min_length=1, max_length=10)
    signing_certificates: list[Annotated[str, Field(pattern=SHA256)]] | None = Field(default=None, max_length=10)


class ContactOut(Out):
    name: str
    phone: str
    email: str | None
    role: str


class PrivacyPolicyFileOut(BaseModel):
    sha256: str
    size: int
    media_type: str
    uploaded_at: datetime


class FilingOut(Out):
    id: int
    org_id: int
    name: str
    package: str
    platform: str
    app_type: str
    current_version: str
    privacy_policy_url: str
    privacy_policy_file: PrivacyPolicyFileOut | None = Field(
        None, description="the uploaded privacy-policy file (PUT /filings/{id}/privacy-policy), if any"
    )
    channels: list[dict[str, Any]]
    sdks: list[dict[str, Any]]
    contacts: list[ContactOut]
    signing_certificates: list[str]
    status: str
    revision: int
    approved_revision: int | None
    approved_version_range: str | None
    created_at: datetime
    updated_at: datetime


class RevisionOut(Out):
    revision: int
    submitted_by: int | None
    submitted_at: datetime
    decision: str | None
    reason: str | None
    decided_by: int | None
    decided_at: datetime | None
    fields: list[str]


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class ReviewIn(In):
    decision: Decision
    reason: str = Field(default="", max_length=2000)
    version_range: str | None = Field(default=None, max_length=64)
    valid_days: int | None = Field(default=None, ge=1, le=3650)


class AuthCodeOut(Out):
    id: str
    filing_id: int
    revision: int
    code: str
    payload: dict[str, Any]
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None


class ReissueIn(In):
    valid_days: int | None = Field(default=None, ge=1, le=3650)


class RevokeIn(In):
    reason: str = Field(min_length=1, max_length=500)


class VerifyIn(In):
    code: str = Field(min_length=1, max_length=8192)


class VerifyOut(Out):
    valid: bool
    reason: str
    payload: dict[str, Any] | None
    header: dict[str, Any] | None
    checks: dict[str, bool]


# --- versions and scans -----------------------------------------------------------------------


class VersionOut(Out):
    id: int
    filing_id: int
    org_id: int
    sha256: str
    size: int
    file_name: str
    package: str
    version_name: str | None
    version_code: int | None
    certificates: list[str]
    in_approved_range: bool | None
    created_at: datetime
    latest_scan_id: int | None = None


class ScanOut(Out):
    id: int
    version_id: int
    filing_id: int
    status: str
    rules_version: str | None
    score: float | None
    grade: str | None
    result_sm3: str | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


# --- audit, alerts, settings ------------------------------------------------------------------


class AuditEntryOut(Out):
    seq: int
    ts: datetime
    actor_id: int | None
    actor: str
    org_id: int | None
    action: str
    target: str
    address: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditProblemOut(Out):
    seq: int
    kind: str
    message: str


class AuditVerifyOut(Out):
    ok: bool
    entries: int
    checkpoints: int
    first_seq: int | None
    last_seq: int | None
    first_problem: AuditProblemOut | None
    problems: list[AuditProblemOut]


class AlertOut(Out):
    id: int
    kind: str
    subject: str
    org_id: int | None
    details: dict[str, Any]
    created_at: datetime


# generated from the one list of settings, so bounds cannot drift apart
SettingsPatch = create_model(  # type: ignore[call-overload]
    "SettingsPatch",
    __base__=In,
    **{k: (int | None, Field(default=None, ge=s.minimum, le=s.maximum, description=s.help)) for k, s in SPECS.items()},
)
SettingsOut = create_model(  # type: ignore[call-overload]
    "SettingsOut", __base__=Out, **{k: (int, Field(description=s.help)) for k, s in SPECS.items()}
)


class PublicKeyOut(Out):
    kid: str
    algorithm: str
    uid: str
    public_key_pem: str
