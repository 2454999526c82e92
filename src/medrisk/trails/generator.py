"""A synthetic but realistic trail generator: institutions, doctors, pharmacists, couriers and
prescription flows with a configurable share of each violation (used by the tests, the rule
library's own test cases and the benchmark).

A *flow* is one online follow-up visit that ends in a prescription, described as steps
(``STANDARD``) and modified by small recipes (``drop``, ``set``, ``add``, ``cast``, ``patient``)
— the same recipes the rule files' test cases use, so "what a violation looks like" is
written once. ``INJECT`` holds one recipe per rule id.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

STANDARD: list[dict[str, Any]] = [
    {
        "type": "consultation.started",
        "t": 0,
        "actor": "doctor",
        "data": {"visit": "follow_up", "offline_diagnosis": True},
    },
    {"type": "diagnosis.made", "t": 5, "actor": "doctor", "data": {"same_as_offline": True}},
    {
        "type": "prescription.created",
        "t": 10,
        "actor": "doctor",
        "data": {"items": [{"drug": "二甲双胍缓释片", "drug_class": "ordinary", "days_supply": 7}], "valid_days": 1},
    },
    {"type": "prescription.signed", "t": 11, "actor": "doctor", "data": {"signature_alg": "SM2"}},
    {"type": "consultation.ended", "t": 15, "actor": "doctor"},
    {"type": "record.written", "t": 20, "actor": "doctor"},
    {"type": "prescription.reviewed", "t": 30, "actor": "pharmacist", "data": {"result": "approved"}},
    {"type": "prescription.dispensed", "t": 60, "actor": "pharmacist"},
    {"type": "prescription.delivered", "t": 180, "actor": "courier", "data": {"carrier": "顺丰"}},
    {"type": "prescription.received", "t": 300, "actor": "patient"},
]
_DOCTOR_STEPS = ("consultation.started", "diagnosis.made", "prescription.created", "prescription.signed")
_MANY_ITEMS = [{"drug": f"药品{i}", "drug_class": "ordinary", "days_supply": 5} for i in range(6)]
_LATE = {
    "prescription.dispensed": {"t": 2900},
    "prescription.delivered": {"t": 3000},
    "prescription.received": {"t": 3100},
}

# one recipe per rule: what the flow looks like when that rule is broken
INJECT: dict[str, dict[str, Any]] = {
    "RX-01": {"set": {"prescription.created": {"actor": "doctor2"}, "prescription.signed": {"actor": "doctor2"}}},
    "RX-02": {"drop": ["prescription.signed"]},
    "RX-03": {"set": {"prescription.reviewed": {"t": 90}}},
    "RX-04": {"set": {"prescription.created": {"actor": "ai"}}},
    "RX-05": {
        "set": {
            "prescription.created": {
                "data": {"items": [{"drug": "地西泮片", "drug_class": "psychotropic_2", "days_supply": 3}]}
            }
        }
    },
    "RX-06": {"patient": {"age_years": 4}},
    "RX-07": {"set": {"prescription.created": {"data": {"valid_days": 5}}}},
    "RX-08": {
        "set": {
            "prescription.created": {
                "data": {"items": [{"drug": "阿托伐他汀钙片", "drug_class": "ordinary", "days_supply": 14}]}
            }
        }
    },
    "RX-09": {"set": {"prescription.created": {"data": {"items": _MANY_ITEMS}}}},
    "RX-10": {"add": [{"type": "prescription.dispensed", "t": 70, "actor": "pharmacist"}]},
    "RX-11": {"set": {"prescription.signed": {"actor": "doctor2"}}},
    "RX-12": {"set": {"prescription.dispensed": {"t": 5}}},
    "RX-13": {"set": {"prescription.reviewed": {"actor": "doctor"}}},
    "RX-14": {"set": _LATE},
    "RX-15": {
        "drop": ["prescription.reviewed", "prescription.dispensed", "prescription.delivered", "prescription.received"]
    },
    "DX-01": {"set": {"consultation.started": {"data": {"visit": "initial", "offline_diagnosis": False}}}},
    "DOC-01": {"cast": {"doctor": "junior"}},
    "EMR-02": {"set": {"record.written": {"t": 1900}}},
}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def apply_recipe(recipe: dict[str, Any], steps: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The standard flow (or ``steps``) changed by a recipe; unknown recipe keys are refused."""
    unknown = set(recipe) - {"drop", "set", "add", "cast", "patient", "flow", "name", "expect", "events"}
    if unknown:
        raise ValueError(f"unknown recipe keys: {', '.join(sorted(unknown))}")
    if recipe.get("flow", "standard") == "none":
        out: list[dict[str, Any]] = []
    else:
        out = [copy.deepcopy(s) for s in (steps if steps is not None else STANDARD)]
    drop = set(recipe.get("drop") or ())
    out = [s for s in out if s["type"] not in drop]
    for typ, change in (recipe.get("set") or {}).items():
        matched = [i for i, s in enumerate(out) if s["type"] == typ]
        if not matched:
            raise ValueError(f"recipe sets {typ}, which is not in the flow")
        for i in matched:
            out[i] = _merge(out[i], change)
    out += [copy.deepcopy(s) for s in (recipe.get("add") or [])]
    out += [copy.deepcopy(s) for s in (recipe.get("events") or [])]
    cast = recipe.get("cast") or {}
    for s in out:
        s["actor"] = cast.get(s.get("actor", "doctor"), s.get("actor", "doctor"))
    if recipe.get("patient"):
        for s in out:
            s["patient"] = {**s.get("patient", {}), **recipe["patient"]}
    out.sort(key=lambda s: s["t"])  # arrival order = business-time order (stable for equal times)
    return out


