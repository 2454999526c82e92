"""Business trails of internet hospitals (docs/trails.md): registered senders and their SM2 keys,
the append-only SM3-chained ledger per institution with signed receipts, pseudonymised
identities, the per-prescription / per-consultation state the rules need, and violations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medrisk.store.models.base import Base, UTCDateTime, utcnow


class TrailSource(Base):
    """A system of an institution that sends trails, with the SM2 public key its batches are signed with.

    ``filing_id`` is the filed app (or platform) the trails come from: violations become
    closed-loop events of that filing."""

    __tablename__ = "trail_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    filing_id: Mapped[int | None] = mapped_column(ForeignKey("filings.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str] = mapped_column(String(64), unique=True)  # SM3 of the SubjectPublicKeyInfo
    public_key_pem: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TrailHead(Base):
    """One row per institution: the last sequence number and hash; updating it first serialises appends."""

    __tablename__ = "trail_heads"

    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class TrailBatch(Base):
    """One signed delivery: the sender's SM2 signature over its events' digests, and our signed receipt."""

    __tablename__ = "trail_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("trail_sources.id"), index=True)
    via: Mapped[str] = mapped_column(String(16))  # api | import
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    count: Mapped[int] = mapped_column(Integer)  # events sent (duplicates included)
    accepted: Mapped[int] = mapped_column(Integer)
    digests: Mapped[list[str]] = mapped_column(JSON, default=list)  # SM3 of each event as sent, in order
    sender_key_id: Mapped[str] = mapped_column(String(64))
    sender_signature: Mapped[str] = mapped_column(Text)  # base64 DER SM2 over the batch statement
    file_sm3: Mapped[str | None] = mapped_column(String(64))  # imports: the sender signed this file, not a statement
    first_seq: Mapped[int | None] = mapped_column(Integer)
    last_seq: Mapped[int | None] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))  # the chain's hash after this batch
    receipt_key_id: Mapped[str] = mapped_column(String(64))
    receipt_signature: Mapped[str] = mapped_column(Text)  # base64 DER SM2 of the platform over the receipt


class TrailEvent(Base):
    """One trail event in the ledger (append-only). ``payload`` is the event as sent with every personal
    identifier replaced by its pseudonym; ``hash`` = SM3(prev_hash || canonical content)."""

    __tablename__ = "trail_events"
    __table_args__ = (
        UniqueConstraint("org_id", "seq", name="uq_trail_events_org_seq"),
        UniqueConstraint("org_id", "event_id", name="uq_trail_events_org_event"),
        Index("ix_trail_events_org_prescription", "org_id", "prescription_id"),
        Index("ix_trail_events_org_consultation", "org_id", "consultation_id"),
        Index("ix_trail_events_org_at", "org_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    seq: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    prescription_id: Mapped[str | None] = mapped_column(String(64))
    consultation_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    batch_id: Mapped[int] = mapped_column(Integer, index=True)
    batch_index: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class TrailIdentity(Base):
    """A personal identifier behind a pseudonym, SM4-GCM encrypted; read only for evidence views."""

    __tablename__ = "trail_identities"
    __table_args__ = (UniqueConstraint("org_id", "kind", "ref", name="uq_trail_identities_org_kind_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(16))  # patient | staff
    ref: Mapped[str] = mapped_column(String(40))
    value_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrailCase(Base):
    """The state so far of one prescription, consultation or staff member (what the rules look at)."""

    __tablename__ = "trail_cases"
    __table_args__ = (
        UniqueConstraint("org_id", "kind", "key", name="uq_trail_cases_org_kind_key"),
        Index("ix_trail_cases_window", "kind", "window_done", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(16))  # prescription | consultation | staff
    key: Mapped[str] = mapped_column(String(64))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    window_done: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrailViolation(Base):
    """A trail rule that fired; ``trigger`` (the event's seq, or ``window``) makes detection idempotent."""

    __tablename__ = "trail_violations"
    __table_args__ = (
        UniqueConstraint("org_id", "rule_id", "case_kind", "case_key", "trigger", name="uq_trail_violations_once"),
        Index("ix_trail_violations_org_detected", "org_id", "detected_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    rule_id: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    case_kind: Mapped[str] = mapped_column(String(16))
    case_key: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(24))
    event_seq: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # business time of the violation
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filing_id: Mapped[int | None] = mapped_column(ForeignKey("filings.id"))
    loop_event_id: Mapped[str | None] = mapped_column(String(200))
