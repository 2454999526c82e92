"""The tamper-evident trail ledger: formats, the chain, receipts, and verification.

Per institution, every event gets the next sequence number and
``hash = SM3(prev_hash ‖ canonical JSON of its content)``; the sequence number itself is not
hashed (as in the audit log), so a reordering reads as a reordering and not as an edit. Every
accepted batch is answered with a **receipt** the platform signs with SM2: institution, batch,
the sequence range, the chain's hash after the batch and the SM3 of the sender's signature.
A receipt is a checkpoint: a chain recomputed after an edit no longer matches the hashes the
platform signed, and the institution holds the receipts.

The sender signs the *statement* of a batch — the SM3 digests of its events as sent, in order —
so a signature stays verifiable with public material alone, although the ledger stores the
events pseudonymised (the digest binds the event as the institution sent it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from medrisk.crypto import SM2PrivateKey, SM2PublicKey, load_public_key_pem, sm3_hex
from medrisk.store.models import TrailBatch, TrailEvent, TrailHead, TrailSource

GENESIS = "0" * 64
BATCH_TYPE = "medrisk-trail-batch"
RECEIPT_TYPE = "medrisk-trail-receipt"


# orjson writes the same bytes as json.dumps(sort_keys=True, separators=(",", ":"),
# ensure_ascii=False) for what a trail holds (objects with string keys, strings, integers within
# 64 bits, booleans, null; tests/trails/test_ledger.py checks it against json on generated
# documents) at a sixth of the cost: JSON encoding was a sixth of a batch's CPU. Anything else
# (a big integer, a non-string key, an object json cannot encode) goes to json, which answers as
# it always did. Floats are not used in hashed documents (their exponent forms differ).
_ORJSON = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def canonical(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes that are hashed and signed (integers only, no floats)."""
    try:
        return orjson.dumps(obj, option=_ORJSON)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@lru_cache(maxsize=4096)  # a batch's received_at, and the events of one flow, repeat
def ts(dt: datetime) -> str:
    # in UTC whatever the time zone: equal instants are equal keys of the cache, and one string
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# chain_hash_with_payload: the content is hashed with a marker for its payload, replaced by the
# payload's canonical JSON (computed once, and also what PostgreSQL stores). No other field of the
# content can hold a NUL character (ids are printable ASCII), so the marker is unambiguous.
PAYLOAD_MARK = "\x00payload\x00"
_MARK_JSON = json.dumps(PAYLOAD_MARK)


def canonical_str(obj: Any) -> str:
    return canonical(obj).decode("utf-8")


def chain_hash_with_payload(prev_hash: str, c: dict[str, Any], payload_json: str) -> str:
    """``chain_hash(prev_hash, c)`` where ``c["payload"]`` is PAYLOAD_MARK and ``payload_json`` is
    ``canonical_str(payload)``: the same bytes, without encoding the payload twice."""
    text = canonical_str(c).replace(_MARK_JSON, payload_json, 1)
    return sm3_hex(bytes.fromhex(prev_hash) + text.encode("utf-8"))


def event_digest(raw: dict[str, Any]) -> str:
    """The digest of one event as the sender sent it (what its signature covers)."""
    return sm3_hex(canonical(raw))


def batch_statement(digests: list[str]) -> bytes:
    return canonical({"type": BATCH_TYPE, "v": 1, "digests": digests})


def sign_batch(key: SM2PrivateKey, events: list[dict[str, Any]]) -> str:
    """For senders: base64 of the SM2 signature over a batch of events (see docs/trails.md)."""
    return base64.b64encode(key.sign(batch_statement([event_digest(e) for e in events]))).decode()


def content(
    org_id: int,
    event_id: str,
    type_: str,
    at: datetime,
    received_at: datetime,
    prescription_id: str | None,
    consultation_id: str | None,
    payload: dict[str, Any],
    digest: str,
    batch_id: int,
    batch_index: int,
) -> dict[str, Any]:
    return {
        "org": org_id,
        "event_id": event_id,
        "type": type_,
        "at": ts(at),
        "received_at": ts(received_at),
        "prescription_id": prescription_id,
        "consultation_id": consultation_id,
        "payload": payload,
        "digest": digest,
        "batch": batch_id,
        "index": batch_index,
    }


def chain_hash(prev_hash: str, c: dict[str, Any]) -> str:
    return sm3_hex(bytes.fromhex(prev_hash) + canonical(c))


def row_content(e: TrailEvent) -> dict[str, Any]:
    return content(
        e.org_id,
        e.event_id,
        e.type,
        e.at,
        e.received_at,
        e.prescription_id,
        e.consultation_id,
        e.payload,
        e.digest,
        e.batch_id,
        e.batch_index,
    )


