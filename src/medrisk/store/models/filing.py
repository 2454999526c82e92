"""Filings (备案), their reviewed revisions and the SM2-signed authorisation codes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medrisk.store.models.base import Base, UTCDateTime, utcnow


class Filing(Base):
    """The current state of one app's filing; every submission is also kept as a FilingRevision."""

    __tablename__ = "filings"
    __table_args__ = (UniqueConstraint("platform", "package", name="uq_filings_platform_package"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    package: Mapped[str] = mapped_column(String(255))
    platform: Mapped[str] = mapped_column(String(32))
    app_type: Mapped[str] = mapped_column(String(64))
    current_version: Mapped[str] = mapped_column(String(64))
    privacy_policy_url: Mapped[str] = mapped_column(Text)
    # the uploaded privacy-policy file (HTML or text), a blob by SHA-256; media type with its charset
    privacy_policy_sha256: Mapped[str | None] = mapped_column(String(64))
    privacy_policy_size: Mapped[int | None] = mapped_column(Integer)
    privacy_policy_media_type: Mapped[str | None] = mapped_column(String(64))
    privacy_policy_uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    channels: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sdks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    contacts_enc: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # values are ciphertexts
    signing_certificates: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | approved | rejected
    revision: Mapped[int] = mapped_column(Integer, default=1)
    approved_revision: Mapped[int | None] = mapped_column(Integer)
    approved_version_range: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FilingRevision(Base):
    __tablename__ = "filing_revisions"
    __table_args__ = (UniqueConstraint("filing_id", "revision", name="uq_filing_revisions_filing_revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filing_id: Mapped[int] = mapped_column(ForeignKey("filings.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # snapshot as submitted (contacts encrypted)
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decision: Mapped[str | None] = mapped_column(String(16))  # approved | rejected
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuthCode(Base):
    __tablename__ = "authcodes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the token's "jti"
    filing_id: Mapped[int] = mapped_column(ForeignKey("filings.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoke_reason: Mapped[str | None] = mapped_column(Text)
