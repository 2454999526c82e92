"""The trail event schema, version 1: what an institution's systems send, checked field by field.

Hand-written rather than pydantic because ingestion is the hot path (every event of a
5,000-events/s stream) and because every error must name the exact field (``events.3.data.items.0.days_supply``)
in words a hospital's integrator understands. Unknown fields are refused: the schema *is* the
minimum-necessary list (no patient names, ID-card numbers or phone numbers can enter the trail).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSIONS = (1,)
TEXT_ID = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces: ids go into keys and URLs
CASE_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
LICENCE = re.compile(r"^[0-9A-Za-z\-]{4,40}$")

ACTOR_ROLES = ("doctor", "pharmacist", "courier", "nurse", "patient", "system")
ACTOR_KINDS = ("human", "ai", "system")
DRUG_CLASSES = (
    "ordinary",
    "narcotic",
    "psychotropic_1",
    "psychotropic_2",
    "toxic",
    "radioactive",
    "precursor",
)
# drugs that may not be prescribed or sold online (互联网诊疗管理办法 第十九条; 药品管理法 第六十一条)
RESTRICTED_CLASSES = frozenset(DRUG_CLASSES) - {"ordinary"}

# type -> (case ids that must be present, case ids that may be present, data fields spec)
# data spec: name -> (python type(s), required, extra check or choices)
_B, _I, _S = (bool,), (int,), (str,)
DataSpec = dict[str, tuple[tuple[type, ...], bool, Any]]
TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...], DataSpec]] = {
    "staff.registered": (
        (),
        (),
        {
            "role": (_S, True, ("doctor", "pharmacist", "courier", "nurse")),
            "practice_years": (_I, True, (0, 80)),
            "real_name_verified": (_B, True, None),
        },
    ),
    "staff.deregistered": ((), (), {}),
    "consultation.started": (
        ("consultation_id",),
        (),
        {
            "visit": (_S, True, ("initial", "follow_up")),
            "offline_diagnosis": (_B, True, None),  # a diagnosis by a physical institution is on file (复诊)
        },
    ),
    "consultation.ended": (("consultation_id",), (), {}),
    "consultation.terminated": (("consultation_id",), (), {"reason": (_S, False, 500)}),
    "diagnosis.made": (("consultation_id",), (), {"same_as_offline": (_B, False, None)}),
    "prescription.created": (
        ("prescription_id", "consultation_id"),
        (),
        {
            "items": (("items",), True, None),
            "valid_days": (_I, False, (1, 30)),
            "validity_note": (_S, False, 500),
            "emergency": (_B, False, None),
            "chronic": (_B, False, None),
            "extension_reason": (_S, False, 500),
            "guardian_present": (_B, False, None),
            "specialist_present": (_B, False, None),
        },
    ),
    "prescription.signed": (
        ("prescription_id",),
        ("consultation_id",),
        {"signature_alg": (_S, True, ("SM2", "RSA", "ECDSA")), "certificate_sn": (_S, False, 128)},
    ),
    "prescription.reviewed": (
        ("prescription_id",),
        ("consultation_id",),
        {"result": (_S, True, ("approved", "rejected")), "reason": (_S, False, 500)},
    ),
    "prescription.dispensed": (("prescription_id",), ("consultation_id",), {}),
    "prescription.delivered": (("prescription_id",), ("consultation_id",), {"carrier": (_S, False, 100)}),
    "prescription.received": (("prescription_id",), ("consultation_id",), {}),
    "prescription.cancelled": (("prescription_id",), ("consultation_id",), {"reason": (_S, False, 500)}),
    "order.created": (("order_id", "consultation_id"), (), {"kind": (_S, False, 100)}),
    "record.written": (("record_id", "consultation_id"), (), {}),
    "record.amended": (("record_id", "consultation_id"), (), {"reason": (_S, False, 500)}),
}
CASE_FIELDS = ("consultation_id", "prescription_id", "order_id", "record_id")
TOP_FIELDS = frozenset({"schema_version", "event_id", "type", "at", "patient", "actor", "data", *CASE_FIELDS})
PATIENT_FIELDS = {"id": (_S, True, None), "age_years": (_I, False, (0, 150)), "real_name_verified": (_B, False, None)}
ACTOR_FIELDS = {
    "role": (_S, True, ACTOR_ROLES),
    "kind": (_S, False, ACTOR_KINDS),
    "licence": (_S, False, None),
}
ITEM_FIELDS = {
    "drug": (_S, True, 200),
    "drug_class": (_S, True, DRUG_CLASSES),
    "days_supply": (_I, True, (1, 365)),
}
MAX_SKEW_SECONDS = 24 * 3600  # an event from more than a day in the future is a clock error


class SchemaError(ValueError):
    """An event that does not follow the schema; ``field`` is the dotted path of the bad field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Checked:
    """A valid event: the original (for its digest) and the parsed business time."""

    raw: dict[str, Any]
    at: datetime


def parse_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise SchemaError(
            field, "must be an RFC 3339 date-time string with a time zone, e.g. 2026-12-01T09:30:00+08:00"
        )
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise SchemaError(field, f"not an RFC 3339 date-time: {value[:40]!r}") from None
    if dt.tzinfo is None:
        raise SchemaError(field, "needs a time zone (Z or +08:00)")
    return dt.astimezone(UTC)


