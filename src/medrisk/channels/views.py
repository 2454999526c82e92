"""Read views for the API, CLI and console: channels and their health, listings, verdicts, and
per filed app where it is published."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medrisk.channels.verdicts import KINDS
from medrisk.platform.errors import Invalid
from medrisk.platform.principal import Principal
from medrisk.platform.roles import Perm
from medrisk.platform.scope import get_visible, scoped
from medrisk.store.models import (
    Channel,
    ChannelCrawl,
    ChannelListing,
    ChannelVerdict,
    Filing,
)

if TYPE_CHECKING:
    from medrisk.platform.context import Platform

log = logging.getLogger(__name__)


class Views:
    """Mixed into ``ChannelService``."""

    ctx: Platform
    now: Callable[[], datetime]

    def channels(self, db: Session, actor: Principal) -> list[dict[str, Any]]:
        actor.require(Perm.FILING_READ)
        rows = list(db.scalars(scoped(select(Channel).order_by(Channel.id), actor, Channel)))
        return [self.channel_view(db, actor, ch.id, crawls=1) for ch in rows]

    def channel_view(self, db: Session, actor: Principal, channel_id: int, crawls: int = 10) -> dict[str, Any]:
        ch = get_visible(db, actor, Channel, channel_id, "channel")
        listed = db.execute(
            select(func.count(ChannelListing.id), func.count(func.distinct(ChannelListing.package))).where(
                ChannelListing.channel_id == ch.id, ChannelListing.present.is_(True)
            )
        ).one()
        by_kind = dict(
            db.execute(
                scoped(
                    select(ChannelVerdict.kind, func.count(ChannelVerdict.id))
                    .where(ChannelVerdict.channel_id == ch.id, ChannelVerdict.status == "open")
                    .group_by(ChannelVerdict.kind),
                    actor,
                    ChannelVerdict,
                )
            ).all()
        )
        recent = list(
            db.scalars(
                select(ChannelCrawl)
                .where(ChannelCrawl.channel_id == ch.id)
                .order_by(ChannelCrawl.id.desc())
                .limit(crawls)
            )
        )
        return {
            "id": ch.id,
            "name": ch.name,
            "kind": ch.kind,
            "url": ch.url,
            "org_id": ch.org_id,
            "enabled": ch.enabled,
            "interval_minutes": ch.interval_minutes,
            "health": ch.health,
            "consecutive_failures": ch.consecutive_failures,
            "last_error": ch.last_error,
            "last_crawl_at": _iso(ch.last_crawl_at),
            "last_success_at": _iso(ch.last_success_at),
            "next_crawl_at": _iso(ch.next_crawl_at),
            "fingerprint": (ch.state or {}).get("fingerprint") or (ch.config or {}).get("fingerprint"),
            "counts": {"listings": listed[0], "packages": listed[1], "verdicts": by_kind},
            "crawls": [
                {
                    "id": c.id,
                    "status": c.status,
                    "started_at": _iso(c.started_at),
                    "finished_at": _iso(c.finished_at),
                    "error": c.error,
                    "counts": c.counts,
                }
                for c in recent
            ],
        }

    def listings(
        self,
        db: Session,
        actor: Principal,
        *,
        channel_id: int | None = None,
        package: str | None = None,
        filing_id: int | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        actor.require(Perm.FILING_READ)
        stmt = select(ChannelListing, Channel.name).join(Channel, Channel.id == ChannelListing.channel_id)
        if channel_id is not None:
            stmt = stmt.where(ChannelListing.channel_id == channel_id)
        if package:
            stmt = stmt.where(ChannelListing.package == package)
        if filing_id is not None:
            stmt = stmt.where(ChannelListing.filing_id == filing_id)
        stmt = scoped(stmt, actor, ChannelListing).order_by(ChannelListing.id).limit(limit).offset(offset)
        return [listing_out(r, name) for r, name in db.execute(stmt)]

    def verdicts(
        self,
        db: Session,
        actor: Principal,
        *,
        kind: str | None = None,
        filing_id: int | None = None,
        channel_id: int | None = None,
        status: str | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        actor.require(Perm.FILING_READ)
        if status is not None and status not in ("open", "dismissed"):
            raise Invalid("status must be open or dismissed", field="status")
        if kind is not None and kind not in KINDS:
            raise Invalid(f"kind must be one of {', '.join(KINDS)}", field="kind")
        stmt = (
            select(ChannelVerdict, ChannelListing, Channel.name)
            .join(ChannelListing, ChannelListing.id == ChannelVerdict.listing_id)
            .join(Channel, Channel.id == ChannelVerdict.channel_id)
        )
        if kind:
            stmt = stmt.where(ChannelVerdict.kind == kind)
        if filing_id is not None:
            stmt = stmt.where(ChannelVerdict.filing_id == filing_id)
        if channel_id is not None:
            stmt = stmt.where(ChannelVerdict.channel_id == channel_id)
        if status is not None:
            stmt = stmt.where(ChannelVerdict.status == status)
        stmt = scoped(stmt, actor, ChannelVerdict).order_by(ChannelVerdict.id).limit(limit).offset(offset)
        return [verdict_out(v, lst, name) for v, lst, name in db.execute(stmt)]

    def app_view(self, db: Session, actor: Principal, filing_id: int) -> dict[str, Any]:
        """Per filed app: where it is published, versions per channel, drift and look-alikes."""
        f = get_visible(db, actor, Filing, filing_id, "filing")
        listings = self.listings(db, actor, filing_id=f.id, limit=10_000)
        per_channel: dict[str, dict[str, Any]] = {}
        for item in listings:
            c = per_channel.setdefault(item["channel"], {"channel_id": item["channel_id"], "versions": []})
            c["versions"].append(
                {
                    k: item[k]
                    for k in (
                        "id",
                        "version_name",
                        "version_code",
                        "present",
                        "signer_sha256",
                        "scan_grade",
                        "scan_score",
                        "released_at",
                        "downloads",
                    )
                }
            )
        verdicts = self.verdicts(db, actor, filing_id=f.id, limit=10_000)
        return {
            "filing_id": f.id,
            "name": f.name,
            "package": f.package,
            "filed_version": f.current_version,
            "channels": per_channel,
            "drift": [v for v in verdicts if v["kind"] == "drift"],
            "tampered": [v for v in verdicts if v["kind"] == "tampered"],
            "lookalikes": [v for v in verdicts if v["kind"] == "lookalike"],
            "stale_vulnerable": [v for v in verdicts if v["kind"] == "stale_vulnerable"],
        }


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def listing_out(r: ChannelListing, channel: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "channel_id": r.channel_id,
        "channel": channel,
        "key": r.listing_key,
        "package": r.package,
        "app_name": r.app_name,
        "version_name": r.version_name,
        "version_code": r.version_code,
        "released_at": _iso(r.released_at),
        "developer": r.developer,
        "downloads": r.downloads,
        "rating": r.rating,
        "categories": r.categories,
        "apk_sha256": r.apk_sha256,
        "apk_size": r.apk_size,
        "signer_sha256": r.signer_sha256,
        "icon_hash": r.icon_hash,
        "filing_id": r.filing_id,
        "present": r.present,
        "download_status": r.download_status,
        "download_error": r.download_error,
        "scan_grade": r.scan_grade,
        "scan_score": r.scan_score,
        "scan_findings": r.scan_findings,
        "scan_error": r.scan_error,
        "first_seen_at": _iso(r.first_seen_at),
        "last_seen_at": _iso(r.last_seen_at),
    }


def verdict_out(v: ChannelVerdict, lst: ChannelListing, channel: str) -> dict[str, Any]:
    return {
        "id": v.id,
        "kind": v.kind,
        "severity": v.severity,
        "channel_id": v.channel_id,
        "channel": channel,
        "listing_id": v.listing_id,
        "package": lst.package,
        "app_name": lst.app_name,
        "version_name": lst.version_name,
        "filing_id": v.filing_id,
        "score": v.score,
        "threshold": v.threshold,
        "evidence": v.evidence,
        "event_id": v.event_id,
        "event_outcome": v.event_outcome,
        "status": v.status,
        "dismissed": (
            {"by": v.dismissed_by, "at": _iso(v.dismissed_at), "reason": v.dismissed_reason}
            if v.status == "dismissed"
            else None
        ),
        "first_seen_at": _iso(v.first_seen_at),
        "last_seen_at": _iso(v.last_seen_at),
    }
