"""Channel monitoring (docs/channels.md): configured distribution channels, their crawls,
every listing seen over time, and the verdicts matched against filed apps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medrisk.store.models.base import Base, UTCDateTime, utcnow


class Channel(Base):
    """A configured source of listings (an F-Droid repository, a JSON feed, a folder of APKs)."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)  # the regulator watching it
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64))  # adapter name: fdroid | feed | folder | a plug-in's name
    url: Mapped[str] = mapped_column(Text)  # base URL or folder path
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # fingerprint, limits, rate ...
    interval_minutes: Mapped[int] = mapped_column(Integer, default=360)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # ETag, Last-Modified, index timestamp
    health: Mapped[str] = mapped_column(String(16), default="new")  # new | ok | failing | down
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_crawl_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_crawl_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChannelCrawl(Base):
    """One crawl of one channel: when, outcome, and what it changed."""

    __tablename__ = "channel_crawls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | ok | unchanged | failed
    error: Mapped[str | None] = mapped_column(Text)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ChannelListing(Base):
    """One package version (one APK) offered by one channel; updated as crawls see it again."""

    __tablename__ = "channel_listings"
    __table_args__ = (UniqueConstraint("channel_id", "listing_key", name="uq_channel_listings_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)  # matched filing's, else channel's
    listing_key: Mapped[str] = mapped_column(String(300))  # package@versionCode#apk-hash (or the channel's id)
    package: Mapped[str] = mapped_column(String(255), index=True)
    app_name: Mapped[str] = mapped_column(String(300), default="")
    version_name: Mapped[str | None] = mapped_column(String(128))
    version_code: Mapped[int | None] = mapped_column(BigInteger)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    developer: Mapped[str | None] = mapped_column(String(300))
    downloads: Mapped[int | None] = mapped_column(BigInteger)
    rating: Mapped[float | None] = mapped_column(Float)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    apk_url: Mapped[str | None] = mapped_column(Text)
    apk_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    apk_size: Mapped[int | None] = mapped_column(BigInteger)
    signer_sha256: Mapped[list[str]] = mapped_column(JSON, default=list)  # from the channel, then the APK
    icon_hash: Mapped[str | None] = mapped_column(String(16))  # 64-bit dHash, hex
    filing_id: Mapped[int | None] = mapped_column(ForeignKey("filings.id"), index=True)  # same package
    present: Mapped[bool] = mapped_column(Boolean, default=True)  # still offered in the last good crawl
    download_status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|failed|skipped
    download_error: Mapped[str | None] = mapped_column(Text)
    scan_grade: Mapped[str | None] = mapped_column(String(1))
    scan_score: Mapped[float | None] = mapped_column(Float)
    scan_findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # rule ids + severity
    scan_error: Mapped[str | None] = mapped_column(Text)
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ListingObservation(Base):
    """The listing as one crawl saw it: the record over time (downloads and rating move)."""

    __tablename__ = "channel_observations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("channel_listings.id"), index=True)
    crawl_id: Mapped[int] = mapped_column(ForeignKey("channel_crawls.id"), index=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    app_name: Mapped[str] = mapped_column(String(300), default="")
    developer: Mapped[str | None] = mapped_column(String(300))
    downloads: Mapped[int | None] = mapped_column(BigInteger)
    rating: Mapped[float | None] = mapped_column(Float)


class ChannelVerdict(Base):
    """What matching concluded about a listing; ``dedupe_key`` is unique, so a listing seen again
    in the next crawl refreshes ``last_seen_at`` instead of raising a second event."""

    __tablename__ = "channel_verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # tampered lookalike drift stale_vulnerable unfiled
    severity: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), index=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("channel_listings.id"), index=True)
    filing_id: Mapped[int | None] = mapped_column(ForeignKey("filings.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    score: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    event_id: Mapped[str | None] = mapped_column(String(200))  # the loop event it raised
    event_outcome: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | dismissed
    # a regulator's judgement that a candidate is no threat (e.g. a look-alike that is a licensed
    # partner); kept with who, when and why, and audited; the listing seen again raises nothing
    dismissed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dismissed_reason: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
