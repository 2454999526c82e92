"""Running channel monitoring against the store: configure channels, crawl them, record every
listing over time, download and scan new APKs, match, and raise closed-loop events.

One crawl (``ChannelService.crawl``), in order:
1. the adapter fetches the listings (conditional request; ``None`` = nothing changed);
   a failure keeps the channel's last good listings and state, counts a consecutive failure
   and, at ``alert_after`` (3) in a row, marks the channel ``down`` and raises an alert;
2. listings are upserted by key; an observation row is written when a listing is first seen
   or its name, developer, downloads or rating moved; listings no longer offered get
   ``present = false`` (kept, with their history);
3. new APKs are downloaded (size limit, resume, hash check), kept in the blob store, identified
   from their own bytes and scanned like an upload (at most ``max_downloads`` per crawl; the
   rest wait for the next crawl; an APK already scanned under another listing is not fetched
   again);
4. new and changed listings (all of them when the filings changed) are matched
   (``channels.match``); a verdict is unique by listing, kind and filing, so a listing seen
   again refreshes ``last_seen_at`` and raises no second event.

This module holds configuration and the crawl's control flow; steps 2-3 live in
``channels.inventory``, step 4 in ``channels.verdicts``, the read views in ``channels.views``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from medrisk.channels.adapters import adapter_class
from medrisk.channels.fetch import HttpClient
from medrisk.channels.inventory import Inventory
from medrisk.channels.model import ChannelError
from medrisk.channels.verdicts import Verdicts
from medrisk.channels.views import Views
from medrisk.platform import audit
from medrisk.platform.errors import Conflict, Invalid
from medrisk.platform.principal import SYSTEM, Principal
from medrisk.platform.roles import Perm
from medrisk.platform.scope import get_visible
from medrisk.store.models import (
    Alert,
    Channel,
    ChannelCrawl,
    ChannelVerdict,
    Organisation,
    utcnow,
)

if TYPE_CHECKING:
    from medrisk.platform.context import Platform

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "download": True,  # fetch and scan new APKs
    "max_downloads": 50,  # per crawl
    "max_apk_mb": 200,
    "rate_per_second": 2.0,
    "retries": 3,
    "backoff_seconds": 1.0,
    "timeout_seconds": 30.0,
    "alert_after": 3,  # consecutive failed crawls before the channel is "down" and an alert is raised
}


@dataclass
class CrawlReport:
    channel_id: int
    crawl_id: int
    status: str  # ok | unchanged | failed
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "crawl_id": self.crawl_id,
            "status": self.status,
            "error": self.error,
            "counts": self.counts,
        }


class ChannelService(Inventory, Verdicts, Views):
    def __init__(self, ctx: Platform) -> None:
        self.ctx = ctx
        self._icon_cache: dict[str, str | None] = {}  # version sha256 -> dHash of its icon
        self._locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.now = utcnow  # replaced by tests that move time
        self.ticker: Any = None  # the embedded scheduler's Periodic (platform.service.start_background)

    # --- configuration ----------------------------------------------------------------------

    def add(
        self,
        db: Session,
        actor: Principal,
        *,
        name: str,
        kind: str,
        url: str,
        config: dict[str, Any] | None = None,
        interval_minutes: int = 360,
        org_id: int | None = None,
    ) -> Channel:
        actor.require(Perm.CHANNEL_MANAGE)
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise Invalid("a channel needs a name of 1 to 200 characters", field="name")
        try:
            adapter_class(kind)
        except ChannelError as exc:
            raise Invalid(str(exc), field="kind") from None
        if not url or len(url) > 2000:
            raise Invalid("a channel needs a URL or folder path", field="url")
        if kind in ("fdroid", "feed") and not url.startswith(("http://", "https://")):
            raise Invalid(f"a {kind} channel needs an http(s) URL", field="url")
        if not 1 <= interval_minutes <= 7 * 24 * 60:
            raise Invalid("interval_minutes must be between 1 and 10080", field="interval_minutes")
        cfg = dict(config or {})
        unknown = set(cfg) - set(DEFAULTS) - {"fingerprint", "index", "app_type"}
        if unknown:
            raise Invalid(f"unknown channel setting(s): {', '.join(sorted(unknown))}", field="config")
        owner = org_id if org_id is not None else actor.org_id
        if not owner:  # the platform operator (CLI): the national root watches it
            owner = db.scalar(select(Organisation.id).where(Organisation.parent_id.is_(None)).order_by(Organisation.id))
            if owner is None:
                raise Invalid("create the organisation tree first (medrisk org add)", field="org_id")
        get_visible(db, actor, Organisation, owner, "organisation")
        if db.scalar(select(Channel.id).where(Channel.name == name)) is not None:
            raise Conflict(f"a channel named {name!r} exists")
        ch = Channel(
            org_id=owner,
            name=name,
            kind=kind,
            url=url,
            config=cfg,
            interval_minutes=interval_minutes,
            state={},
            health="new",
            created_by=actor.user_id or None,
            next_crawl_at=self.now(),
        )
        db.add(ch)
        db.flush()
        audit.record(
            self.ctx.keys,
            db,
            "channel.add",
            actor=actor,
            target=f"channel:{ch.id}",
            org_id=owner,
            details={"name": name, "kind": kind, "url": url, "interval_minutes": interval_minutes},
        )
        return ch

    def set_enabled(self, db: Session, actor: Principal, channel_id: int, enabled: bool) -> Channel:
        actor.require(Perm.CHANNEL_MANAGE)
        ch = get_visible(db, actor, Channel, channel_id, "channel")
        ch.enabled = enabled
        audit.record(
            self.ctx.keys,
            db,
            "channel.enable" if enabled else "channel.disable",
            actor=actor,
            target=f"channel:{ch.id}",
        )
        return ch

    def dismiss(self, db: Session, actor: Principal, verdict_id: int, reason: str) -> ChannelVerdict:
        """A regulator closes a verdict as no threat, with a reason (audited). The verdict stays,
        with who, when and why; its listing seen again refreshes it and raises no new event."""
        actor.require(Perm.CHANNEL_MANAGE)
        v = get_visible(db, actor, ChannelVerdict, verdict_id, "verdict")
        reason = (reason or "").strip()
        if not 2 <= len(reason) <= 2000:
            raise Invalid("a dismissal needs a reason of 2 to 2000 characters", field="reason")
        if v.status == "dismissed":
            raise Conflict(f"verdict {v.id} is already dismissed")
        v.status, v.dismissed_by, v.dismissed_at, v.dismissed_reason = (
            "dismissed",
            actor.user_id or None,
            self.now(),
            reason,
        )
        audit.record(
            self.ctx.keys,
            db,
            "channel.verdict.dismiss",
            actor=actor,
            target=f"channel-verdict:{v.id}",
            org_id=v.org_id,
            details={"kind": v.kind, "filing_id": v.filing_id, "reason": reason[:300]},
        )
        return v

    def settings(self, ch: Channel) -> dict[str, Any]:
        return {**DEFAULTS, **(ch.config or {})}

    # --- crawling ---------------------------------------------------------------------------

    def _lock(self, channel_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(channel_id, threading.Lock())

    def crawl_due(self) -> list[int]:
        """Enqueue a crawl for every enabled channel whose time has come (the scheduler's tick)."""
        now = self.now()
        with self.ctx.db.session() as db:
            due = list(
                db.scalars(
                    select(Channel.id).where(
                        Channel.enabled.is_(True), (Channel.next_crawl_at.is_(None)) | (Channel.next_crawl_at <= now)
                    )
                )
            )
            for cid in due:  # claim them so the next tick does not enqueue them again
                db.execute(update(Channel).where(Channel.id == cid).values(next_crawl_at=now + timedelta(minutes=5)))
        for cid in due:
            if self.ctx.jobs is not None:
                self.ctx.jobs.enqueue("channels.crawl", channel_id=cid)
            else:
                self.crawl(cid)
        return due

    def crawl(self, channel_id: int) -> CrawlReport:
        lock = self._lock(channel_id)
        if not lock.acquire(blocking=False):
            return CrawlReport(channel_id, 0, "skipped", "a crawl of this channel is already running")
        try:
            return self._crawl(channel_id)
        finally:
            lock.release()

    def _crawl(self, channel_id: int) -> CrawlReport:
        with self.ctx.db.session() as db:
            ch = db.get(Channel, channel_id)
            if ch is None:
                raise Invalid(f"channel {channel_id} not found", field="channel_id")
            crawl = ChannelCrawl(channel_id=ch.id, started_at=self.now(), status="running", counts={})
            db.add(crawl)
            db.flush()
            crawl_id = crawl.id
            kind, url, state, cfg = ch.kind, ch.url, dict(ch.state or {}), self.settings(ch)
        report = CrawlReport(channel_id, crawl_id, "ok")
        try:
            adapter = adapter_class(kind)(url, cfg, self._http(cfg))
            result = adapter.fetch(state)
        except ChannelError as exc:
            return self._failed(report, str(exc))
        except Exception as exc:  # an adapter's bug must not stop the other channels' crawls
            log.exception("channel %s: adapter failed", channel_id)
            return self._failed(report, f"adapter error: {type(exc).__name__}: {exc}")
        counts = report.counts
        counts["listed"] = len(result.listings) if result.listings is not None else 0
        matcher = self._matcher()
        to_match: set[int] = set()
        with self.ctx.db.session() as db:
            if result.listings is None:
                report.status = "unchanged"
            else:
                to_match |= self._store(db, channel_id, crawl_id, result.listings, matcher, counts)
        if cfg["download"]:
            to_match |= self._download_pending(adapter, channel_id, cfg, counts)
        mark = self._filings_mark()
        if state.get("filings_mark") != mark:
            to_match = set(self._listing_ids(channel_id))  # the filings changed: match everything again
        counts["matched"] = len(to_match)
        self._match(channel_id, sorted(to_match), matcher, counts)
        with self.ctx.db.session() as db:
            ch = db.get(Channel, channel_id)
            assert ch is not None
            now = self.now()
            ch.state = {**result.state, "filings_mark": mark}
            ch.health, ch.consecutive_failures, ch.last_error = "ok", 0, None
            ch.last_crawl_at = ch.last_success_at = now
            ch.next_crawl_at = now + timedelta(minutes=ch.interval_minutes)
            crawl = db.get(ChannelCrawl, crawl_id)
            assert crawl is not None
            crawl.status, crawl.finished_at, crawl.counts = report.status, now, dict(counts)
        return report

    def _http(self, cfg: dict[str, Any]) -> HttpClient:
        return HttpClient(
            rate_per_second=float(cfg["rate_per_second"]),
            timeout=float(cfg["timeout_seconds"]),
            retries=int(cfg["retries"]),
            backoff=float(cfg["backoff_seconds"]),
        )

    def _failed(self, report: CrawlReport, error: str) -> CrawlReport:
        report.status, report.error = "failed", error[:2000]
        with self.ctx.db.session() as db:
            ch = db.get(Channel, report.channel_id)
            assert ch is not None
            now = self.now()
            ch.consecutive_failures += 1
            ch.last_error, ch.last_crawl_at = report.error, now
            alert_after = int(self.settings(ch)["alert_after"])
            # retry sooner than the normal interval, backing off: 5, 10, 20 ... minutes, at most the interval
            retry = min(ch.interval_minutes, 5 * 2 ** min(ch.consecutive_failures - 1, 10))
            ch.next_crawl_at = now + timedelta(minutes=retry)
            ch.health = "down" if ch.consecutive_failures >= alert_after else "failing"
            if ch.consecutive_failures == alert_after:
                db.add(
                    Alert(
                        kind="channel_down",
                        subject=ch.name[:128],
                        org_id=ch.org_id,
                        details={"channel_id": ch.id, "failures": ch.consecutive_failures, "error": report.error},
                        created_at=now,
                    )
                )
                audit.record(
                    self.ctx.keys,
                    db,
                    "channel.down",
                    actor=SYSTEM,
                    target=f"channel:{ch.id}",
                    org_id=ch.org_id,
                    details={"failures": ch.consecutive_failures, "error": report.error[:300]},
                )
            report.counts = {"consecutive_failures": ch.consecutive_failures}
            crawl = db.get(ChannelCrawl, report.crawl_id)
            assert crawl is not None
            crawl.status, crawl.error, crawl.finished_at, crawl.counts = "failed", report.error, now, report.counts
        log.warning("channel %s crawl failed: %s", report.channel_id, report.error)
        return report


def register(ctx: Platform) -> ChannelService:
    svc = ChannelService(ctx)
    ctx.channels = svc
    if ctx.jobs is not None:
        ctx.jobs.register("channels.crawl", lambda channel_id: svc.crawl(int(channel_id)))
        ctx.jobs.register("channels.tick", lambda: svc.crawl_due())
    return svc
