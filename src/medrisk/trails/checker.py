"""Streaming and windowed rule checks over the state of each case (pure: no database).

A *case* is one prescription, consultation or staff member of one institution; its state is
a small dict folded from its events (``fold``). ``Checker.check`` judges an event against
the state so far and then folds it in; the service loads the states a batch touches, runs
the checker over the batch in order and writes the changed states back, so the same code
runs in memory (rule tests, generator checks) and against the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medrisk.trails.rules import CONSTANTS, Facts, RuleSet, TrailRule
from medrisk.trails.schema import RESTRICTED_CLASSES

CaseKey = tuple[str, str]  # (kind, key)


@dataclass(slots=True)
class Norm:
    """An event after validation and pseudonymisation: what the rules and the state see."""

    type: str
    at: float  # Unix seconds (business time)
    actor_ref: str | None
    actor_role: str
    actor_kind: str
    patient_ref: str | None
    patient_age: int | None
    patient_real_name: bool | None
    consultation_id: str | None
    prescription_id: str | None
    data: dict[str, Any]
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    rule: TrailRule
    case_kind: str
    case_key: str
    at: float
    seq: int | None  # the triggering event; None for a windowed check


def ev_facts(n: Norm) -> Facts:
    f = Facts(
        type=n.type,
        at=n.at,
        actor_ref=n.actor_ref,
        actor_role=n.actor_role,
        actor_kind=n.actor_kind,
        patient_ref=n.patient_ref,
        patient_age=n.patient_age,
        patient_real_name=n.patient_real_name,
    )
    d = n.data
    if n.type == "prescription.created":
        items = d["items"]
        f["items_count"] = len(items)
        f["max_days"] = max(i["days_supply"] for i in items)
        f["restricted_items"] = sum(1 for i in items if i["drug_class"] in RESTRICTED_CLASSES)
        f["valid_days"] = d.get("valid_days", 1)
        f["validity_note"] = bool(d.get("validity_note"))
        f["emergency"] = bool(d.get("emergency"))
        f["chronic"] = bool(d.get("chronic"))
        f["extension_reason"] = bool(d.get("extension_reason"))
        f["guardian_present"] = bool(d.get("guardian_present"))
        f["specialist_present"] = bool(d.get("specialist_present"))
    elif n.type == "consultation.started":
        f["visit"] = d["visit"]
        f["offline_diagnosis"] = d["offline_diagnosis"]
    elif n.type == "prescription.reviewed":
        f["result"] = d["result"]
    return f


def fold(n: Norm, rx: dict[str, Any] | None, visit: dict[str, Any] | None, staff: dict[str, Any] | None) -> None:
    """Apply an event to the states it belongs to (in place)."""
    t, at = n.type, n.at
    if t.startswith("staff.") and staff is not None:
        if t == "staff.registered":
            d = n.data
            staff.update(
                registered=True,
                role=d["role"],
                practice_years=d["practice_years"],
                real_name_verified=d["real_name_verified"],
            )
        else:
            staff["registered"] = False
        return
    if visit is not None and t.startswith(("consultation.", "record.")):
        if t == "consultation.started":
            visit.update(
                exists=True,
                visit=n.data["visit"],
                doctor=n.actor_ref,
                patient=n.patient_ref,
                started_at=at,
                offline_diagnosis=n.data["offline_diagnosis"],
            )
        elif t == "consultation.ended":
            visit.setdefault("ended_at", at)
        elif t == "consultation.terminated":
            visit.setdefault("terminated_at", at)
        elif t == "record.written" and visit.get("record_at") is None:
            visit["record_at"] = at
        return
    if rx is None:
        return
    if t == "prescription.created":
        rx.update(
            exists=True,
            created_at=at,
            prescriber=n.actor_ref,
            consultation=n.consultation_id,
            valid_days=n.data.get("valid_days", 1),
        )
    elif t == "prescription.signed":
        if rx.get("signed_at") is None:
            rx.update(signed_at=at, signer=n.actor_ref)
    elif t == "prescription.reviewed":
        rx.update(review=n.data["result"], reviewed_at=at, reviewer=n.actor_ref)
    elif t == "prescription.dispensed":
        rx["dispensed_count"] = rx.get("dispensed_count", 0) + 1
        rx.setdefault("dispensed_at", at)
    elif t == "prescription.delivered":
        rx.setdefault("delivered_at", at)
    elif t == "prescription.received":
        rx.setdefault("received_at", at)
    elif t == "prescription.cancelled":
        rx.setdefault("cancelled_at", at)


def case_keys(n: Norm) -> list[CaseKey]:
    """The cases an event reads or writes, before looking at any state."""
    keys: list[CaseKey] = []
    if n.prescription_id:
        keys.append(("prescription", n.prescription_id))
    if n.consultation_id:
        keys.append(("consultation", n.consultation_id))
    if n.actor_ref:
        keys.append(("staff", n.actor_ref))
    return keys


class Checker:
    """Judges events in arrival order against ``states`` (a dict the caller may preload)."""

    def __init__(self, rules: RuleSet, states: dict[CaseKey, dict[str, Any]] | None = None) -> None:
        self.rules = rules
        self.states: dict[CaseKey, dict[str, Any]] = states if states is not None else {}
        self.touched: set[CaseKey] = set()

    def _state(self, key: CaseKey) -> dict[str, Any]:
        s = self.states.get(key)
        if s is None:
            s = self.states[key] = {}
        return s

    def check(self, n: Norm) -> list[Hit]:
        rx = self._state(("prescription", n.prescription_id)) if n.prescription_id else None
        cid = n.consultation_id or (rx.get("consultation") if rx else None)
        visit = self._state(("consultation", cid)) if cid else None
        staff = self._state(("staff", n.actor_ref)) if n.actor_ref else None
        hits: list[Hit] = []
        rules = self.rules.by_type.get(n.type)
        if rules:
            env = {
                "ev": ev_facts(n),
                "rx": Facts(rx or {}),
                "visit": Facts(visit or {}),
                "staff": Facts(staff or {}),
                **CONSTANTS,
            }
            for r in rules:
                if r.matches(env):
                    if r.case == "consultation":
                        kind, key = "consultation", cid or n.prescription_id or "-"
                    else:
                        kind, key = "prescription", n.prescription_id or cid or "-"
                    hits.append(Hit(r, kind, key, n.at, n.seq))
        fold(n, rx, visit, staff)
        if rx is not None and n.prescription_id:
            self.touched.add(("prescription", n.prescription_id))
        if visit is not None and cid and n.type.startswith(("consultation.", "record.")):
            self.touched.add(("consultation", cid))
        if staff is not None and n.type.startswith("staff."):
            self.touched.add(("staff", n.actor_ref or ""))
        return hits


def window_due(rule: TrailRule, state: dict[str, Any], now: float) -> bool:
    start = state.get(rule.window_from or "")
    return start is not None and start + (rule.window_hours or 0) * 3600 <= now


def check_window(rule: TrailRule, state: dict[str, Any], now: float) -> bool:
    """True if the windowed rule is violated by this case (call only when ``window_due``)."""
    var = "rx" if rule.case == "prescription" else "visit"
    env = {var: Facts(state), "now": now, "window": (rule.window_hours or 0) * 3600, **CONSTANTS}
    env.setdefault("rx", Facts())
    env.setdefault("visit", Facts())
    env.setdefault("staff", Facts())
    env.setdefault("ev", Facts())
    return rule.matches(env)
