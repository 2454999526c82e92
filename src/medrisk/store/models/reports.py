"""Console and reports (docs/console.md, docs/reports.md): the posture index that keeps the
regulator's overview fast, signed reports, and report subscriptions.

The posture index is derived data, rebuilt from ``scans`` by ``medrisk.reports.posture``:
the latest finished scan of each filing (grade, score), the rules that fired in it, and a
monthly count of graded scans per institution. Reading 20,000 filings' JSON results on
every page view would take seconds; these small tables answer the overview with a few
grouped queries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medrisk.store.models.base import Base, UTCDateTime, utcnow


class PostureApp(Base):
    """The latest finished scan of one filing (one row per filing that has one)."""

    __tablename__ = "posture_apps"

    filing_id: Mapped[int] = mapped_column(ForeignKey("filings.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    scan_id: Mapped[int] = mapped_column(Integer)
    version_id: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(1), index=True)
    score: Mapped[float] = mapped_column(Float)
    findings: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PostureRuleHit(Base):
    """A rule that fired (open, not suppressed) in the latest scan of a filing."""

    __tablename__ = "posture_rule_hits"
    __table_args__ = (Index("ix_posture_rule_hits_org_rule", "org_id", "rule_id"),)

    filing_id: Mapped[int] = mapped_column(ForeignKey("filings.id"), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    severity: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(48))


class PostureMonthly(Base):
    """Graded scans per institution, month (YYYY-MM, UTC) and grade: the trend lines."""

    __tablename__ = "posture_monthly"

    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    grade: Mapped[str] = mapped_column(String(1), primary_key=True)
    scans: Mapped[int] = mapped_column(Integer, default=0)


class PostureIndexState(Base):
    """One row: every finished scan with an id up to ``watermark`` is in the index."""

    __tablename__ = "posture_index_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    watermark: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Report(Base):
    """A rendered, signed report: the file is a blob; the signature is detached (DER, SM2-with-SM3).

    A report is rendered once and kept, so every download of it is the same bytes and the
    same signature (a PDF carries its creation time, so re-rendering would change the digest).
    """

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_kind_subject", "kind", "subject", "lang", "fmt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # scan | periodic
    subject: Mapped[str] = mapped_column(String(64))  # "scan:<id>" | "org:<id>:<period>"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    lang: Mapped[str] = mapped_column(String(8))
    fmt: Mapped[str] = mapped_column(String(8))  # pdf | html
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blob_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sm3: Mapped[str] = mapped_column(String(64))  # SM3 of the file: what the signature covers
    signature: Mapped[str] = mapped_column(Text)  # base64 DER SM2 signature over the file
    key_id: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReportSubscription(Base):
    """A regulator's standing order for the periodic statistical report of its jurisdiction,
    delivered to one of its notification endpoints (loop/notify.py)."""

    __tablename__ = "report_subscriptions"
    __table_args__ = (UniqueConstraint("endpoint_id", "period", name="uq_report_subscriptions_endpoint_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("notify_endpoints.id"))
    period: Mapped[str] = mapped_column(String(16), default="monthly")
    lang: Mapped[str] = mapped_column(String(8), default="zh")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReportDelivery(Base):
    """One periodic report sent (or tried) to one subscription; retried until sent."""

    __tablename__ = "report_deliveries"
    __table_args__ = (UniqueConstraint("report_id", "subscription_id", name="uq_report_deliveries_report_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("report_subscriptions.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