@dataclass
class Staff:
    slot: str
    role: str
    licence: str
    practice_years: int = 8
    real_name_verified: bool = True


@dataclass
class Institution:
    """One institution's people: seniors for clean flows, a junior doctor, an AI assistant, a stranger."""

    key: str
    doctors: list[Staff]
    pharmacists: list[Staff]
    couriers: list[Staff]
    junior: Staff
    stranger_licence: str

    @classmethod
    def make(cls, key: str, doctors: int = 8, pharmacists: int = 3, couriers: int = 4) -> Institution:
        def lic(kind: str, n: int) -> str:
            return f"{kind}{abs(hash(key)) % 10000:04d}{n:06d}"

        return cls(
            key=key,
            doctors=[Staff("doctor", "doctor", lic("110", i)) for i in range(doctors)],
            pharmacists=[Staff("pharmacist", "pharmacist", lic("220", i)) for i in range(pharmacists)],
            couriers=[Staff("courier", "courier", lic("330", i)) for i in range(couriers)],
            junior=Staff("junior", "doctor", lic("119", 0), practice_years=2),
            stranger_licence=lic("999", 0),
        )

    def roster(self) -> list[Staff]:
        return [*self.doctors, *self.pharmacists, *self.couriers, self.junior]


def roster_events(inst: Institution, at: datetime) -> list[dict[str, Any]]:
    out = []
    for i, s in enumerate(inst.roster()):
        out.append(
            {
                "schema_version": 1,
                "event_id": f"{inst.key}-staff-{i}",  # never an identity: event ids are stored in clear
                "type": "staff.registered",
                "at": _iso(at),
                "actor": {"role": s.role, "licence": s.licence},
                "data": {
                    "role": s.role,
                    "practice_years": s.practice_years,
                    "real_name_verified": s.real_name_verified,
                },
            }
        )
    return out


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_flow(
    steps: list[dict[str, Any]],
    inst: Institution,
    n: int | str,
    start: datetime,
    cast: dict[str, Staff | None] | None = None,
    patient: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Wire-format events of one flow (``schema_version`` 1)."""
    rng = random.Random(f"{inst.key}:{n}")
    people: dict[str, Staff | None] = {
        "doctor": inst.doctors[rng.randrange(len(inst.doctors))],
        "pharmacist": inst.pharmacists[rng.randrange(len(inst.pharmacists))],
        "courier": inst.couriers[rng.randrange(len(inst.couriers))],
        "junior": inst.junior,
    }
    people["doctor2"] = next(d for d in inst.doctors if d is not people["doctor"]) if len(inst.doctors) > 1 else None
    people.update(cast or {})
    cid, rid = f"C-{inst.key}-{n}", f"RX-{inst.key}-{n}"
    pat = {"id": f"PT-{inst.key}-{rng.randrange(10**8):08d}", "age_years": rng.randrange(18, 80)}
    pat.update(patient or {})
    out = []
    for i, s in enumerate(steps):
        typ = s["type"]
        slot = s.get("actor", "doctor")
        if slot == "ai":
            actor: dict[str, Any] = {"role": "doctor", "kind": "ai"}
        elif slot == "patient":
            actor = {"role": "patient"}
        elif slot == "system":
            actor = {"role": "system", "kind": "system"}
        elif slot == "stranger":
            actor = {"role": "doctor", "licence": inst.stranger_licence}
        else:
            who = people.get(slot)
            if who is None:
                raise ValueError(f"no staff member for actor slot {slot!r}")
            actor = {"role": who.role, "licence": who.licence}
        ev: dict[str, Any] = {
            "schema_version": 1,
            "event_id": f"{inst.key}-{n}-{i}",
            "type": typ,
            "at": _iso(start + timedelta(minutes=s["t"])),
            "actor": actor,
            "patient": {**pat, **(s.get("patient") or {})},
        }
        if typ.startswith(("consultation.", "diagnosis.", "record.", "order.")):
            ev["consultation_id"] = s.get("consultation_id", cid)
        if typ.startswith("prescription."):
            ev["prescription_id"] = s.get("prescription_id", rid)
            if typ == "prescription.created":
                ev["consultation_id"] = s.get("consultation_id", cid)
        if typ.startswith("record."):
            ev["record_id"] = f"R-{inst.key}-{n}"
        if typ == "order.created":
            ev["order_id"] = f"O-{inst.key}-{n}"
        if s.get("data"):
            ev["data"] = copy.deepcopy(s["data"])
        out.append(ev)
    return out


@dataclass
class Generated:
    """A generated stream and what it should produce."""

    events: list[dict[str, Any]]
    injected: dict[str, set[str]] = field(default_factory=dict)  # case key -> rule ids injected
    clean: set[str] = field(default_factory=set)  # case keys of clean flows (prescription and consultation ids)
    end: datetime | None = None  # time of the last event


def case_of(rule_id: str) -> str:
    return "consultation" if rule_id in ("EMR-02",) else "prescription"


def generate(
    inst: Institution,
    flows: int,
    shares: dict[str, float] | None = None,
    *,
    seed: int = 0,
    start: datetime | None = None,
    hours: float = 24.0,
    roster: bool = True,
    first: int = 0,
) -> Generated:
    """``flows`` prescription flows over ``hours`` from ``start``; ``shares`` maps rule id -> share of flows."""
    rng = random.Random(seed)
    start = start or datetime(2026, 12, 1, tzinfo=UTC)
    shares = shares or {}
    bad = sorted(set(shares) - set(INJECT))
    if bad:
        raise ValueError(f"no injection recipe for {', '.join(bad)}")
    if sum(shares.values()) > 1:
        raise ValueError("violation shares add up to more than 1")
    events = roster_events(inst, start - timedelta(days=1)) if roster else []
    gen = Generated(events=[])
    cumulative = []
    acc = 0.0
    for rid, share in sorted(shares.items()):
        acc += share
        cumulative.append((acc, rid))
    timed: list[tuple[str, dict[str, Any]]] = []
    for k in range(first, first + flows):
        roll = rng.random()
        rid = next((r for limit, r in cumulative if roll < limit), None)
        recipe = INJECT[rid] if rid else {}
        steps = apply_recipe(recipe)
        flow_start = start + timedelta(seconds=rng.random() * hours * 3600)
        evs = render_flow(steps, inst, k, flow_start, patient=recipe.get("patient"))
        cid, rxid = f"C-{inst.key}-{k}", f"RX-{inst.key}-{k}"
        if rid:
            gen.injected.setdefault(cid if case_of(rid) == "consultation" else rxid, set()).add(rid)
        else:
            gen.clean.update({cid, rxid})
        timed += [(e["at"], e) for e in evs]
    timed.sort(key=lambda x: x[0])
    gen.events = events + [e for _, e in timed]
    gen.end = start + timedelta(hours=hours, minutes=max(s["t"] for s in STANDARD) + 3100)
    return gen


def chunks(events: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(events), size):
        yield events[i : i + size]
