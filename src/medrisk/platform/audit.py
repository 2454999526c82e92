"""The tamper-evident audit log.

Each entry's hash is SM3(previous hash || canonical JSON of the entry), so editing an
entry breaks its own hash, and removing or reordering entries breaks the chain of
``prev_hash`` links. Every ``audit_checkpoint_every`` entries (and periodically) the
platform signs a checkpoint (sequence number and hash) with its SM2 key, so a chain
rewritten from some point on no longer matches a signed checkpoint. Entries are
written in the same transaction as the change they record; appends are serialised by
updating the single ``audit_head`` row first.

The sequence number is deliberately not part of the hashed content: order is what
the chain itself protects, which lets ``verify`` tell a reordering from an edit.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from medrisk.crypto import sm3_hex
from medrisk.platform import settings
from medrisk.platform.keys import PlatformKeys, PublicKeys
from medrisk.platform.principal import Principal
from medrisk.store.models import AuditCheckpoint, AuditEntry, AuditHead, utcnow

GENESIS = "0" * 64


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_content(e: AuditEntry) -> dict[str, Any]:
    return {
        "ts": _ts(e.ts),
        "actor_id": e.actor_id,
        "actor": e.actor,
        "org_id": e.org_id,
        "action": e.action,
        "target": e.target,
        "address": e.address,
        "details": e.details,
    }


def entry_hash(prev_hash: str, content: dict[str, Any]) -> str:
    return sm3_hex(bytes.fromhex(prev_hash) + canonical(content))


def ensure_head(db: Session) -> None:
    if db.get(AuditHead, 1) is None:
        db.add(AuditHead(id=1, seq=0, last_hash=GENESIS))
        db.flush()


def record(
    keys: PlatformKeys,
    db: Session,
    action: str,
    *,
    actor: Principal | None = None,
    actor_name: str | None = None,
    target: str = "",
    org_id: int | None = None,
    address: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction. Never put secrets in ``details``."""
    ensure_head(db)
    seq, prev = db.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.last_hash)
    ).one()
    # microsecond precision survives both SQLite and PostgreSQL, so the hash can be recomputed
    e = AuditEntry(
        seq=seq,
        ts=utcnow(),
        actor_id=actor.user_id if actor and actor.user_id else None,
        actor=(actor.username if actor else actor_name) or "",
        org_id=org_id if org_id is not None else (actor.org_id if actor and actor.org_id else None),
        action=action,
        target=target,
        address=(address if address is not None else (actor.address if actor else "")) or "",
        details=details or {},
        prev_hash=prev,
    )
    e.hash = entry_hash(prev, entry_content(e))
    db.add(e)
    db.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=e.hash))
    db.flush()
    if seq % settings.get(db, "audit_checkpoint_every") == 0:
        _sign_checkpoint(keys, db, seq, e.hash)
    return e


def checkpoint_statement(seq: int, hash_: str, signed_at: datetime, kid: str) -> bytes:
    return canonical(
        {"type": "medrisk-audit-checkpoint", "seq": seq, "hash": hash_, "signed_at": _ts(signed_at), "kid": kid}
    )


def _sign_checkpoint(keys: PlatformKeys, db: Session, seq: int, hash_: str) -> AuditCheckpoint:
    now = utcnow()
    sig = keys.sign(checkpoint_statement(seq, hash_, now, keys.kid))
    cp = AuditCheckpoint(seq=seq, hash=hash_, signed_at=now, key_id=keys.kid, signature=base64.b64encode(sig).decode())
    db.add(cp)
    db.flush()
    return cp


def checkpoint(keys: PlatformKeys, db: Session) -> AuditCheckpoint | None:
    """Sign a checkpoint at the current head unless one exists already (the periodic job)."""
    ensure_head(db)
    head = db.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    if head.seq == 0 or db.scalar(select(AuditCheckpoint.id).where(AuditCheckpoint.seq == head.seq)) is not None:
        return None
    return _sign_checkpoint(keys, db, head.seq, head.last_hash)


@dataclass
class Problem:
    seq: int
    kind: str  # edited | removed | reordered | checkpoint
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "message": self.message}


@dataclass
class Report:
    entries: int = 0
    checkpoints: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        first = self.problems[0].to_dict() if self.problems else None
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "first_problem": first,
            "problems": [p.to_dict() for p in self.problems[:20]],
        }


