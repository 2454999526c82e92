"""Pseudonymisation: personal identifiers out of the trail, keyed pseudonyms in.

The rules only ever compare identifiers (is the reviewer the prescriber? is the signer a
registered doctor?), so the ledger stores ``ref = HMAC-SM3(key, org ‖ kind ‖ value)`` instead of
the patient's id or the staff member's licence number. The pseudonym is stable within an
institution (rules and indicators still work) and unlinkable across institutions. The original
value is kept once per identifier, SM4-GCM encrypted (``trail_identities``), for the evidence a
regulator acts on; the data key never enters the database (PIPL 第五十一条: 加密、去标识化).
"""

from __future__ import annotations

import copy
from datetime import UTC
from typing import Any

from medrisk.crypto import hmac_sm3
from medrisk.trails.checker import Norm
from medrisk.trails.schema import Checked

PATIENT, STAFF = "patient", "staff"


def derive_key(data_key: bytes) -> bytes:
    """The pseudonym key: derived from the platform's SM4 data key, never stored."""
    return hmac_sm3(data_key, b"medrisk-trail-pseudonym:v1")


class Pseudonymiser:
    def __init__(self, key: bytes, org_id: int) -> None:
        self.key = key
        self.org_id = org_id
        self._cache: dict[tuple[str, str], str] = {}
        self.seen: dict[tuple[str, str], str] = {}  # (kind, ref) -> original, for this batch's identity rows

    def ref(self, kind: str, value: str) -> str:
        k = (kind, value)
        r = self._cache.get(k)
        if r is None:
            mac = hmac_sm3(self.key, f"{self.org_id}\x00{kind}\x00{value}".encode()).hex()[:32]
            r = ("p_" if kind == PATIENT else "s_") + mac
            if len(self._cache) > 200_000:  # bounded memory over a long import
                self._cache.clear()
            self._cache[k] = r
        self.seen[(kind, r)] = value
        return r


def minimise(c: Checked, p: Pseudonymiser) -> tuple[Norm, dict[str, Any]]:
    """The event as the rules see it, and as the ledger stores it (identifiers replaced by pseudonyms)."""
    raw = c.raw
    payload = copy.copy(raw)
    actor = raw["actor"]
    licence = actor.get("licence")
    actor_ref = p.ref(STAFF, licence) if licence else None
    stored_actor = {k: v for k, v in actor.items() if k != "licence"}
    if actor_ref:
        stored_actor["ref"] = actor_ref
    payload["actor"] = stored_actor
    patient = raw.get("patient")
    patient_ref = None
    if patient is not None:
        patient_ref = p.ref(PATIENT, patient["id"])
        payload["patient"] = {**{k: v for k, v in patient.items() if k != "id"}, "ref": patient_ref}
    data = raw.get("data") or {}
    n = Norm(
        type=raw["type"],
        at=c.at.astimezone(UTC).timestamp(),
        actor_ref=actor_ref,
        actor_role=actor["role"],
        actor_kind=actor.get("kind", "human"),
        patient_ref=patient_ref,
        patient_age=patient.get("age_years") if patient else None,
        patient_real_name=patient.get("real_name_verified") if patient else None,
        consultation_id=raw.get("consultation_id"),
        prescription_id=raw.get("prescription_id"),
        data=data,
    )
    return n, payload
