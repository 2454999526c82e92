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
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from medrisk.analysis.errors import AnalysisError
from medrisk.channels import icons
from medrisk.channels.adapters import adapter_class
from medrisk.channels.apkinfo import apk_identity
from medrisk.channels.fetch import HttpClient
from medrisk.channels.match import SEVERE, Draft, FiledApp, ListingFacts, Matcher
from medrisk.channels.model import ChannelError, Listing
from medrisk.platform import audit
from medrisk.platform.errors import Conflict, Invalid
from medrisk.platform.principal import SYSTEM, Principal
from medrisk.platform.roles import Perm
from medrisk.platform.scope import get_visible, scoped
from medrisk.store.models import (
    Alert,
    Channel,
    ChannelCrawl,
    ChannelListing,
    ChannelVerdict,
    Filing,
    ListingObservation,
    Organisation,
    Scan,
    Version,
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
EVENT_OF = {
    "tampered": "tampered_found",
    "lookalike": "counterfeit_found",
    "drift": "version_seen",
    "stale_vulnerable": "stale_version_found",
}
KINDS = ("tampered", "lookalike", "drift", "stale_vulnerable", "unfiled")


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


def _event_id(dedupe_key: str) -> str:
    key = f"channel:{dedupe_key}"
    return key if len(key) <= 200 else "channel:" + hashlib.sha256(dedupe_key.encode()).hexdigest()


class ChannelService:
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

    # --- listings -------------------------------------------------------------------------------

    def _store(
        self,
        db: Session,
        channel_id: int,
        crawl_id: int,
        listings: list[Listing],
        matcher: Matcher,
        counts: dict[str, int],
    ) -> set[int]:
        ch_org = db.scalar(select(Channel.org_id).where(Channel.id == channel_id))
        now = self.now()
        existing = {
            row.listing_key: row
            for row in db.execute(
                select(
                    ChannelListing.id,
                    ChannelListing.listing_key,
                    ChannelListing.app_name,
                    ChannelListing.developer,
                    ChannelListing.downloads,
                    ChannelListing.rating,
                    ChannelListing.present,
                ).where(ChannelListing.channel_id == channel_id)
            )
        }
        seen: dict[str, Listing] = {}
        for item in listings:
            seen.setdefault(item.key, item)  # a channel listing one key twice: the first wins
        new_rows, changed, reappeared = [], [], []
        for key, item in seen.items():
            old = existing.get(key)
            filed = matcher.by_package.get(item.package)
            if old is None:
                new_rows.append(
                    {
                        "channel_id": channel_id,
                        "org_id": filed[0].org_id if filed else ch_org,
                        "filing_id": filed[0].filing_id if filed else None,
                        "listing_key": key[:300],
                        "package": item.package[:255],
                        "app_name": (item.app_name or "")[:300],
                        "version_name": (item.version_name or None) and str(item.version_name)[:128],
                        "version_code": item.version_code,
                        "released_at": item.released_at,
                        "developer": (item.developer or None) and str(item.developer)[:300],
                        "downloads": item.downloads,
                        "rating": item.rating,
                        "categories": list(item.categories),
                        "apk_url": item.apk_url,
                        "apk_sha256": item.apk_sha256,
                        "apk_size": item.apk_size,
                        "signer_sha256": list(item.signer_sha256),
                        "icon_hash": None,
                        "present": True,
                        "download_status": "pending",
                        "scan_findings": [],
                        "first_seen_at": now,
                        "last_seen_at": now,
                    }
                )
            else:
                if (old.app_name, old.developer, old.downloads, old.rating) != item.observed():
                    changed.append((old.id, item))
                if not old.present:
                    reappeared.append(old.id)
        if new_rows:
            for start in range(0, len(new_rows), 5000):
                db.execute(insert(ChannelListing), new_rows[start : start + 5000])
        ids = dict(
            db.execute(
                select(ChannelListing.listing_key, ChannelListing.id).where(ChannelListing.channel_id == channel_id)
            ).all()
        )
        new_ids = {ids[r["listing_key"]] for r in new_rows}
        if changed:
            db.execute(
                update(ChannelListing).where(ChannelListing.id == bindparam("lid")),
                [
                    {
                        "lid": lid,
                        "app_name": (it.app_name or "")[:300],
                        "developer": it.developer,
                        "downloads": it.downloads,
                        "rating": it.rating,
                    }
                    for lid, it in changed
                ],
                execution_options={"synchronize_session": False},
            )
        observations = [
            {
                "listing_id": ids[key[:300]],
                "crawl_id": crawl_id,
                "seen_at": now,
                "app_name": (item.app_name or "")[:300],
                "developer": item.developer,
                "downloads": item.downloads,
                "rating": item.rating,
            }
            for key, item in seen.items()
            if ids[key[:300]] in new_ids
        ] + [
            {
                "listing_id": lid,
                "crawl_id": crawl_id,
                "seen_at": now,
                "app_name": (it.app_name or "")[:300],
                "developer": it.developer,
                "downloads": it.downloads,
                "rating": it.rating,
            }
            for lid, it in changed
        ]
        for start in range(0, len(observations), 5000):
            db.execute(insert(ListingObservation), observations[start : start + 5000])
        gone = [row.id for key, row in existing.items() if key not in seen and row.present]
        for start in range(0, len(gone), 900):
            db.execute(
                update(ChannelListing).where(ChannelListing.id.in_(gone[start : start + 900])).values(present=False)
            )
        for start in range(0, len(reappeared), 900):
            db.execute(
                update(ChannelListing)
                .where(ChannelListing.id.in_(reappeared[start : start + 900]))
                .values(present=True)
            )
        db.execute(
            update(ChannelListing)
            .where(ChannelListing.channel_id == channel_id, ChannelListing.present.is_(True))
            .values(last_seen_at=now)
        )
        counts.update(new=len(new_rows), changed=len(changed), gone=len(gone), reappeared=len(reappeared))
        return new_ids | {lid for lid, _ in changed} | set(reappeared)

    def _listing_ids(self, channel_id: int) -> list[int]:
        with self.ctx.db.session() as db:
            return list(
                db.scalars(
                    select(ChannelListing.id).where(
                        ChannelListing.channel_id == channel_id, ChannelListing.present.is_(True)
                    )
                )
            )

    # --- download and scan -------------------------------------------------------------------------

    def _download_pending(self, adapter: Any, channel_id: int, cfg: dict[str, Any], counts: dict[str, int]) -> set[int]:
        with self.ctx.db.session() as db:
            pending = list(
                db.scalars(
                    select(ChannelListing)
                    .where(
                        ChannelListing.channel_id == channel_id,
                        ChannelListing.present.is_(True),
                        ChannelListing.download_status.in_(("pending", "failed")),
                    )
                    .order_by(ChannelListing.id)
                    .limit(int(cfg["max_downloads"]))
                )
            )
            db.expunge_all()
        done: set[int] = set()
        counts.setdefault("downloaded", 0)
        counts.setdefault("download_failed", 0)
        counts.setdefault("scanned", 0)
        for row in pending:
            try:
                if self._fetch_and_scan(adapter, row, cfg):
                    counts["scanned"] += 1
                counts["downloaded"] += 1
                done.add(row.id)
            except ChannelError as exc:
                counts["download_failed"] += 1
                with self.ctx.db.session() as db:
                    db.execute(
                        update(ChannelListing)
                        .where(ChannelListing.id == row.id)
                        .values(download_status="failed", download_error=str(exc)[:2000])
                    )
        return done

    def _fetch_and_scan(self, adapter: Any, row: ChannelListing, cfg: dict[str, Any]) -> bool:
        listing = Listing(
            package=row.package,
            version_name=row.version_name,
            version_code=row.version_code,
            apk_url=row.apk_url,
            apk_sha256=row.apk_sha256,
            apk_size=row.apk_size,
            key=row.listing_key,
        )
        values: dict[str, Any] = {}
        icon_hash: str | None = None  # from the APK's own launcher icon (the channels' icons are that icon too)
        # an APK already scanned under another listing (another channel, say) is not fetched again
        twin = None
        if row.apk_sha256:
            with self.ctx.db.session() as db:
                twin = db.scalars(
                    select(ChannelListing)
                    .where(
                        ChannelListing.apk_sha256 == row.apk_sha256,
                        ChannelListing.download_status == "done",
                        ChannelListing.id != row.id,
                    )
                    .limit(1)
                ).first()
                if twin is not None:
                    db.expunge(twin)
        if twin is not None and self.ctx.blobs.exists(twin.apk_sha256 or ""):
            values = {
                "signer_sha256": twin.signer_sha256,
                "scan_grade": twin.scan_grade,
                "scan_score": twin.scan_score,
                "scan_findings": twin.scan_findings,
                "scan_error": twin.scan_error,
                "scanned_at": twin.scanned_at,
                "icon_hash": icon_hash or twin.icon_hash,
                "download_status": "done",
                "download_error": None,
            }
            with self.ctx.db.session() as db:
                db.execute(update(ChannelListing).where(ChannelListing.id == row.id).values(**values))
            return False
        tmp_dir = Path(self.ctx.data_dir) / "channels" / "downloads"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        dest = tmp_dir / f"{row.channel_id}-{row.id}.apk"
        max_bytes = int(float(cfg["max_apk_mb"]) * 1024 * 1024)
        sha = adapter.download(listing, dest, max_bytes)
        try:
            with dest.open("rb") as fh:
                stored = self.ctx.blobs.put_chunks(iter(lambda: fh.read(1 << 20), b""), max_bytes)
        finally:
            dest.unlink(missing_ok=True)
        path = self.ctx.blobs.path(stored.sha256)
        data = path.read_bytes()
        values = {"apk_sha256": sha, "apk_size": stored.size, "download_status": "done", "download_error": None}
        try:
            ident = apk_identity(data)
        except (AnalysisError, MemoryError, RecursionError) as exc:
            msg = exc.message if isinstance(exc, AnalysisError) else type(exc).__name__
            values.update(scan_error=f"not a readable APK: {msg}"[:2000])
        else:
            values["signer_sha256"] = ident.signer_sha256  # the package's own word beats the channel's
            icon_hash = icon_hash or icons.dhash(ident.icon)
            if ident.package and ident.package != row.package:
                values["scan_error"] = f"the APK's package is {ident.package}, the channel lists {row.package}"
                values["package"] = ident.package[:255]
            if ident.version_name and ident.version_name != row.version_name:
                values["version_name"] = ident.version_name[:128]
                values["version_code"] = ident.version_code
        values["icon_hash"] = icon_hash
        scanned = False
        if "scan_error" not in values or values.get("package"):
            result = self._scan(path, f"{row.package}-{row.version_name or row.version_code}.apk", cfg)
            values["scanned_at"] = self.now()
            if "error" in result:
                values["scan_error"] = f"{result['error']['code']}: {result['error']['message']}"[:2000]
            else:
                risk = result.get("risk") or {}
                values["scan_grade"] = risk.get("grade")
                values["scan_score"] = risk.get("score")
                values["scan_findings"] = [
                    {"rule_id": f["rule_id"], "severity": f["severity"], "title": f["title"]}
                    for f in result.get("findings", [])
                    if not f.get("suppressed")
                ]
                scanned = True
        with self.ctx.db.session() as db:
            db.execute(update(ChannelListing).where(ChannelListing.id == row.id).values(**values))
        return scanned

    def _scan(self, path: Path, name: str, cfg: dict[str, Any]) -> dict[str, Any]:
        runner = self.ctx.scan_runner
        if runner is None:
            from medrisk.platform.scanning import ThreadScanRunner

            runner = self.ctx.scan_runner = ThreadScanRunner()
        # the runner reads the file itself; give it a private copy so a blob delete cannot race it
        with tempfile.TemporaryDirectory(prefix="medrisk-channel-") as tmp:
            copy = Path(tmp) / "package.apk"
            shutil.copyfile(path, copy)
            return runner.run(copy, name, cfg.get("app_type"))

    # --- matching -----------------------------------------------------------------------------------

    def _filings_mark(self) -> str:
        with self.ctx.db.session() as db:
            n, last = db.execute(
                select(func.count(Filing.id), func.max(Filing.updated_at)).where(Filing.status == "approved")
            ).one()
            versions = db.scalar(select(func.max(Version.id))) or 0
            scans = db.scalar(select(func.max(Scan.id)).where(Scan.status == "done")) or 0
        return f"{n}:{last.isoformat() if last else ''}:{versions}:{scans}"

    def _matcher(self) -> Matcher:
        with self.ctx.db.session() as db:
            inst = dict(db.execute(select(Organisation.id, Organisation.name)).all())
            rows = list(
                db.execute(
                    select(
                        Filing.id,
                        Filing.org_id,
                        Filing.package,
                        Filing.name,
                        Filing.current_version,
                        Filing.signing_certificates,
                    ).where(Filing.status == "approved", Filing.approved_revision.is_not(None))
                )
            )
            signers: dict[int, set[str]] = {r.id: {c.lower() for c in r.signing_certificates or []} for r in rows}
            latest: dict[int, tuple[int, int | None, str]] = {}
            for vid, fid, code, certs, sha in db.execute(
                select(Version.id, Version.filing_id, Version.version_code, Version.certificates, Version.sha256)
            ):
                signers.setdefault(fid, set()).update(c.lower() for c in certs or [])
                if fid not in latest or vid > latest[fid][0]:
                    latest[fid] = (vid, code, sha)
            grades: dict[int, tuple[str | None, frozenset[str]]] = {}
            vids = [v[0] for v in latest.values()]
            for start in range(0, len(vids), 900):
                for _sid, vid, grade, result in db.execute(
                    select(Scan.id, Scan.version_id, Scan.grade, Scan.result)
                    .where(Scan.version_id.in_(vids[start : start + 900]), Scan.status == "done")
                    .order_by(Scan.id)
                ):
                    severe = frozenset(
                        f["rule_id"]
                        for f in (result or {}).get("findings", [])
                        if f.get("severity") in SEVERE and not f.get("suppressed")
                    )
                    grades[vid] = (grade, severe)
            # the filed app's icon when no release was uploaded: a genuine listing (its package, a filed signer)
            genuine_icons: dict[int, str] = {}
            by_pkg = {r.package: r.id for r in rows}
            for pkg, icon, lsigners in db.execute(
                select(ChannelListing.package, ChannelListing.icon_hash, ChannelListing.signer_sha256).where(
                    ChannelListing.icon_hash.is_not(None), ChannelListing.filing_id.is_not(None)
                )
            ):
                fid = by_pkg.get(pkg)
                if fid is not None and set(lsigners or []) & signers.get(fid, set()):
                    genuine_icons.setdefault(fid, icon)
        filed = []
        for r in rows:
            vid, code, sha = latest.get(r.id, (None, None, None))
            grade, severe = grades.get(vid, (None, frozenset())) if vid else (None, frozenset())
            filed.append(
                FiledApp(
                    filing_id=r.id,
                    org_id=r.org_id,
                    package=r.package,
                    name=r.name,
                    version=r.current_version,
                    institution=inst.get(r.org_id, ""),
                    signers=frozenset(signers.get(r.id, ())),
                    version_code=code,
                    grade=grade,
                    severe_rules=severe,
                    icon_hash=(self._filing_icon(sha) if sha else None) or genuine_icons.get(r.id),
                )
            )
        return Matcher(filed)

    def _filing_icon(self, sha: str) -> str | None:
        if sha not in self._icon_cache:
            try:
                ident = apk_identity(self.ctx.blobs.read(sha))
                self._icon_cache[sha] = icons.dhash(ident.icon)
            except (AnalysisError, OSError, MemoryError, RecursionError):
                self._icon_cache[sha] = None
        return self._icon_cache[sha]

    def _match(self, channel_id: int, ids: list[int], matcher: Matcher, counts: dict[str, int]) -> None:
        for kind in KINDS:
            counts.setdefault(f"verdict_{kind}", 0)
        counts.setdefault("events", 0)
        with self.ctx.db.session() as db:
            ch = db.get(Channel, channel_id)
            assert ch is not None
            channel_name, channel_org = ch.name, ch.org_id
        emitted: list[tuple[str, int, str, dict[str, Any], int]] = []
        for start in range(0, len(ids), 5000):
            part = ids[start : start + 5000]
            with self.ctx.db.session() as db:
                rows = list(db.scalars(select(ChannelListing).where(ChannelListing.id.in_(part))))
                by_id = {r.id: r for r in rows}
                facts = [
                    ListingFacts(
                        ref=r.id,
                        package=r.package,
                        app_name=r.app_name,
                        version_name=r.version_name,
                        version_code=r.version_code,
                        developer=r.developer,
                        signers=r.signer_sha256 or [],
                        icon_hash=r.icon_hash,
                        categories=r.categories or [],
                        grade=r.scan_grade,
                        severe_rules=[f["rule_id"] for f in r.scan_findings or [] if f.get("severity") in SEVERE],
                    )
                    for r in rows
                ]
                drafts = matcher.judge(facts)
                # filing linkage for the inventory view (same package)
                for r in rows:
                    filed = matcher.by_package.get(r.package)
                    if filed and r.filing_id != filed[0].filing_id:
                        r.filing_id, r.org_id = filed[0].filing_id, filed[0].org_id
                keys = [self._dedupe(channel_id, by_id[d.ref], d) for d in drafts]
                known = (
                    {
                        k: v
                        for k, v in db.execute(
                            select(ChannelVerdict.dedupe_key, ChannelVerdict.id).where(
                                ChannelVerdict.dedupe_key.in_(keys)
                            )
                        ).all()
                    }
                    if keys
                    else {}
                )
                now = self.now()
                refresh = [known[k] for k in keys if k in known]
                for s2 in range(0, len(refresh), 900):
                    db.execute(
                        update(ChannelVerdict)
                        .where(ChannelVerdict.id.in_(refresh[s2 : s2 + 900]))
                        .values(last_seen_at=now)
                    )
                for d, key in zip(drafts, keys):
                    if key in known:
                        continue
                    known[key] = -1  # two drafts with one key in one batch: one verdict
                    row = by_id[d.ref]
                    event_kind = EVENT_OF.get(d.kind) if d.filing_id else None
                    v = ChannelVerdict(
                        dedupe_key=key,
                        kind=d.kind,
                        severity=d.severity,
                        channel_id=channel_id,
                        listing_id=row.id,
                        filing_id=d.filing_id,
                        org_id=d.org_id or channel_org,
                        score=d.score,
                        threshold=d.threshold,
                        evidence={**d.evidence, "channel": channel_name, "listing_key": row.listing_key},
                        event_id=_event_id(key) if event_kind else None,
                        status="open",
                        first_seen_at=now,
                        last_seen_at=now,
                    )
                    db.add(v)
                    db.flush()
                    counts[f"verdict_{d.kind}"] += 1
                    if event_kind and d.filing_id:
                        data = {
                            "channel": channel_name,
                            "version": row.version_name,
                            "listing_id": row.id,
                            "verdict_id": v.id,
                            "verdict": d.kind,
                            "detail": self._detail(d, row),
                        }
                        emitted.append((event_kind, d.filing_id, v.event_id or "", data, v.id))
        for event_kind, filing_id, event_id, data, vid in emitted:
            outcome = self._emit(event_kind, filing_id, event_id, data)
            counts["events"] += 1
            with self.ctx.db.session() as db:
                db.execute(update(ChannelVerdict).where(ChannelVerdict.id == vid).values(event_outcome=outcome[:200]))

    @staticmethod
    def _dedupe(channel_id: int, row: ChannelListing, d: Draft) -> str:
        key = f"{channel_id}:{d.kind}:{row.listing_key}:{d.key_suffix}"
        return key if len(key) <= 300 else f"{channel_id}:{d.kind}:" + hashlib.sha256(key.encode()).hexdigest()

    @staticmethod
    def _detail(d: Draft, row: ChannelListing) -> str:
        if d.kind == "tampered":
            return (
                f"{row.package} {row.version_name or ''} signed by {', '.join(d.evidence['listed_signers'])[:140]}; "
                f"filed certificate(s) {', '.join(d.evidence['filed_signers'])[:140]}"
            )
        if d.kind == "lookalike":
            fired = "; ".join(
                f"{r['by']} {r.get('score', '')}" + (f" (threshold {r['threshold']})" if "threshold" in r else "")
                for r in d.evidence["fired"]
            )
            return f"{row.app_name} ({row.package}, developer {row.developer or '-'}): {fired}"
        if d.kind == "drift":
            return f"version {d.evidence['seen']} vs filed {d.evidence['filed']} ({d.evidence['class']})"
        if d.kind == "stale_vulnerable":
            return (
                f"version {d.evidence['listed_version']} with {', '.join(d.evidence['listed_severe_findings'])} "
                f"is still offered; fixed in {d.evidence['fixed_version']}"
            )
        return row.package

    def _emit(self, kind: str, filing_id: int, event_id: str, data: dict[str, Any]) -> str:
        loop = self.ctx.loop
        if loop is None:
            return "no closed loop configured"
        try:
            out = loop.emit(kind, filing_id, event_id, data)
        except Exception as exc:  # the verdict stays recorded; the event can be re-sent
            log.exception("channel event %s for filing %s failed", kind, filing_id)
            return f"error: {type(exc).__name__}: {exc}"
        return ("duplicate: " if out.duplicate else "") + (out.outcome or out.state or "")

    # --- views ------------------------------------------------------------------------------

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
        limit: int = 200,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        actor.require(Perm.FILING_READ)
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
        "first_seen_at": _iso(v.first_seen_at),
        "last_seen_at": _iso(v.last_seen_at),
    }


def register(ctx: Platform) -> ChannelService:
    svc = ChannelService(ctx)
    ctx.channels = svc
    if ctx.jobs is not None:
        ctx.jobs.register("channels.crawl", lambda channel_id: svc.crawl(int(channel_id)))
        ctx.jobs.register("channels.tick", lambda: svc.crawl_due())
    return svc