def verify(keys: PlatformKeys | PublicKeys, db: Session) -> Report:
    """Walk the whole chain; problems are in chain order, the first is the first tampered entry."""
    rep = Report()
    rows = db.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
    checkpoints = db.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)).scalars().all()
    stored = {e.hash for e in rows}
    computed: dict[int, str] = {}
    rep.entries, rep.checkpoints = len(rows), len(checkpoints)
    prev_seq, prev_hash = 0, GENESIS
    if rows and rows[0].seq > 1:  # older entries purged by retention: anchor on the signed checkpoint before
        anchor = next((c for c in checkpoints if c.seq == rows[0].seq - 1), None)
        if anchor is not None and _checkpoint_valid(keys, anchor):
            prev_seq, prev_hash = anchor.seq, anchor.hash
    for e in rows:
        rep.first_seq = rep.first_seq or e.seq
        rep.last_seq = e.seq
        own = entry_hash(e.prev_hash, entry_content(e))
        computed[e.seq] = own
        if own != e.hash:
            rep.problems.append(
                Problem(e.seq, "edited", f"entry {e.seq} was edited: its content no longer matches its hash")
            )
        elif e.prev_hash != prev_hash:
            if e.seq != prev_seq + 1:
                missing = f"{prev_seq + 1}" if e.seq == prev_seq + 2 else f"{prev_seq + 1}-{e.seq - 1}"
                rep.problems.append(Problem(prev_seq + 1, "removed", f"entry {missing} removed before entry {e.seq}"))
            elif e.prev_hash in stored:
                rep.problems.append(
                    Problem(e.seq, "reordered", f"entry {e.seq} is out of order: it links to another entry")
                )
            else:
                rep.problems.append(
                    Problem(
                        e.seq, "removed", f"an entry before {e.seq} was removed or edited: the chain link is broken"
                    )
                )
        elif e.seq != prev_seq + 1:
            rep.problems.append(Problem(prev_seq + 1, "removed", f"entries {prev_seq + 1}-{e.seq - 1} are missing"))
        prev_seq, prev_hash = e.seq, e.hash
    head = db.get(AuditHead, 1)
    if head is not None and head.seq > prev_seq:
        rep.problems.append(
            Problem(prev_seq + 1, "removed", f"entries {prev_seq + 1}-{head.seq} at the end are missing")
        )
    by_seq = {e.seq: e for e in rows}
    for c in checkpoints:
        if not _checkpoint_valid(keys, c):
            rep.problems.append(Problem(c.seq, "checkpoint", f"checkpoint at entry {c.seq} has an invalid signature"))
        elif c.seq in by_seq and (by_seq[c.seq].hash != c.hash or computed.get(c.seq) != c.hash):
            rep.problems.append(
                Problem(
                    c.seq,
                    "checkpoint",
                    f"entries up to {c.seq} were rewritten: they no longer match the signed checkpoint",
                )
            )
    rep.problems.sort(key=lambda p: (p.seq, p.kind == "checkpoint"))
    return rep


def _checkpoint_valid(keys: PlatformKeys | PublicKeys, c: AuditCheckpoint) -> bool:
    try:
        sig = base64.b64decode(c.signature, validate=True)
    except ValueError:
        return False
    return c.key_id == keys.kid and keys.verify(sig, checkpoint_statement(c.seq, c.hash, c.signed_at, c.key_id))


def purge(keys: PlatformKeys, db: Session) -> int:
    """Delete entries older than the retention period, up to a signed checkpoint (the new anchor)."""
    cutoff = utcnow() - timedelta(days=settings.get(db, "audit_retention_days"))
    last_old = db.scalar(select(func.max(AuditEntry.seq)).where(AuditEntry.ts < cutoff))
    if not last_old:
        return 0
    anchor = db.scalar(select(func.max(AuditCheckpoint.seq)).where(AuditCheckpoint.seq <= last_old))
    if not anchor:
        return 0
    n = db.execute(delete(AuditEntry).where(AuditEntry.seq <= anchor)).rowcount
    record(keys, db, "audit.purged", actor_name="system", details={"through_seq": anchor, "entries": n})
    return n
