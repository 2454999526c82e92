"""Security posture of a jurisdiction: the index that keeps it fast, and the queries behind the
regulator's overview, the drill-downs and the periodic statistical report.

``index_pending`` folds finished scans into the posture tables (store/models/reports.py) in
id order, at most ``batch`` at a time; it is idempotent (a watermark in one locked row) and
never passes a scan that is still queued or running, so a scan that finishes late is not
skipped. Every query takes the organisation whose subtree it describes; callers check that
the principal may see that organisation (``platform.scope``) before asking.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, func, select, true
from sqlalchemy.orm import Session

from medrisk.platform.context import Platform
from medrisk.store.models import (
    Disposition,
    Filing,
    Organisation,
    PostureApp,
    PostureIndexState,
    PostureMonthly,
    PostureRuleHit,
    Scan,
    utcnow,
)

GRADES = ("A", "B", "C")
RULES_DIR = Path(__file__).resolve().parent.parent / "rules" / "library"


# --- rule titles (the overview names rules without loading the CEL engine) -------------------------


@functools.cache
def rule_titles() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in sorted(RULES_DIR.glob("*/*.yaml")):
        try:
            doc = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, dict) and doc.get("id"):
            out[str(doc["id"])] = {
                "title": doc.get("title") or {},
                "severity": doc.get("severity", ""),
                "category": doc.get("category", ""),
            }
    return out


# --- the index ----------------------------------------------------------------------------------------


def _month(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m")


def _open_findings(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in result.get("findings") or [] if not f.get("suppressed") and f.get("severity") != "secure"]


def index_batch(db: Session, scans: list[Scan]) -> None:
    """Fold finished scans (in id order) into the index; the caller holds the index lock.

    One query per table for the whole batch (not per scan): the first indexing of a database
    with many scans, after an upgrade, should take seconds, not minutes."""
    done = [s for s in scans if s.status == "done" and s.grade and s.finished_at is not None]
    if not done:
        return
    with db.no_autoflush:
        counts: Counter[tuple[int, str, str]] = Counter(
            (s.org_id, _month(s.finished_at), s.grade)  # type: ignore[arg-type]
            for s in done
        )
        months = {m for _, m, _ in counts}
        existing = {
            (m.org_id, m.month, m.grade): m
            for m in db.scalars(
                select(PostureMonthly).where(
                    PostureMonthly.org_id.in_({k[0] for k in counts}), PostureMonthly.month.in_(months)
                )
            )
        }
        for key, n in counts.items():
            if key in existing:
                existing[key].scans += n
            else:
                db.add(PostureMonthly(org_id=key[0], month=key[1], grade=key[2], scans=n))
        apps = {
            a.filing_id: a
            for a in db.scalars(select(PostureApp).where(PostureApp.filing_id.in_({s.filing_id for s in done})))
        }
        newest: dict[int, Scan] = {}
        for s in done:  # the latest scan of each filing in this batch, unless the index has a later one
            current = apps.get(s.filing_id)
            if current is not None and current.scan_id > s.id:
                continue  # an older scan finishing late: counted in the trend, not the current posture
            newest[s.filing_id] = s
        if not newest:
            return
        db.execute(delete(PostureRuleHit).where(PostureRuleHit.filing_id.in_(list(newest))))
        for fid, scan in newest.items():
            findings = _open_findings(scan.result or {})
            app = apps.get(fid)
            if app is None:
                app = PostureApp(filing_id=fid)
                db.add(app)
            app.org_id, app.scan_id, app.version_id = scan.org_id, scan.id, scan.version_id
            app.grade, app.score, app.findings = scan.grade, float(scan.score or 0), len(findings)
            app.finished_at = scan.finished_at
            seen: set[str] = set()
            for f in findings:
                rid = str(f.get("rule_id") or "")[:32]
                if not rid or rid in seen:
                    continue
                seen.add(rid)
                db.add(
                    PostureRuleHit(
                        filing_id=fid,
                        rule_id=rid,
                        org_id=scan.org_id,
                        severity=str(f.get("severity") or "")[:16],
                        category=str(f.get("category") or "").split(".")[0][:48],
                    )
                )
    db.flush()


def index_pending(ctx: Platform, batch: int = 500) -> int:
    """Index finished scans not yet in the posture tables; returns how many were indexed."""
    total = 0
    while True:
        with ctx.db.session() as db:
            state = db.scalars(select(PostureIndexState).where(PostureIndexState.id == 1).with_for_update()).first()
            if state is None:
                state = PostureIndexState(id=1, watermark=0, updated_at=utcnow())
                db.add(state)
                db.flush()
            blocker = db.scalar(
                select(func.min(Scan.id)).where(Scan.id > state.watermark, Scan.status.in_(("queued", "running")))
            )
            stmt = select(Scan).where(Scan.id > state.watermark).order_by(Scan.id).limit(batch)
            if blocker is not None:
                stmt = stmt.where(Scan.id < blocker)
            scans = list(db.scalars(stmt))
            if not scans:
                return total
            index_batch(db, scans)
            state.watermark = scans[-1].id
            state.updated_at = utcnow()
            total += len(scans)
        if len(scans) < batch:
            return total


# --- queries --------------------------------------------------------------------------------------------


def subtree_ids(root: Organisation) -> Any:
    return select(Organisation.id).where(Organisation.path.startswith(root.path, autoescape=True))


def _in_subtree(db: Session, root: Organisation) -> Callable[[Any], Any]:
    """``column IN (subtree)``, or no condition at all when root is the only root of the tree: the
    national overview then aggregates whole tables instead of joining 20,000 rows against 2,000
    organisation ids (3x faster on SQLite). Several roots (test worlds) keep the filter."""
    if root.parent_id is None:
        roots = db.scalar(select(func.count()).where(Organisation.parent_id.is_(None)))
        if roots == 1:
            return lambda column: true()
    ids = subtree_ids(root)
    return lambda column: column.in_(ids)


@dataclass
class Bucket:
    org_id: int
    name: str
    kind: str
    grades: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GRADES, 0))

    @property
    def total(self) -> int:
        return sum(self.grades.values())


@dataclass
class Overview:
    root: Organisation
    apps: int
    filings_by_status: dict[str, int]
    grades: dict[str, int]
    ungraded: int
    regions: list[Bucket]
    institutions: list[Bucket]
    trend: list[tuple[str, dict[str, int]]]
    top_rules: list[dict[str, Any]]
    rectifying: list[dict[str, Any]]
    overdue: int
    suspended: list[dict[str, Any]]
    pending_review: int
    states: dict[str, int]
    lookalikes: list[dict[str, Any]] = field(default_factory=list)
    lookalike_count: int = 0


def _months_back(now: datetime, n: int) -> list[str]:
    y, m = now.year, now.month
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        m -= 1
        if m == 0:
            y, m = y - 1, 12
    return out[::-1]


def overview(db: Session, root: Organisation, *, now: datetime | None = None, months: int = 12) -> Overview:
    now = now or utcnow()
    ids = subtree_ids(root)
    inside = _in_subtree(db, root)
    orgs = {
        o.id: o
        for o in db.execute(
            select(Organisation.id, Organisation.name, Organisation.kind, Organisation.path).where(
                inside(Organisation.id)
            )
        )
    }
    by_status = dict(
        db.execute(select(Filing.status, func.count()).where(inside(Filing.org_id)).group_by(Filing.status)).all()
    )
    per_org = db.execute(
        select(PostureApp.org_id, PostureApp.grade, func.count())
        .where(inside(PostureApp.org_id))
        .group_by(PostureApp.org_id, PostureApp.grade)
    ).all()
    grades = dict.fromkeys(GRADES, 0)
    depth = root.path.count("/")
    regions: dict[int, Bucket] = {}
    institutions: dict[int, Bucket] = {}
    for org_id, grade, n in per_org:
        if grade not in grades:
            continue
        grades[grade] += n
        org = orgs.get(org_id)
        if org is None:
            continue
        inst = institutions.setdefault(org_id, Bucket(org_id, org.name, org.kind))
        inst.grades[grade] += n
        parts = org.path.strip("/").split("/")
        if len(parts) >= depth:  # the child of root on the way down to this institution
            child_id = int(parts[depth - 1])
            child = orgs.get(child_id)
            if child is not None:
                b = regions.setdefault(child_id, Bucket(child_id, child.name, child.kind))
                b.grades[grade] += n
    apps = sum(by_status.values())
    graded = sum(grades.values())
    span = _months_back(now, months)
    trend_rows = db.execute(
        select(PostureMonthly.month, PostureMonthly.grade, func.sum(PostureMonthly.scans))
        .where(inside(PostureMonthly.org_id), PostureMonthly.month >= span[0])
        .group_by(PostureMonthly.month, PostureMonthly.grade)
    ).all()
    trend_map: dict[str, dict[str, int]] = {m: dict.fromkeys(GRADES, 0) for m in span}
    for month, grade, n in trend_rows:
        if month in trend_map and grade in GRADES:
            trend_map[month][grade] = int(n)
    titles = rule_titles()
    top = db.execute(
        select(PostureRuleHit.rule_id, PostureRuleHit.severity, func.count().label("n"))
        .where(inside(PostureRuleHit.org_id))
        .group_by(PostureRuleHit.rule_id, PostureRuleHit.severity)
        .order_by(func.count().desc(), PostureRuleHit.rule_id)
        .limit(10)
    ).all()
    top_rules = [
        {"rule_id": r, "severity": s, "apps": n, "title": titles.get(r, {}).get("title") or {"zh": r, "en": r}}
        for r, s, n in top
    ]
    states = dict(
        db.execute(
            select(Disposition.state, func.count()).where(inside(Disposition.org_id)).group_by(Disposition.state)
        ).all()
    )
    rect = db.execute(
        select(Disposition, Filing.name, Filing.package)
        .join(Filing, Filing.id == Disposition.filing_id)
        .where(inside(Disposition.org_id), Disposition.state == "rectifying")
        .order_by(Disposition.deadline_at)
        .limit(20)
    ).all()
    overdue = (
        db.scalar(
            select(func.count()).where(
                inside(Disposition.org_id), Disposition.state == "rectifying", Disposition.deadline_at <= now
            )
        )
        or 0
    )
    susp = db.execute(
        select(Disposition, Filing.name, Filing.package)
        .join(Filing, Filing.id == Disposition.filing_id)
        .where(inside(Disposition.org_id), Disposition.state == "suspended")
        .order_by(Disposition.updated_at.desc())
        .limit(20)
    ).all()

    def row(d: Disposition, name: str, package: str) -> dict[str, Any]:
        org = orgs.get(d.org_id)
        return {
            "filing_id": d.filing_id,
            "name": name,
            "package": package,
            "org": org.name if org else "",
            "deadline_at": d.deadline_at,
            "overdue": d.deadline_at is not None and d.deadline_at <= now,
            "grade": d.last_grade,
            "cause": d.cause,
            "since": d.updated_at,
        }

    look, look_n = lookalikes(db, ids)  # few rows: the plain filter
    return Overview(
        lookalikes=look,
        lookalike_count=look_n,
        root=root,
        apps=apps,
        filings_by_status=by_status,
        grades=grades,
        ungraded=max(0, apps - graded),
        regions=sorted(regions.values(), key=lambda b: (-b.total, b.name)),
        institutions=sorted(institutions.values(), key=lambda b: (-b.grades["C"], -b.total, b.name))[:15],
        trend=[(m, trend_map[m]) for m in span],
        top_rules=top_rules,
        rectifying=[row(*r) for r in rect],
        overdue=overdue,
        suspended=[row(*r) for r in susp],
        pending_review=by_status.get("pending", 0),
        states=states,
    )


def lookalikes(db: Session, ids: Any, limit: int = 10) -> tuple[list[dict[str, Any]], int]:
    """Open look-alike and tampered-copy verdicts of channel monitoring (medrisk.channels)."""
    from medrisk.store.models import Channel, ChannelListing, ChannelVerdict

    where = (
        ChannelVerdict.org_id.in_(ids),
        ChannelVerdict.kind.in_(("lookalike", "tampered")),
        ChannelVerdict.status == "open",
    )
    n = db.scalar(select(func.count()).where(*where)) or 0
    rows = db.execute(
        select(ChannelVerdict, ChannelListing, Channel.name, Filing.name)
        .join(ChannelListing, ChannelListing.id == ChannelVerdict.listing_id)
        .join(Channel, Channel.id == ChannelVerdict.channel_id)
        .outerjoin(Filing, Filing.id == ChannelVerdict.filing_id)
        .where(*where)
        .order_by(ChannelVerdict.last_seen_at.desc())
        .limit(limit)
    ).all()
    out = [
        {
            "id": v.id,
            "kind": v.kind,
            "severity": v.severity,
            "score": v.score,
            "threshold": v.threshold,
            "evidence": v.evidence or {},
            "status": v.status,
            "listing": lst.app_name,
            "package": lst.package,
            "version": lst.version_name,
            "developer": lst.developer,
            "signer": lst.signer_sha256,
            "apk_sha256": lst.apk_sha256,
            "icon_hash": lst.icon_hash,
            "channel": channel,
            "filing_id": v.filing_id,
            "filing": filing or "",
            "first_seen": v.first_seen_at,
            "seen": v.last_seen_at,
        }
        for v, lst, channel, filing in rows
    ]
    return out, n


def apps_in(
    db: Session, root: Organisation, *, grade: str | None = None, limit: int = 50, offset: int = 0, q: str = ""
) -> tuple[list[dict[str, Any]], int]:
    """Filings of a subtree with their latest grade and disposition state, worst first."""
    ids = subtree_ids(root)
    stmt = (
        select(Filing, Organisation.name, PostureApp, Disposition.state)
        .join(Organisation, Organisation.id == Filing.org_id)
        .outerjoin(PostureApp, PostureApp.filing_id == Filing.id)
        .outerjoin(Disposition, Disposition.filing_id == Filing.id)
        .where(Filing.org_id.in_(ids))
    )
    if grade in GRADES:
        stmt = stmt.where(PostureApp.grade == grade)
    if q:
        like = f"%{q.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(Filing.name.like(like) | Filing.package.like(like))
    total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.execute(
        stmt.order_by(PostureApp.grade.desc().nulls_last(), PostureApp.score, Filing.id).limit(limit).offset(offset)
    ).all()
    out = [
        {
            "filing": f,
            "org": org_name,
            "grade": pa.grade if pa else None,
            "score": pa.score if pa else None,
            "findings": pa.findings if pa else None,
            "scan_id": pa.scan_id if pa else None,
            "state": state,
        }
        for f, org_name, pa, state in rows
    ]
    return out, total


PERIOD_RE = re.compile(r"^(\d{4})(?:-(\d{2})|-W(\d{2})|-Q([1-4]))?$")
SCHEDULES = ("monthly", "weekly", "quarterly", "yearly")  # what a subscription may ask for


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """A period → [its first instant, the first instant of the next) in UTC.

    ``YYYY-MM`` a month (the default period), ``YYYY-Www`` an ISO week (Monday to Sunday),
    ``YYYY-Qn`` a quarter, ``YYYY`` a year. ValueError for anything else."""
    m = PERIOD_RE.match(period or "")
    if not m:
        raise ValueError(f"not a period: {period!r}")
    y, month, week, quarter = int(m[1]), m[2], m[3], m[4]
    if not 2000 <= y <= 2100:
        raise ValueError(f"year out of range: {period!r}")
    if month is not None:
        mo = int(month)
        if not 1 <= mo <= 12:
            raise ValueError(f"not a month: {period!r}")
        return datetime(y, mo, 1, tzinfo=UTC), datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=UTC)
    if week is not None:
        w = int(week)
        weeks = date(y, 12, 28).isocalendar()[1]  # 28 December is always in the year's last ISO week
        if not 1 <= w <= weeks:
            raise ValueError(f"not a week of {y}: {period!r}")
        start = datetime.combine(date.fromisocalendar(y, w, 1), datetime.min.time(), tzinfo=UTC)
        return start, start + timedelta(days=7)
    if quarter is not None:
        q = int(quarter)
        start = datetime(y, 3 * q - 2, 1, tzinfo=UTC)
        return start, datetime(y + (q == 4), (3 * q) % 12 + 1, 1, tzinfo=UTC)
    return datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC)


def previous_month(now: datetime) -> str:
    first = now.astimezone(UTC).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def previous_period(now: datetime, schedule: str = "monthly") -> str:
    """The last complete period of a schedule before ``now`` (what a subscription is sent)."""
    now = now.astimezone(UTC)
    if schedule == "weekly":
        y, w, _ = (now - timedelta(days=7)).isocalendar()
        return f"{y:04d}-W{w:02d}"
    if schedule == "quarterly":
        q = (now.month - 1) // 3  # the current quarter's index 0-3; the previous one is q-1
        return f"{now.year - 1}-Q4" if q == 0 else f"{now.year}-Q{q}"
    if schedule == "yearly":
        return f"{now.year - 1:04d}"
    return previous_month(now)


def category_counts(db: Session, root: Organisation) -> list[tuple[str, int]]:
    rows = db.execute(
        select(PostureRuleHit.category, func.count(func.distinct(PostureRuleHit.filing_id)))
        .where(PostureRuleHit.org_id.in_(subtree_ids(root)))
        .group_by(PostureRuleHit.category)
        .order_by(func.count(func.distinct(PostureRuleHit.filing_id)).desc())
    ).all()
    return [(c, int(n)) for c, n in rows]


def scans_in_period(db: Session, root: Organisation, start: datetime, end: datetime) -> dict[str, int]:
    rows = db.execute(
        select(Scan.grade, func.count())
        .where(
            Scan.org_id.in_(subtree_ids(root)),
            Scan.status == "done",
            Scan.finished_at >= start,
            Scan.finished_at < end,
        )
        .group_by(Scan.grade)
    ).all()
    out: Counter[str] = Counter()
    for g, n in rows:
        out[g or "?"] += n
    return dict(out)


def transitions_in_period(db: Session, root: Organisation, start: datetime, end: datetime) -> dict[str, int]:
    from medrisk.store.models import Transition

    rows = db.execute(
        select(Transition.to_state, func.count())
        .where(Transition.org_id.in_(subtree_ids(root)), Transition.at >= start, Transition.at < end)
        .group_by(Transition.to_state)
    ).all()
    return {s: int(n) for s, n in rows}


def children_summary(db: Session, root: Organisation) -> dict[int, dict[str, int]]:
    """Filings per child organisation of root (all statuses), for the drill-down table."""
    out: dict[int, dict[str, int]] = defaultdict(lambda: {"apps": 0})
    depth = root.path.count("/")
    rows = db.execute(
        select(Organisation.path, func.count())
        .join(Filing, Filing.org_id == Organisation.id)
        .where(Organisation.id.in_(subtree_ids(root)))
        .group_by(Organisation.path)
    ).all()
    for path, n in rows:
        parts = path.strip("/").split("/")
        if len(parts) >= depth:
            out[int(parts[depth - 1])]["apps"] += n
    return out