def _check_value(value: Any, types: tuple[Any, ...], check: Any, field: str) -> None:
    if types == ("items",):
        if not isinstance(value, list) or not value:
            raise SchemaError(field, "must be a non-empty list of prescription items")
        if len(value) > 50:
            raise SchemaError(field, "at most 50 items")
        for i, item in enumerate(value):
            _check_object(item, ITEM_FIELDS, f"{field}.{i}")
        return
    # bool is an int in Python: refuse True for an integer field and 1 for a boolean one
    if types == _I and (type(value) is not int):
        raise SchemaError(field, "must be an integer")
    if types == _B and type(value) is not bool:
        raise SchemaError(field, "must be true or false")
    if types == _S:
        if not isinstance(value, str):
            raise SchemaError(field, "must be a string")
        if "\x00" in value:
            raise SchemaError(field, "must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SchemaError(field, "must be valid Unicode text") from None
        if isinstance(check, int) and len(value) > check:
            raise SchemaError(field, f"at most {check} characters")
        if not value.strip():
            raise SchemaError(field, "must not be empty")
    if isinstance(check, tuple) and check and isinstance(check[0], str) and value not in check:
        raise SchemaError(field, f"must be one of {', '.join(check)} (got {str(value)[:40]!r})")
    if isinstance(check, tuple) and len(check) == 2 and isinstance(check[0], int) and not check[0] <= value <= check[1]:
        raise SchemaError(field, f"must be between {check[0]} and {check[1]}")


def _check_object(obj: Any, spec: DataSpec, field: str) -> None:
    if not isinstance(obj, dict):
        raise SchemaError(field, "must be an object")
    for key in obj:
        if key not in spec:
            raise SchemaError(f"{field}.{key}", f"unknown field (allowed: {', '.join(spec) or 'none'})")
    for key, (types, required, check) in spec.items():
        if key not in obj or obj[key] is None:
            if required:
                raise SchemaError(f"{field}.{key}", "is required")
            continue
        _check_value(obj[key], types, check, f"{field}.{key}")


def check_event(ev: Any, field: str = "event", now: datetime | None = None) -> Checked:
    """Validate one event; raises SchemaError naming the first bad field."""
    if not isinstance(ev, dict):
        raise SchemaError(field, "must be a JSON object")
    version = ev.get("schema_version")
    if version is None:
        raise SchemaError(f"{field}.schema_version", "is required (the current version is 1)")
    if type(version) is not int or version not in SCHEMA_VERSIONS:
        supported = ", ".join(str(v) for v in SCHEMA_VERSIONS)
        raise SchemaError(f"{field}.schema_version", f"unknown schema version {version!r} (supported: {supported})")
    for key in ev:
        if key not in TOP_FIELDS:
            hint = (
                " (personal data beyond the pseudonymous id is not kept)" if key in ("name", "id_card", "phone") else ""
            )
            raise SchemaError(f"{field}.{key}", f"unknown field{hint}")
    eid = ev.get("event_id")
    if not isinstance(eid, str) or not TEXT_ID.match(eid):
        raise SchemaError(f"{field}.event_id", "is required: 1-128 printable ASCII characters without spaces")
    etype = ev.get("type")
    if etype not in TYPES:
        raise SchemaError(f"{field}.type", f"unknown event type {str(etype)[:40]!r} (known: {', '.join(TYPES)})")
    if "at" not in ev:
        raise SchemaError(f"{field}.at", "is required")
    at = parse_time(ev["at"], f"{field}.at")
    if now is not None and (at - now).total_seconds() > MAX_SKEW_SECONDS:
        raise SchemaError(f"{field}.at", "is more than a day in the future (check the sender's clock)")
    required, optional, data_spec = TYPES[etype]
    for key in CASE_FIELDS:
        value = ev.get(key)
        if value is None:
            if key in required:
                raise SchemaError(f"{field}.{key}", f"is required for {etype}")
            continue
        if key not in required and key not in optional:
            raise SchemaError(f"{field}.{key}", f"does not belong to a {etype} event")
        if not isinstance(value, str) or not CASE_ID.match(value):
            raise SchemaError(f"{field}.{key}", "must be 1-64 printable ASCII characters without spaces")
    actor = ev.get("actor")
    if actor is None:
        raise SchemaError(f"{field}.actor", "is required: who executed this step")
    _check_object(actor, ACTOR_FIELDS, f"{field}.actor")
    kind = actor.get("kind", "human")
    licence = actor.get("licence")
    if licence is not None and not LICENCE.match(licence):
        raise SchemaError(
            f"{field}.actor.licence", "must be 4-40 letters, digits or '-' (the practising licence number)"
        )
    if kind == "human" and actor["role"] in ("doctor", "pharmacist", "courier", "nurse") and licence is None:
        raise SchemaError(
            f"{field}.actor.licence", f"is required for a {actor['role']} (the practising licence number)"
        )
    if etype.startswith("staff.") and licence is None:
        raise SchemaError(f"{field}.actor.licence", "is required: the staff member's licence number")
    patient = ev.get("patient")
    if patient is not None:
        _check_object(patient, PATIENT_FIELDS, f"{field}.patient")
        if not TEXT_ID.match(patient["id"]):
            raise SchemaError(
                f"{field}.patient.id", "must be the institution's pseudonymous patient id (printable ASCII)"
            )
    elif etype.startswith(("consultation.started", "prescription.created")):
        raise SchemaError(f"{field}.patient", f"is required for {etype} (pseudonymous id)")
    _check_object(ev.get("data", {}), data_spec, f"{field}.data")
    return Checked(ev, at)