def receipt_statement(
    org_id: int,
    batch_id: int,
    first_seq: int | None,
    last_seq: int | None,
    head_hash: str,
    received_at: datetime,
    sender_signature: str,
    accepted: int,
    kid: str,
) -> dict[str, Any]:
    return {
        "type": RECEIPT_TYPE,
        "org": org_id,
        "batch": batch_id,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "head_hash": head_hash,
        "received_at": ts(received_at),
        "sender_signature_sm3": sm3_hex(sender_signature.encode("ascii")),
        "accepted": accepted,
        "kid": kid,
    }


def batch_receipt(b: TrailBatch) -> dict[str, Any]:
    return receipt_statement(
        b.org_id,
        b.id,
        b.first_seq,
        b.last_seq,
        b.head_hash,
        b.received_at,
        b.sender_signature,
        b.accepted,
        b.receipt_key_id,
    )


def receipt_document(b: TrailBatch) -> dict[str, Any]:
    """What the institution keeps: the statement, its signature and how to check it."""
    stmt = batch_receipt(b)
    return {
        "receipt": stmt,
        "payload": base64.urlsafe_b64encode(canonical(stmt)).decode().rstrip("="),
        "signature": b.receipt_signature,
        "alg": "SM2-SM3",
        "kid": b.receipt_key_id,
    }


def verify_receipt(public_key: SM2PublicKey, doc: dict[str, Any]) -> bool:
    """Check a receipt document offline with the platform's public key."""
    try:
        sig = base64.b64decode(doc["signature"], validate=True)
    except (KeyError, ValueError, TypeError):
        return False
    return public_key.verify(sig, canonical(doc["receipt"]))


# --- verification --------------------------------------------------------------------------------


@dataclass
class Problem:
    org_id: int
    seq: int
    kind: str  # edited | removed | reordered | inserted | receipt | signature
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"org_id": self.org_id, "seq": self.seq, "kind": self.kind, "message": self.message}


@dataclass
class Report:
    orgs: int = 0
    events: int = 0
    batches: int = 0
    problems: list[Problem] = field(default_factory=list)
    heads: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "orgs": self.orgs,
            "events": self.events,
            "batches": self.batches,
            "first_problem": self.problems[0].to_dict() if self.problems else None,
            "problems": [p.to_dict() for p in self.problems[:50]],
        }


# at one position, the chain's diagnosis comes before a damaged row, which comes before a receipt
_RANK = {"removed": 0, "reordered": 0, "inserted": 0, "edited": 1, "receipt": 2, "signature": 2}


