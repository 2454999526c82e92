"""The posture index against the scans it is built from: the latest grade and open findings of
every filing, monthly counts, idempotence, and a scan that finishes after a later one."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from medrisk.platform import scanning
from medrisk.reports import posture
from medrisk.store.models import (
    Organisation,
    PostureApp,
    PostureIndexState,
    PostureMonthly,
    PostureRuleHit,
    Scan,
    utcnow,
)


def snapshot(ctx) -> tuple[dict[int, tuple[int, str]], dict[int, set[str]], int]:
    with ctx.db.session() as db:
        apps = {a.filing_id: (a.scan_id, a.grade) for a in db.scalars(select(PostureApp))}
        hits: dict[int, set[str]] = {}
        for h in db.scalars(select(PostureRuleHit)):
            hits.setdefault(h.filing_id, set()).add(h.rule_id)
        monthly = db.scalar(select(func.sum(PostureMonthly.scans))) or 0
    return apps, hits, monthly


def test_index_matches_the_scans_and_is_idempotent(demo_any):
    posture.index_pending(demo_any)
    apps, hits, monthly = snapshot(demo_any)
    with demo_any.db.session() as db:
        done = list(db.scalars(select(Scan).where(Scan.status == "done").order_by(Scan.id)))
    latest = {s.filing_id: s for s in done}
    assert apps == {fid: (s.id, s.grade) for fid, s in latest.items()}
    for fid, s in latest.items():
        expected = {f["rule_id"] for f in s.result["findings"] if not f["suppressed"] and f["severity"] != "secure"}
        assert hits.get(fid, set()) == expected
    assert monthly == len(done)
    assert posture.index_pending(demo_any) == 0
    assert snapshot(demo_any) == (apps, hits, monthly)


def test_a_scan_finishing_late_is_not_skipped(demo_any):
    posture.index_pending(demo_any)
    with demo_any.db.session() as db:
        v1, v2 = db.scalars(select(Scan).where(Scan.status == "done").order_by(Scan.id).limit(2)).all()
        slow = Scan(
            version_id=v1.version_id, filing_id=v1.filing_id, org_id=v1.org_id, status="queued", created_at=utcnow()
        )
        db.add(slow)
        db.flush()
        fast = Scan(
            version_id=v2.version_id, filing_id=v2.filing_id, org_id=v2.org_id, status="queued", created_at=utcnow()
        )
        db.add(fast)
        db.flush()
        slow_id, fast_id = slow.id, fast.id
    scanning.run_scan(demo_any, fast_id)  # the later scan finishes first
    posture.index_pending(demo_any)
    with demo_any.db.session() as db:
        assert db.get(PostureIndexState, 1).watermark < slow_id  # waits for the unfinished one
        assert db.get(PostureApp, v2.filing_id).scan_id == v2.id
    scanning.run_scan(demo_any, slow_id)
    posture.index_pending(demo_any)
    with demo_any.db.session() as db:
        assert db.get(PostureIndexState, 1).watermark == fast_id
        assert db.get(PostureApp, v1.filing_id).scan_id == slow_id
        assert db.get(PostureApp, v2.filing_id).scan_id == fast_id


def test_overview_counts(demo_any):
    posture.index_pending(demo_any)
    with demo_any.db.session() as db:
        nat = db.scalars(select(Organisation).where(Organisation.parent_id.is_(None))).one()
        ov = posture.overview(db, nat)
        grades = Counter(a.grade for a in db.scalars(select(PostureApp)))
    assert ov.grades == {g: grades.get(g, 0) for g in "ABC"}
    assert {b.name for b in ov.regions} == {"浙江省卫生健康委员会", "江苏省卫生健康委员会"}
    assert sum(b.total for b in ov.regions) == sum(grades.values())
    assert ov.pending_review == 1 and ov.apps >= 6
    with demo_any.db.session() as db:
        this_month = db.scalar(
            select(func.count()).where(Scan.status == "done", Scan.finished_at >= utcnow().replace(day=1, hour=0))
        )
    assert ov.trend[-1][0] == utcnow().strftime("%Y-%m") and sum(ov.trend[-1][1].values()) == this_month > 0
    assert ov.top_rules and all(r["apps"] >= 1 for r in ov.top_rules)


def test_a_second_root_keeps_the_subtree_filter(demo_any):
    """With one root the national overview skips the subtree join; a second tree must not leak in."""
    from medrisk.platform.orgs import create_root
    from medrisk.store.models import Filing

    posture.index_pending(demo_any)
    with demo_any.db.session() as db:
        nat = db.scalars(select(Organisation).where(Organisation.parent_id.is_(None))).one()
        before = posture.overview(db, nat)
        other = create_root(db, "另一个国家级机构")
        inst = Organisation(name="另一家医院", kind="hospital", parent_id=other.id)
        db.add(inst)
        db.flush()
        inst.path = f"{other.path}{inst.id}/"
        db.add(
            Filing(
                org_id=inst.id,
                name="另一应用",
                package="com.example.other.root",
                platform="android",
                app_type="问诊挂号类",
                current_version="1.0",
                privacy_policy_url="https://example.org/p",
            )
        )
    with demo_any.db.session() as db:
        after = posture.overview(db, nat)
        theirs = posture.overview(db, db.get(Organisation, other.id))
    assert after.apps == before.apps and after.pending_review == before.pending_review
    assert theirs.apps == 1 and theirs.grades == {"A": 0, "B": 0, "C": 0}
