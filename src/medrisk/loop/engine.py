"""The disposition engine: a data-driven state machine on each approved filing.

Events (a scan graded, a version seen in a channel, a counterfeit found, a deadline passed,
an acceptance expired, a regulator's manual action) are recorded once under their
``event_id`` (a re-delivered event has no second effect), matched against the policy
(loop/policy.yaml) and applied in ONE transaction with the transition row, the audit entry
and the planned notifications. After the commit the gate's cache is invalidated and the
notifications are handed to the job queue; a failed delivery never undoes a disposition.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medrisk.loop import notify
from medrisk.loop.clock import Clock, SystemClock
from medrisk.loop.policy import MANUAL_ACTIONS, Policy, Rule, load_policy
from medrisk.platform import audit, versioning
from medrisk.platform.errors import Conflict, Invalid, NotFound
from medrisk.platform.principal import Principal
from medrisk.platform.roles import Perm
from medrisk.platform.scope import get_visible
from medrisk.store.models import Disposition, Filing, LoopEvent, Scan, Transition, Version

if TYPE_CHECKING:
    from medrisk.loop.gate import Gate
    from medrisk.platform.context import Platform

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    event_id: str
    duplicate: bool
    state: str | None
    transition_id: int | None = None
    outcome: str = ""
    notifications: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "duplicate": self.duplicate,
            "state": self.state,
            "transition_id": self.transition_id,
            "outcome": self.outcome,
        }


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items() if v is not None}


class LoopService:
    def __init__(self, ctx: Platform, clock: Clock | None = None, policy: Policy | None = None) -> None:
        from medrisk.loop.gate import Gate

        self.ctx = ctx
        self.clock: Clock = clock or SystemClock()
        self.policy = policy or load_policy()
        self.config = notify.NotifyConfig.from_env()
        self.gate: Gate = Gate(ctx, self)
        self.scheduler: Any = None

    # --- events ---------------------------------------------------------------------------------

    def emit(
        self,
        kind: str,
        filing_id: int,
        event_id: str,
        data: dict[str, Any] | None = None,
        *,
        actor: Principal | None = None,
        rule: Rule | None = None,
    ) -> Outcome:
        data = dict(data or {})
        for attempt in range(3):
            try:
                out = self._apply_event(kind, filing_id, event_id, data, actor, rule)
                break
            except IntegrityError:
                if attempt == 2:
                    raise
                continue  # a concurrent delivery of the same event (or a racing first disposition): look again
        if not out.duplicate:
            self.gate.invalidate(filing_id)
            for nid in out.notifications:
                self._dispatch(nid)
        return out

    def _disposition(self, db: Session, f: Filing) -> Disposition:
        d = db.scalars(select(Disposition).where(Disposition.filing_id == f.id).with_for_update()).first()
        if d is None:
            d = Disposition(filing_id=f.id, org_id=f.org_id, state="filed", updated_at=self.clock.now())
            db.add(d)
            db.flush()
        return d

    def _apply_event(
        self, kind: str, filing_id: int, event_id: str, data: dict[str, Any], actor: Principal | None, rule: Rule | None
    ) -> Outcome:
        with self.ctx.db.session() as db:
            seen = db.scalars(select(LoopEvent).where(LoopEvent.event_id == event_id)).first()
            if seen is not None:
                d = db.get(Disposition, seen.filing_id)
                return Outcome(event_id, True, d.state if d else None, outcome=seen.outcome)
            f = db.get(Filing, filing_id)
            if f is None:
                raise NotFound(f"filing {filing_id} not found")
            ev = LoopEvent(
                event_id=event_id,
                filing_id=f.id,
                org_id=f.org_id,
                kind=kind,
                data=_jsonable(data),
                actor=actor.username if actor else "system",
                received_at=self.clock.now(),
            )
            db.add(ev)
            db.flush()  # the unique event id: a concurrent duplicate fails here
            if f.approved_revision is None:
                ev.outcome = "ignored: the filing has no approved revision"
                return Outcome(event_id, False, None, outcome=ev.outcome)
            d = self._disposition(db, f)
            facts = self._facts(db, kind, f, d, data)
            if facts.get("stale"):
                ev.outcome = "ignored: " + str(facts["stale"])
                return Outcome(event_id, False, d.state, outcome=ev.outcome)
            if rule is None:
                rule = self.policy.match(kind, d.state, facts)
            elif d.state not in rule.sources:
                raise Conflict(f"{rule.id} is not possible while the filing is {d.state}")
            if rule is None:
                ev.outcome = f"no rule for {kind} in state {d.state}"
                return Outcome(event_id, False, d.state, outcome=ev.outcome)
            out = self._transition(db, f, d, ev, rule, facts, data, actor)
            ev.outcome = out.outcome
            return out

    def _facts(self, db: Session, kind: str, f: Filing, d: Disposition, data: dict[str, Any]) -> dict[str, Any]:
        facts: dict[str, Any] = {"cause": d.cause, **data}
        if kind == "scan_graded":
            latest = db.scalar(select(func.max(Version.id)).where(Version.filing_id == f.id))
            if data.get("version_id") is not None and latest is not None and int(data["version_id"]) != latest:
                facts["stale"] = f"scan of version {data['version_id']}, not the latest release ({latest})"
        if kind == "version_seen":
            facts["major_drift"] = versioning.major_drift(data.get("version"), f.current_version)
        return facts

    def _transition(
        self,
        db: Session,
        f: Filing,
        d: Disposition,
        ev: LoopEvent,
        rule: Rule,
        facts: dict[str, Any],
        data: dict[str, Any],
        actor: Principal | None,
    ) -> Outcome:
        now = self.clock.now()
        before = d.state
        to = rule.to or d.state
        if rule.to == "reopen":
            to = d.reopen_state or "monitoring"
        if rule.needs_reason and not str(data.get("reason") or "").strip():
            raise Invalid("this action needs a reason", field="reason")
        if rule.set_deadline or (rule.to == "reopen" and to == "rectifying"):
            d.deadline_at = self._deadline(rule.set_deadline or "tier", f, d, data, now)
        if rule.clear_deadline:
            d.deadline_at = None
        if rule.accept:
            until = data.get("until")
            if not isinstance(until, datetime) or until <= now:
                raise Invalid("accepting a risk needs an expiry in the future", field="until")
            d.accepted_until, d.reopen_state = until, before
        elif to != "monitoring" or ev.kind in ("scan_graded", "acceptance_expired"):
            d.accepted_until, d.reopen_state = None, None
        if ev.kind == "scan_graded":
            d.last_grade, d.last_scan_id = data.get("grade"), data.get("scan_id")
        if to != before:
            d.cause = rule.id
        d.state = to
        d.updated_at = now
        evidence = _jsonable(data)
        if d.accepted_until is not None:
            evidence["accepted_until"] = d.accepted_until.isoformat()
        t = Transition(
            filing_id=f.id,
            org_id=f.org_id,
            event_id=ev.event_id,
            rule=rule.id,
            from_state=before,
            to_state=to,
            cause=rule.id,
            evidence=evidence,
            actor=actor.username if actor else "system",
            reason=str(data.get("reason") or ""),
            deadline_at=d.deadline_at,
            at=now,
        )
        db.add(t)
        db.flush()
        audit.record(
            self.ctx.keys,
            db,
            "disposition.transition",
            actor=actor,
            actor_name=None if actor else "system",
            org_id=f.org_id,
            target=f"filing:{f.id}",
            details={
                "event": ev.event_id,
                "rule": rule.id,
                "from": before,
                "to": to,
                "cause": t.cause,
                "evidence": evidence,
                "deadline": d.deadline_at.isoformat() if d.deadline_at else None,
            },
        )
        ids: list[int] = []
        if rule.notify:
            ids = notify.plan(self, db, f, d, t, rule.notify, data)
        return Outcome(ev.event_id, False, to, t.id, f"{rule.id}: {before} -> {to}", ids)

    def _deadline(self, how: str, f: Filing, d: Disposition, data: dict[str, Any], now: datetime) -> datetime:
        days = data.get("days")
        if how == "until_or_days":
            until = data.get("until")
            if isinstance(until, datetime):
                if until <= now or (d.deadline_at is not None and until <= d.deadline_at):
                    raise Invalid("the new deadline must be later than the current one", field="until")
                return until
            if not days:
                raise Invalid("give the new deadline (until) or the days to add (days)", field="days")
            return (d.deadline_at or now) + timedelta(days=int(days))
        if how == "days" and days:
            return now + timedelta(days=int(days))
        return now + timedelta(days=self.policy.deadline_days(f.app_type))

    # --- hooks and manual actions -------------------------------------------------------------

    def on_scan_done(self, scan_id: int) -> Outcome | None:
        """Hook from platform/scanning.py: a finished scan of an uploaded version is graded."""
        with self.ctx.db.session() as db:
            s = db.get(Scan, scan_id)
            if s is None or s.status != "done" or not s.grade:
                return None
            v = db.get(Version, s.version_id)
            data = {
                "scan_id": s.id,
                "version_id": s.version_id,
                "version": v.version_name if v else None,
                "grade": s.grade,
                "score": s.score,
            }
            filing_id = s.filing_id
        return self.emit("scan_graded", filing_id, f"scan:{scan_id}", data)

    def act(
        self,
        p: Principal,
        filing_id: int,
        action: str,
        *,
        reason: str = "",
        days: int | None = None,
        until: datetime | None = None,
        event_id: str | None = None,
    ) -> Outcome:
        p.require(Perm.AUTHCODE_MANAGE)
        if action not in MANUAL_ACTIONS or action not in self.policy.manual:
            raise Invalid(f"unknown action {action!r}", field="action")
        with self.ctx.db.session() as db:
            f = get_visible(db, p, Filing, filing_id, "filing")
            if f.approved_revision is None:
                raise Conflict("the filing has no approved revision")
        data: dict[str, Any] = {"reason": reason.strip(), "days": days, "until": until}
        return self.emit(
            f"manual:{action}",
            filing_id,
            event_id or f"manual:{uuid.uuid4()}",
            data,
            actor=p,
            rule=self.policy.manual[action],
        )

    # --- time ---------------------------------------------------------------------------------

    def check_deadlines(self) -> list[Outcome]:
        """Deadlines passed and acceptances expired, by the injected clock (idempotent event ids)."""
        now = self.clock.now()
        with self.ctx.db.session() as db:
            due = list(
                db.execute(
                    select(Disposition.filing_id, Disposition.deadline_at).where(
                        Disposition.state == "rectifying", Disposition.deadline_at <= now
                    )
                )
            )
            expired = list(
                db.execute(
                    select(Disposition.filing_id, Disposition.accepted_until).where(
                        Disposition.state == "monitoring", Disposition.accepted_until <= now
                    )
                )
            )
        out = []
        for fid, when in due:
            data = {"deadline": when.isoformat()}
            out.append(self.emit("deadline_passed", fid, f"deadline:{fid}:{when.isoformat()}", data))
        for fid, when in expired:
            data = {"accepted_until": when.isoformat()}
            out.append(self.emit("acceptance_expired", fid, f"acceptance:{fid}:{when.isoformat()}", data))
        return out

    def tick(self) -> None:
        """The periodic job: deadlines, expiries, due notification retries."""
        try:
            self.check_deadlines()
        finally:
            notify.deliver_due(self)
            notify.send_digests(self)

    # --- notifications ------------------------------------------------------------------------

    def _dispatch(self, notification_id: int) -> None:
        try:
            if self.ctx.jobs is not None:
                self.ctx.jobs.enqueue("loop.deliver", notification_id=notification_id)
            else:
                notify.deliver(self, notification_id)
        except Exception:  # delivery is retried by the scheduler; never fails a disposition
            log.exception("could not hand notification %s to the job queue", notification_id)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, tick_seconds: float = 60.0, gate_refresh_seconds: float = 0.5) -> None:
        from medrisk.loop.scheduler import start_scheduler

        self.scheduler = start_scheduler(self, tick_seconds, gate_refresh_seconds)

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None


def register(ctx: Platform) -> LoopService:
    """Wire the loop into a built platform (service.build)."""
    svc = LoopService(ctx)
    ctx.loop = svc
    if ctx.jobs is not None:
        ctx.jobs.register("loop.deliver", lambda notification_id: notify.deliver(svc, int(notification_id)))
        ctx.jobs.register("loop.tick", svc.tick)
    return svc