def _iter_events(db: Session, org_id: int, chunk: int = 5000) -> Iterator[TrailEvent]:
    """Events in sequence order, in pages (memory stays flat for any ledger size)."""
    last = 0
    while True:
        rows = list(
            db.scalars(
                select(TrailEvent)
                .where(TrailEvent.org_id == org_id, TrailEvent.seq > last)
                .order_by(TrailEvent.seq)
                .limit(chunk)
            )
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        db.expunge_all()


def verify_org(db: Session, org_id: int, platform_key: Any, rep: Report) -> None:
    """Walk one institution's chain; problems are recorded in chain order."""
    problems: list[Problem] = []
    sources = {s.id: s for s in db.scalars(select(TrailSource).where(TrailSource.org_id == org_id))}
    source_keys: dict[int, SM2PublicKey | None] = {}
    batches = {b.id: b for b in db.scalars(select(TrailBatch).where(TrailBatch.org_id == org_id))}
    for b in batches.values():
        db.expunge(b)
    rep.batches += len(batches)
    by_last_seq = {b.last_seq: b for b in batches.values() if b.last_seq is not None}
    for b in sorted(batches.values(), key=lambda x: x.first_seq or 0):
        pos = b.first_seq or 0
        try:
            sig = base64.b64decode(b.receipt_signature, validate=True)
            ok = b.receipt_key_id == platform_key.kid and platform_key.verify(sig, canonical(batch_receipt(b)))
        except ValueError:
            ok = False
        if not ok:
            problems.append(
                Problem(org_id, pos, "receipt", f"batch {b.id}: the platform's receipt signature is invalid")
            )
        src = sources.get(b.source_id)
        if src is None:
            problems.append(Problem(org_id, pos, "signature", f"batch {b.id}: its sender {b.source_id} is missing"))
            continue
        if b.source_id not in source_keys:
            try:
                source_keys[b.source_id] = load_public_key_pem(src.public_key_pem.encode())
            except Exception:  # noqa: BLE001 - a damaged key row is reported, never a crash
                source_keys[b.source_id] = None
        key = source_keys[b.source_id]
        if b.file_sm3 is None:  # API batches: the signature covers the digests we keep
            try:
                good = key is not None and key.verify(base64.b64decode(b.sender_signature), batch_statement(b.digests))
            except ValueError:
                good = False
            if not good or src.key_id != b.sender_key_id:
                problems.append(
                    Problem(org_id, pos, "signature", f"batch {b.id}: the sender's SM2 signature does not verify")
                )
    prev_seq, prev_hash, prev_prev_hash = 0, GENESIS, None
    n = 0
    rewritten: list[TrailBatch] = []  # batches whose signed head hash the chain no longer reaches
    for e in _iter_events(db, org_id):
        n += 1
        own = chain_hash(e.prev_hash, row_content(e))
        seq = e.seq
        if own != e.hash or e.payload.get("event_id") != e.event_id or e.payload.get("type") != e.type:
            problems.append(Problem(org_id, seq, "edited", f"event {seq} was edited: it no longer matches its hash"))
        elif e.prev_hash != prev_hash:
            if seq != prev_seq + 1:
                missing = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}-{seq - 1}"
                problems.append(Problem(org_id, prev_seq + 1, "removed", f"event {missing} removed before event {seq}"))
            elif prev_prev_hash is not None and e.prev_hash == prev_prev_hash:
                problems.append(
                    Problem(org_id, prev_seq, "inserted", f"event {prev_seq} was inserted: event {seq} links past it")
                )
            elif db.scalar(select(TrailEvent.seq).where(TrailEvent.org_id == org_id, TrailEvent.hash == e.prev_hash)):
                problems.append(
                    Problem(org_id, seq, "reordered", f"event {seq} is out of order: it links to another event")
                )
            else:
                problems.append(
                    Problem(org_id, seq, "removed", f"the event before {seq} was removed or edited: the link is broken")
                )
        elif seq != prev_seq + 1:
            problems.append(Problem(org_id, prev_seq + 1, "removed", f"events {prev_seq + 1}-{seq - 1} are missing"))
        b = batches.get(e.batch_id)
        if b is None:
            problems.append(Problem(org_id, seq, "inserted", f"event {seq} belongs to no received batch"))
        elif e.batch_index >= len(b.digests) or b.digests[e.batch_index] != e.digest:
            problems.append(Problem(org_id, seq, "edited", f"event {seq}: its digest is not the one the sender signed"))
        cp = by_last_seq.get(seq)
        if cp is not None and cp.head_hash != own:
            rewritten.append(cp)
        prev_prev_hash, prev_hash, prev_seq = prev_hash, e.hash, seq
    head = db.get(TrailHead, org_id)
    if head is not None:
        rep.heads[org_id] = head.seq
        if head.seq > prev_seq:
            problems.append(
                Problem(org_id, prev_seq + 1, "removed", f"events {prev_seq + 1}-{head.seq} at the end are missing")
            )
        elif head.seq < prev_seq:
            problems.append(
                Problem(
                    org_id, head.seq + 1, "inserted", f"events after {head.seq} were added behind the ledger's back"
                )
            )
    last_receipt = max((b.last_seq or 0 for b in batches.values()), default=0)
    if prev_seq > last_receipt:
        problems.append(Problem(org_id, last_receipt + 1, "inserted", f"events after {last_receipt} have no receipt"))
    for cp in rewritten:
        # A chain that is consistent in itself but misses a signed receipt was re-chained after an edit:
        # the receipts pin it down to the batch (the first position that may be bad is the batch's first).
        # If a row of the batch is visibly damaged, that row is the first bad position.
        lo, hi = cp.first_seq or 0, cp.last_seq or 0
        seen = any(lo <= p.seq <= hi and p.kind not in ("receipt", "signature") for p in problems)
        problems.append(
            Problem(
                org_id,
                hi if seen else lo,
                "receipt",
                f"events {lo}-{hi} were rewritten: they no longer match the signed receipt of batch {cp.id}",
            )
        )
    rep.events += n
    rep.orgs += 1
    problems.sort(key=lambda p: (p.seq, _RANK.get(p.kind, 1)))
    rep.problems += problems


def verify(db: Session, platform_key: Any, org_id: int | None = None) -> Report:
    rep = Report()
    orgs = [org_id] if org_id is not None else list(db.scalars(select(TrailHead.org_id).order_by(TrailHead.org_id)))
    for o in orgs:
        verify_org(db, o, platform_key, rep)
    return rep
