"""Read views: violations with their trail as evidence, receipts, indicators, ledger verification."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from medrisk.platform import audit
from medrisk.platform.errors import Forbidden, Invalid, NotFound
from medrisk.platform.principal import SYSTEM, Principal
from medrisk.platform.roles import INSTITUTION_KINDS, Perm
from medrisk.platform.scope import get_visible, org_visible, visible_orgs
from medrisk.store.models import (
    Organisation,
    TrailBatch,
    TrailCase,
    TrailEvent,
    TrailHead,
    TrailIdentity,
    TrailViolation,
)
from medrisk.trails import ledger

if TYPE_CHECKING:
    from medrisk.platform.context import Platform

from medrisk.trails.access import can_see_identities, require_reader


class Views:
    """Mixed into ``TrailService``."""

    ctx: Platform

    def _org_filter(self, p: Principal, db: Session, org_id: int | None, column: Any) -> Any:
        if org_id is not None:
            if not org_visible(db, p, org_id):
                raise NotFound(f"organisation {org_id} not found")
            return column == org_id
        if p.is_admin:
            return column.is_not(None)
        return column.in_(visible_orgs(p))

    def list_violations(
        self,
        db: Session,
        p: Principal,
        *,
        org_id: int | None = None,
        rule: str | None = None,
        severity: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[TrailViolation]]:
        require_reader(p)
        where = [self._org_filter(p, db, org_id, TrailViolation.org_id)]
        if rule:
            where.append(TrailViolation.rule_id == rule)
        if severity:
            where.append(TrailViolation.severity == severity)
        if since:
            where.append(TrailViolation.at >= since)
        if until:
            where.append(TrailViolation.at < until)
        total = db.scalar(select(func.count()).select_from(TrailViolation).where(*where)) or 0
        rows = db.scalars(
            select(TrailViolation).where(*where).order_by(TrailViolation.id.desc()).limit(limit).offset(offset)
        )
        return total, list(rows)

    def violation(self, db: Session, p: Principal, violation_id: int) -> dict[str, Any]:
        """One violation with its rule and the full trail of its case as evidence (audited)."""
        require_reader(p)
        v = get_visible(db, p, TrailViolation, violation_id, "violation")
        rule = self.rules.get(v.rule_id)
        events = self.case_trail(db, v.org_id, v.case_kind, v.case_key)
        show = can_see_identities(p)
        refs = {e.payload.get("actor", {}).get("ref") for e in events} - {None}
        licences = self._identities(db, v.org_id, "staff", refs) if show else {}
        seqs = [e.seq for e in events]
        receipts = []
        if seqs:
            batches = db.scalars(
                select(TrailBatch)
                .where(TrailBatch.org_id == v.org_id, TrailBatch.id.in_({e.batch_id for e in events}))
                .order_by(TrailBatch.id)
            )
            receipts = [ledger.receipt_document(b) for b in batches]
        audit.record(
            self.ctx.keys,
            db,
            "trail.evidence_viewed",
            actor=p,
            org_id=v.org_id,
            target=f"trail_violation:{v.id}",
            details={"identities_shown": show and bool(licences)},
        )
        return {
            "violation": violation_dict(v),
            "rule": rule.to_dict() if rule else None,
            "evidence": [event_dict(e, licences) for e in events],
            "receipts": receipts,
        }

    def case_trail(self, db: Session, org_id: int, kind: str, key: str) -> list[TrailEvent]:
        """Every ledger event of a prescription (with its consultation) or a consultation (with its prescriptions)."""
        if kind == "prescription":
            cons = db.scalars(
                select(TrailEvent.consultation_id).where(
                    TrailEvent.org_id == org_id,
                    TrailEvent.prescription_id == key,
                    TrailEvent.consultation_id.is_not(None),
                )
            ).first()
            cond = TrailEvent.prescription_id == key
            if cons:
                cond = or_(cond, (TrailEvent.consultation_id == cons) & TrailEvent.prescription_id.is_(None))
        else:
            rx = set(
                db.scalars(
                    select(TrailEvent.prescription_id).where(
                        TrailEvent.org_id == org_id,
                        TrailEvent.consultation_id == key,
                        TrailEvent.prescription_id.is_not(None),
                    )
                )
            )
            cond = TrailEvent.consultation_id == key
            if rx:
                cond = or_(cond, TrailEvent.prescription_id.in_(rx))
        return list(
            db.scalars(select(TrailEvent).where(TrailEvent.org_id == org_id, cond).order_by(TrailEvent.seq).limit(500))
        )

    def _identities(self, db: Session, org_id: int, kind: str, refs: set[str]) -> dict[str, str]:
        out = {}
        if not refs:
            return out
        for ref, enc in db.execute(
            select(TrailIdentity.ref, TrailIdentity.value_enc).where(
                TrailIdentity.org_id == org_id, TrailIdentity.kind == kind, TrailIdentity.ref.in_(sorted(refs))
            )
        ):
            value = self.ctx.keys.decrypt(enc, f"trail_identities:{org_id}:{kind}:{ref}")
            if value is not None:
                out[ref] = value
        return out

    def receipt(self, db: Session, p: Principal, batch_id: int) -> dict[str, Any]:
        require_reader(p)
        b = get_visible(db, p, TrailBatch, batch_id, "batch")
        return ledger.receipt_document(b)

    def latest_receipt(self, db: Session, p: Principal, org_id: int | None) -> dict[str, Any]:
        require_reader(p)
        org = org_id if org_id is not None else p.org_id
        if not org_visible(db, p, org):
            raise NotFound(f"organisation {org} not found")
        b = db.scalars(
            select(TrailBatch)
            .where(TrailBatch.org_id == org, TrailBatch.last_seq.is_not(None))
            .order_by(TrailBatch.id.desc())
        ).first()
        if b is None:
            raise NotFound("no trail events received yet")
        return ledger.receipt_document(b)

    def indicators(
        self, db: Session, p: Principal, org_id: int | None, since: datetime, until: datetime
    ) -> list[dict[str, Any]]:
        """Per institution in [since, until): prescriptions, review rate, median review time,
        violations by rule, records completeness (business time)."""
        require_reader(p)
        if until <= since:
            raise Invalid("until must be after since", field="until")
        orgs_where = self._org_filter(p, db, org_id, Organisation.id)
        orgs = list(
            db.execute(
                select(Organisation.id, Organisation.name).where(
                    orgs_where, Organisation.kind.in_([k.value for k in INSTITUTION_KINDS])
                )
            )
        )
        out = []
        for oid, name in orgs:
            cases = db.execute(
                select(TrailCase.kind, TrailCase.state).where(
                    TrailCase.org_id == oid,
                    TrailCase.kind.in_(["prescription", "consultation"]),
                    TrailCase.opened_at >= since,
                    TrailCase.opened_at < until,
                )
            )
            rx_n = reviewed = approved = dispensed = visits = recorded = 0
            review_minutes: list[float] = []
            for kind, s in cases:
                if kind == "prescription" and s.get("exists"):
                    rx_n += 1
                    if s.get("reviewed_at") is not None:
                        reviewed += 1
                        review_minutes.append((s["reviewed_at"] - s["created_at"]) / 60)
                        approved += s.get("review") == "approved"
                    dispensed += bool(s.get("dispensed_count"))
                elif kind == "consultation" and s.get("exists"):
                    visits += 1
                    recorded += s.get("record_at") is not None
            by_rule = dict(
                db.execute(
                    select(TrailViolation.rule_id, func.count())
                    .where(TrailViolation.org_id == oid, TrailViolation.at >= since, TrailViolation.at < until)
                    .group_by(TrailViolation.rule_id)
                ).all()  # rows unpack as (rule_id, count)
            )
            events = db.scalar(
                select(func.count())
                .select_from(TrailEvent)
                .where(TrailEvent.org_id == oid, TrailEvent.at >= since, TrailEvent.at < until)
            )
            if not events and not by_rule:
                continue
            out.append(
                {
                    "org_id": oid,
                    "name": name,
                    "since": since,
                    "until": until,
                    "events": events or 0,
                    "prescriptions": rx_n,
                    "reviewed": reviewed,
                    "review_rate": round(reviewed / rx_n, 4) if rx_n else None,
                    "approval_rate": round(approved / reviewed, 4) if reviewed else None,
                    "median_review_minutes": round(statistics.median(review_minutes), 1) if review_minutes else None,
                    "dispensed": dispensed,
                    "consultations": visits,
                    "records_completeness": round(recorded / visits, 4) if visits else None,
                    "violations": sum(by_rule.values()),
                    "violations_by_rule": dict(sorted(by_rule.items())),
                }
            )
        return out

    def verify(self, db: Session, p: Principal, org_id: int | None) -> ledger.Report:
        if p is not SYSTEM and not p.can(Perm.AUDIT_READ):
            raise Forbidden("verifying the ledger needs the audit:read permission (auditors, regulators)")
        if org_id is not None and not org_visible(db, p, org_id):
            raise NotFound(f"organisation {org_id} not found")
        if org_id is None and not p.is_admin:
            orgs = list(db.scalars(select(TrailHead.org_id).where(TrailHead.org_id.in_(visible_orgs(p)))))
            rep = ledger.Report()
            for o in orgs:
                ledger.verify_org(db, o, self.ctx.keys, rep)
        else:
            rep = ledger.verify(db, self.ctx.keys, org_id)
        audit.record(
            self.ctx.keys,
            db,
            "trail.verified",
            actor=p if p is not SYSTEM else None,
            actor_name=None if p is not SYSTEM else "system",
            target=f"org:{org_id}" if org_id else "all",
            details={"ok": rep.ok, "events": rep.events, "first_problem": rep.to_dict()["first_problem"]},
        )
        return rep


def violation_dict(v: TrailViolation) -> dict[str, Any]:
    return {
        "id": v.id,
        "org_id": v.org_id,
        "rule_id": v.rule_id,
        "severity": v.severity,
        "case_kind": v.case_kind,
        "case_key": v.case_key,
        "trigger": v.trigger,
        "event_seq": v.event_seq,
        "at": v.at,
        "detected_at": v.detected_at,
        "filing_id": v.filing_id,
        "loop_event_id": v.loop_event_id,
    }


def event_dict(e: TrailEvent, licences: dict[str, str] | None = None) -> dict[str, Any]:
    payload = e.payload
    ref = (payload.get("actor") or {}).get("ref")
    if licences and ref in licences:
        payload = {**payload, "actor": {**payload["actor"], "licence": licences[ref]}}
    return {
        "seq": e.seq,
        "event_id": e.event_id,
        "type": e.type,
        "at": e.at,
        "received_at": e.received_at,
        "payload": payload,
        "digest": e.digest,
        "batch_id": e.batch_id,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }
