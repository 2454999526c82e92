"""The event schema: versioned, minimum necessary, errors that name the field."""

from __future__ import annotations

import copy

import pytest

from medrisk.trails.schema import SchemaError, check_event

GOOD = {
    "schema_version": 1,
    "event_id": "h1-1-2",
    "type": "prescription.created",
    "at": "2026-12-01T09:10:00+08:00",
    "prescription_id": "RX-1",
    "consultation_id": "C-1",
    "actor": {"role": "doctor", "licence": "110100000001"},
    "patient": {"id": "PT-0001", "age_years": 40},
    "data": {"items": [{"drug": "二甲双胍缓释片", "drug_class": "ordinary", "days_supply": 7}], "valid_days": 1},
}


def test_good_event():
    c = check_event(GOOD)
    assert c.at.isoformat() == "2026-12-01T01:10:00+00:00"


def _bad(path, value, delete=False):
    ev = copy.deepcopy(GOOD)
    obj = ev
    parts = path.split(".")
    for p in parts[:-1]:
        obj = obj[int(p)] if p.isdigit() else obj[p]
    if delete:
        del obj[parts[-1]]
    else:
        obj[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = value
    return ev


@pytest.mark.parametrize(
    ("ev", "field", "words"),
    [
        (_bad("schema_version", 2), "events.3.schema_version", "unknown schema version 2 (supported: 1)"),
        (_bad("schema_version", None, delete=True), "events.3.schema_version", "is required"),
        (_bad("type", "prescription.made"), "events.3.type", "unknown event type"),
        (_bad("at", "2026-12-01T09:10:00"), "events.3.at", "time zone"),
        (_bad("at", "yesterday"), "events.3.at", "not an RFC 3339"),
        (_bad("patient.name", "张三"), "events.3.patient.name", "unknown field"),
        (_bad("id_card", "110101199003074518"), "events.3.id_card", "personal data beyond the pseudonymous id"),
        (_bad("data.items.0.days_supply", "7"), "events.3.data.items.0.days_supply", "must be an integer"),
        (_bad("data.items.0.days_supply", True), "events.3.data.items.0.days_supply", "must be an integer"),
        (_bad("data.items.0.drug_class", "secret"), "events.3.data.items.0.drug_class", "must be one of"),
        (_bad("data.items", []), "events.3.data.items", "non-empty list"),
        (_bad("data.valid_days", 99), "events.3.data.valid_days", "between 1 and 30"),
        (_bad("actor.licence", None, delete=True), "events.3.actor.licence", "is required for a doctor"),
        (_bad("actor.role", "robot"), "events.3.actor.role", "must be one of"),
        (
            _bad("prescription_id", None, delete=True),
            "events.3.prescription_id",
            "is required for prescription.created",
        ),
        (_bad("order_id", "O-1"), "events.3.order_id", "does not belong"),
        (_bad("event_id", "has space"), "events.3.event_id", "printable ASCII"),
        (_bad("patient", None, delete=True), "events.3.patient", "is required"),
    ],
)
def test_errors_name_the_field(ev, field, words):
    with pytest.raises(SchemaError) as err:
        check_event(ev, "events.3")
    assert err.value.field == field
    assert words in str(err.value)


def test_future_events_refused():
    from datetime import UTC, datetime

    with pytest.raises(SchemaError, match="future"):
        check_event(GOOD, now=datetime(2026, 11, 1, tzinfo=UTC))


def test_ai_actor_needs_no_licence():
    ev = _bad("actor", {"role": "doctor", "kind": "ai"})
    assert check_event(ev).raw["actor"]["kind"] == "ai"
