"""Verdicts: the filed apps as a ``Matcher``, listings judged against them, verdicts stored once per
listing, kind and filing, and closed-loop events raised for new ones (step 4 of a crawl)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from medrisk.analysis.errors import AnalysisError
from medrisk.channels import icons
from medrisk.channels.apkinfo import apk_identity
from medrisk.channels.match import SEVERE, Draft, FiledApp, ListingFacts, Matcher
from medrisk.store.models import (
    Channel,
    ChannelListing,
    ChannelVerdict,
    Filing,
    Organisation,
    Scan,
    Version,
)

if TYPE_CHECKING:
    from medrisk.platform.context import Platform

log = logging.getLogger(__name__)

EVENT_OF = {
    "tampered": "tampered_found",
    "lookalike": "counterfeit_found",
    "drift": "version_seen",
    "stale_vulnerable": "stale_version_found",
}
KINDS = ("tampered", "lookalike", "drift", "stale_vulnerable", "unfiled")


def _event_id(dedupe_key: str) -> str:
    key = f"channel:{dedupe_key}"
    return key if len(key) <= 200 else "channel:" + hashlib.sha256(dedupe_key.encode()).hexdigest()


class Verdicts:
    """Mixed into ``ChannelService``."""

    ctx: Platform
    now: Callable[[], datetime]
    _icon_cache: dict[str, str | None]

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
                fresh: list[tuple[Draft, str, ChannelListing, str | None]] = []
                for d, key in zip(drafts, keys):
                    if key in known:
                        continue
                    known[key] = -1  # two drafts with one key in one batch: one verdict
                    fresh.append((d, key, by_id[d.ref], EVENT_OF.get(d.kind) if d.filing_id else None))
                rows_in = [
                    {
                        "dedupe_key": key,
                        "kind": d.kind,
                        "severity": d.severity,
                        "channel_id": channel_id,
                        "listing_id": row.id,
                        "filing_id": d.filing_id,
                        "org_id": d.org_id or channel_org,
                        "score": d.score,
                        "threshold": d.threshold,
                        "evidence": {**d.evidence, "channel": channel_name, "listing_key": row.listing_key},
                        "event_id": _event_id(key) if event_kind else None,
                        "status": "open",
                        "first_seen_at": now,
                        "last_seen_at": now,
                    }
                    for d, key, row, event_kind in fresh
                ]
                db.flush()  # the listings' filing linkage first
                for s2 in range(0, len(rows_in), 2000):  # one statement per 2,000 verdicts, not one per verdict
                    db.execute(insert(ChannelVerdict), rows_in[s2 : s2 + 2000])
                new_keys = [r["dedupe_key"] for r in rows_in]
                vids: dict[str, int] = {}
                for s2 in range(0, len(new_keys), 900):
                    vids.update(
                        db.execute(
                            select(ChannelVerdict.dedupe_key, ChannelVerdict.id).where(
                                ChannelVerdict.dedupe_key.in_(new_keys[s2 : s2 + 900])
                            )
                        ).all()
                    )
                for d, key, row, event_kind in fresh:
                    counts[f"verdict_{d.kind}"] += 1
                    if event_kind and d.filing_id:
                        data = {
                            "channel": channel_name,
                            "version": row.version_name,
                            "listing_id": row.id,
                            "verdict_id": vids[key],
                            "verdict": d.kind,
                            "detail": self._detail(d, row),
                        }
                        emitted.append((event_kind, d.filing_id, _event_id(key), data, vids[key]))
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
