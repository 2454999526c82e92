"""Inventory: a crawl's listings upserted with their history, and new APKs downloaded, identified
from their own bytes and scanned like an upload (steps 2 and 3 of a crawl, see ``channels.service``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from medrisk.analysis.errors import AnalysisError
from medrisk.channels import icons
from medrisk.channels.apkinfo import apk_identity
from medrisk.channels.match import Matcher
from medrisk.channels.model import ChannelError, Listing
from medrisk.store.models import (
    Channel,
    ChannelListing,
    ListingObservation,
)

if TYPE_CHECKING:
    from medrisk.platform.context import Platform

log = logging.getLogger(__name__)


class Inventory:
    """Mixed into ``ChannelService``."""

    ctx: Platform
    now: Callable[[], datetime]

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
                "icon_hash": twin.icon_hash,
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
            # the APK's own launcher icon (the channels' icons are that icon too)
            values["icon_hash"] = icons.dhash(ident.icon)
            if ident.package and ident.package != row.package:
                values["scan_error"] = f"the APK's package is {ident.package}, the channel lists {row.package}"
                values["package"] = ident.package[:255]
            if ident.version_name and ident.version_name != row.version_name:
                values["version_name"] = ident.version_name[:128]
                values["version_code"] = ident.version_code
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
        """Scan the stored blob in place, as ``platform.scanning`` does for uploads (blobs are
        content-addressed and never rewritten, so no private copy is needed)."""
        runner = self.ctx.scan_runner
        if runner is None:
            from medrisk.platform.scanning import ThreadScanRunner

            runner = self.ctx.scan_runner = ThreadScanRunner()
        return runner.run(path, name, cfg.get("app_type"))
