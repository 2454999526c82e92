"""Business-trail service: senders, ingestion into the ledger with rule checks, windowed sweeps,
violations into the closed loop, and the views (violations with evidence, indicators, receipts).

One batch is one transaction: take the institution's chain head (a row lock), skip event ids
already in the ledger, pseudonymise, judge every event against the state so far, append the
chained rows, write back the changed case states and the violations, sign the receipt. Hot-path
writes use SQLAlchemy Core ``executemany`` (500 ORM objects per batch cost more than everything
else together). Violations reach the closed loop after the commit, one loop event per batch.

Here: senders and tokens, ingestion, windowed sweeps. Elsewhere: permissions (``access``), bulk
writes (``bulk``), JSON Lines back-fill (``backfill``), read views and verification (``views``).
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from medrisk.crypto import CryptoError, load_public_key_pem, sm3_hex
from medrisk.platform import audit
from medrisk.platform.errors import Conflict, Forbidden, Invalid
from medrisk.platform.principal import Principal
from medrisk.platform.scope import get_visible, visible_orgs
from medrisk.platform.sessions import TOKEN_PREFIX, token_hash
from medrisk.store.models import (
    ApiToken,
    Filing,
    TrailBatch,
    TrailCase,
    TrailEvent,
    TrailHead,
    TrailIdentity,
    TrailSource,
    TrailViolation,
    utcnow,
)
from medrisk.trails import ledger
from medrisk.trails.access import TRAILS_READ, TRAILS_WRITE, require_institution_admin, require_reader, require_sender
from medrisk.trails.backfill import Backfill
from medrisk.trails.bulk import (
    batch_without_gc,
    copy_rows,
    epoch,
    from_epoch,
    insert_events,
    insert_ignore,
    pg_value,
    to_json,
)
from medrisk.trails.checker import Checker, Hit, Norm, check_window, window_due
from medrisk.trails.pseudo import Pseudonymiser, derive_key, minimise
from medrisk.trails.rules import RuleSet, default_rules
from medrisk.trails.schema import SchemaError, check_event
from medrisk.trails.views import Views

if TYPE_CHECKING:
    from medrisk.platform.context import Platform

log = logging.getLogger(__name__)

MAX_BATCH = 1000
# identities known to be stored (skips their SM4 encryption and insert): ~180 bytes each, so
# bounded (~18 MB); a miss only costs an INSERT … ON CONFLICT DO NOTHING of an identity row
KNOWN_IDENTITIES = 100_000
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


# --- results --------------------------------------------------------------------------------------


@dataclass
class Item:
    index: int
    event_id: str
    status: str  # accepted | duplicate | conflict
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "event_id": self.event_id, "status": self.status, "seq": self.seq}


@dataclass
class BatchResult:
    batch_id: int
    accepted: int
    duplicates: int
    conflicts: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str
    violations: int
    receipt: dict[str, Any]
    items: list[Item] = field(default_factory=list)
    loop_event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head_hash": self.head_hash,
            "violations": self.violations,
            "loop_event_id": self.loop_event_id,
            "items": [i.to_dict() for i in self.items],
            "receipt": self.receipt,
        }


class TrailService(Backfill, Views):
    def __init__(self, ctx: Platform, rules: RuleSet | None = None) -> None:
        self.ctx = ctx
        self.rules = rules or default_rules()
        self._pkey: bytes | None = None
        self._known_identities: set[tuple[int, str, str]] = set()

    @property
    def pseudonym_key(self) -> bytes:
        if self._pkey is None:
            self._pkey = derive_key(self.ctx.keys.keystore.data_key()[1])
        return self._pkey

    # --- senders and tokens ---------------------------------------------------------------------

    def register_source(
        self, db: Session, p: Principal, *, name: str, public_key_pem: str, filing_id: int | None
    ) -> TrailSource:
        require_institution_admin(p)
        try:
            key = load_public_key_pem(public_key_pem.encode("utf-8"))
        except (CryptoError, ValueError):
            raise Invalid("not an SM2 public key in PEM form (BEGIN PUBLIC KEY)", field="public_key_pem") from None
        kid = key.fingerprint()
        if db.scalar(select(TrailSource.id).where(TrailSource.key_id == kid)) is not None:
            raise Conflict("this key is already registered", field="public_key_pem")
        if filing_id is not None:
            f = get_visible(db, p, Filing, filing_id, "filing")
            if f.org_id != p.org_id:
                raise Invalid("the filing belongs to another institution", field="filing_id")
        s = TrailSource(
            org_id=p.org_id,
            filing_id=filing_id,
            name=name,
            key_id=kid,
            public_key_pem=key.to_pem().decode(),
            created_by=p.username,
            created_at=utcnow(),
        )
        db.add(s)
        db.flush()
        audit.record(
            self.ctx.keys,
            db,
            "trail.source_registered",
            actor=p,
            target=f"trail_source:{s.id}",
            details={"key_id": kid, "filing_id": filing_id, "name": name},
        )
        return s

    def revoke_source(self, db: Session, p: Principal, source_id: int) -> TrailSource:
        require_institution_admin(p)
        s = get_visible(db, p, TrailSource, source_id, "trail source")
        if s.revoked_at is None:
            s.revoked_at = utcnow()
            audit.record(self.ctx.keys, db, "trail.source_revoked", actor=p, target=f"trail_source:{s.id}")
        return s

    def list_sources(self, db: Session, p: Principal) -> list[TrailSource]:
        require_reader(p)
        stmt = select(TrailSource).order_by(TrailSource.id)
        if not p.is_admin:
            stmt = stmt.where(TrailSource.org_id.in_(visible_orgs(p)))
        return list(db.scalars(stmt))

    def create_token(
        self, db: Session, p: Principal, *, name: str, read: bool, expires_in_days: int | None
    ) -> tuple[str, ApiToken]:
        """An ingestion token for the institution's systems (scopes trails:write [+ trails:read])."""
        require_institution_admin(p)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        scopes = sorted({TRAILS_WRITE, *([TRAILS_READ] if read else [])})
        t = ApiToken(
            user_id=p.user_id,
            org_id=p.org_id,
            name=name,
            prefix=token[:12],
            token_hash=token_hash(token),
            scopes=scopes,
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        )
        db.add(t)
        db.flush()
        audit.record(
            self.ctx.keys, db, "trail.token_created", actor=p, target=f"api_token:{t.id}", details={"scopes": scopes}
        )
        return token, t

    # --- ingestion ------------------------------------------------------------------------------

    def _source(self, db: Session, org_id: int, key_id: str) -> TrailSource:
        s = db.scalar(select(TrailSource).where(TrailSource.key_id == key_id))
        if s is None or s.org_id != org_id:
            raise Forbidden(f"key {key_id[:16]}… is not a registered sender of this institution", code="unknown_key")
        if s.revoked_at is not None:
            raise Forbidden("this sender key was revoked", code="key_revoked")
        return s

    def ingest(
        self,
        p: Principal,
        key_id: str,
        signature: str,
        events: list[Any],
        *,
        field_prefix: str = "events",
    ) -> BatchResult:
        """A signed batch from an institution's system (the API); see ``ingest_for``."""
        require_sender(p)
        return self.ingest_for(p.org_id, key_id, signature, events, via="api", field_prefix=field_prefix)

    def ingest_for(
        self,
        org_id: int,
        key_id: str,
        signature: str,
        events: list[Any],
        *,
        via: str = "api",
        file_sm3: str | None = None,
        field_prefix: str = "events",
        now: datetime | None = None,
    ) -> BatchResult:
        with batch_without_gc():
            return self._ingest_for(org_id, key_id, signature, events, via, file_sm3, field_prefix, now)

    def _ingest_for(
        self,
        org_id: int,
        key_id: str,
        signature: str,
        events: list[Any],
        via: str,
        file_sm3: str | None,
        field_prefix: str,
        now: datetime | None,
    ) -> BatchResult:
        if not isinstance(events, list) or not events:
            raise Invalid("at least one event is required", field=field_prefix)
        if len(events) > MAX_BATCH:
            raise Invalid(f"at most {MAX_BATCH} events per batch (split it)", field=field_prefix)
        received = now or utcnow()
        checked = []
        for i, ev in enumerate(events):
            try:
                checked.append(check_event(ev, f"{field_prefix}.{i}", now=received))
            except SchemaError as exc:
                raise Invalid(str(exc), field=exc.field) from None
        digests = [ledger.event_digest(c.raw) for c in checked]
        try:
            sig = base64.b64decode(signature, validate=True)
        except (ValueError, TypeError):
            raise Invalid("signature must be standard base64 of a DER SM2 signature", field="signature") from None
        with self.ctx.db.session() as db:
            src = self._source(db, org_id, key_id)
            if file_sm3 is None:
                key = load_public_key_pem(src.public_key_pem.encode())
                if not key.verify(sig, ledger.batch_statement(digests)):
                    raise Invalid(
                        "the SM2 signature does not match these events (sign the batch statement, docs/trails.md)",
                        field="signature",
                        code="bad_signature",
                    )
            result = self._append(db, src, checked, digests, signature, via, file_sm3, received)
        if result.violations and result.loop_event_id:
            self._emit(src.filing_id, result)
        return result

    def _append(
        self,
        db: Session,
        src: TrailSource,
        checked: list[Any],
        digests: list[str],
        signature: str,
        via: str,
        file_sm3: str | None,
        received: datetime,
    ) -> BatchResult:
        org = src.org_id
        if db.get_bind().dialect.name == "postgresql":
            # Plan each lookup for the ledger as it is now. psycopg prepares a statement after five
            # runs and PostgreSQL then keeps a generic plan made while the tables were small: the
            # case-state lookups slowed down with every batch (8,000 -> 3,750 events/s over 400,000
            # events) until autovacuum's ANALYZE invalidated the plan.
            db.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        insert_ignore(db, TrailHead.__table__, [{"org_id": org, "seq": 0, "last_hash": ledger.GENESIS}], ["org_id"])
        head_seq, head_hash = db.execute(
            select(TrailHead.seq, TrailHead.last_hash).where(TrailHead.org_id == org).with_for_update()
        ).one()
        ids = [c.raw["event_id"] for c in checked]
        existing = self._existing(db, org, ids)
        items: list[Item] = []
        fresh: list[int] = []
        seen_here: dict[str, str] = {}
        for i, (c, d) in enumerate(zip(checked, digests)):
            eid = c.raw["event_id"]
            before = existing.get(eid) or seen_here.get(eid)
            if before is not None:
                items.append(Item(i, eid, "duplicate" if before == d else "conflict"))
                continue
            seen_here[eid] = d
            items.append(Item(i, eid, "accepted"))
            fresh.append(i)
        batch = TrailBatch(
            org_id=org,
            source_id=src.id,
            via=via,
            received_at=received,
            count=len(checked),
            accepted=len(fresh),
            digests=digests,
            sender_key_id=src.key_id,
            sender_signature=signature,
            file_sm3=file_sm3,
            head_hash=head_hash,
            receipt_key_id=self.ctx.keys.kid,
            receipt_signature="",
        )
        db.add(batch)
        db.flush()
        pseudo = Pseudonymiser(self.pseudonym_key, org)
        norms: list[tuple[int, Norm, dict[str, Any]]] = []
        for i in fresh:
            n, payload = minimise(checked[i], pseudo)
            norms.append((i, n, payload))
        states, case_ids = self._load_states(db, org, [n for _, n, _ in norms])
        checker = Checker(self.rules, states)
        loaded = set(checker.states)
        rows: list[dict[str, Any]] = []
        hits: list[Hit] = []
        opened: dict[tuple[str, str], float] = {}
        seq, prev = head_seq, head_hash
        for i, n, payload in norms:
            seq += 1
            n.seq = seq
            items[i].seq = seq
            hits += checker.check(n)
            at = checked[i].at
            event_id = checked[i].raw["event_id"]
            c = ledger.content(
                org,
                event_id,
                n.type,
                at,
                received,
                n.prescription_id,
                n.consultation_id,
                ledger.PAYLOAD_MARK,
                digests[i],
                batch.id,
                i,
            )
            payload_json = ledger.canonical_str(payload)
            h = ledger.chain_hash_with_payload(prev, c, payload_json)
            rows.append(
                {
                    "org_id": org,
                    "seq": seq,
                    "event_id": event_id,
                    "type": n.type,
                    "at": at,
                    "received_at": received,
                    "prescription_id": n.prescription_id,
                    "consultation_id": n.consultation_id,
                    "payload": payload,
                    "payload_json": payload_json,  # COPY on PostgreSQL; dropped for SQLite
                    "digest": digests[i],
                    "batch_id": batch.id,
                    "batch_index": i,
                    "prev_hash": prev,
                    "hash": h,
                }
            )
            prev = h
            for key in ("prescription", n.prescription_id), ("consultation", n.consultation_id):
                if key[1] and key not in loaded:
                    opened.setdefault(key, n.at)  # type: ignore[arg-type]
            if n.actor_ref and n.type.startswith("staff.") and ("staff", n.actor_ref) not in loaded:
                opened.setdefault(("staff", n.actor_ref), n.at)
        if rows:
            insert_events(db, rows)
        self._save_states(db, org, checker, case_ids, opened, received)
        self._save_identities(db, org, pseudo)
        loop_event_id = f"trail:{org}:batch:{batch.id}" if hits and src.filing_id else None
        self._save_violations(db, org, src.filing_id, hits, received, loop_event_id)
        first_seq = head_seq + 1 if rows else None
        last_seq = seq if rows else None
        db.execute(update(TrailHead).where(TrailHead.org_id == org).values(seq=seq, last_hash=prev))
        batch.first_seq, batch.last_seq, batch.head_hash = first_seq, last_seq, prev
        stmt = ledger.batch_receipt(batch)
        batch.receipt_signature = base64.b64encode(self.ctx.keys.sign(ledger.canonical(stmt))).decode()
        db.flush()
        return BatchResult(
            batch_id=batch.id,
            accepted=len(fresh),
            duplicates=sum(1 for x in items if x.status == "duplicate"),
            conflicts=sum(1 for x in items if x.status == "conflict"),
            first_seq=first_seq,
            last_seq=last_seq,
            head_hash=prev,
            violations=len(hits),
            receipt=ledger.receipt_document(batch),
            items=items,
            loop_event_id=loop_event_id,
        )

    def _existing(self, db: Session, org: int, ids: list[str]) -> dict[str, str]:
        """Digest of each of ``ids`` already in the institution's ledger (the duplicate check).

        On PostgreSQL as a row-value lookup on the unique (org_id, event_id) index: the plain
        ``event_id IN (…500 parameters)`` got a generic plan that scans the institution's rows by
        another index while the table's statistics lag behind its growth (~100 ms a batch at 20,000
        events, growing with the ledger)."""
        if db.get_bind().dialect.name == "postgresql":
            q = text(
                "SELECT event_id, digest FROM trail_events "
                "WHERE (org_id, event_id) IN (SELECT :org, unnest(CAST(:ids AS varchar[])))"
            )
            return {eid: d for eid, d in db.execute(q, {"org": org, "ids": ids})}
        q = select(TrailEvent.event_id, TrailEvent.digest).where(TrailEvent.org_id == org, TrailEvent.event_id.in_(ids))
        return {eid: d for eid, d in db.execute(q)}

    def _load_states(
        self, db: Session, org: int, norms: list[Norm]
    ) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], int]]:
        want: dict[str, set[str]] = {"prescription": set(), "consultation": set(), "staff": set()}
        for n in norms:
            if n.prescription_id:
                want["prescription"].add(n.prescription_id)
            if n.consultation_id:
                want["consultation"].add(n.consultation_id)
            if n.actor_ref:
                want["staff"].add(n.actor_ref)
        states: dict[tuple[str, str], dict[str, Any]] = {}
        ids: dict[tuple[str, str], int] = {}

        pg = db.get_bind().dialect.name == "postgresql"

        def load(kind: str, keys: set[str]) -> None:
            if not keys:
                return
            if pg:  # one statement text whatever the number of keys, on the unique index (see _existing)
                q: Any = text(
                    "SELECT id, key, state FROM trail_cases WHERE (org_id, kind, key) IN "
                    "(SELECT :org, CAST(:kind AS varchar), unnest(CAST(:keys AS varchar[])))"
                ).bindparams(org=org, kind=kind, keys=sorted(keys))
                q = q.columns(TrailCase.id, TrailCase.key, TrailCase.state)
            else:
                q = select(TrailCase.id, TrailCase.key, TrailCase.state).where(
                    TrailCase.org_id == org, TrailCase.kind == kind, TrailCase.key.in_(sorted(keys))
                )
            for cid, key, state in db.execute(q):
                states[(kind, key)] = dict(state)
                ids[(kind, key)] = cid

        load("prescription", want["prescription"])
        linked = {s.get("consultation") for (k, _), s in states.items() if k == "prescription"}
        load("consultation", want["consultation"] | {c for c in linked if c})
        load("staff", want["staff"])
        return states, ids

    def _save_states(
        self,
        db: Session,
        org: int,
        checker: Checker,
        case_ids: dict[tuple[str, str], int],
        opened: dict[tuple[str, str], float],
        now: datetime,
    ) -> None:
        new_rows, updates = [], []
        for key in checker.touched:
            state = checker.states[key]
            if key in case_ids:
                updates.append({"b_id": case_ids[key], "b_state": state, "b_now": now})
            else:
                at = opened.get(key)
                new_rows.append(
                    {
                        "org_id": org,
                        "kind": key[0],
                        "key": key[1],
                        "state": state,
                        "opened_at": from_epoch(at) if at is not None else now,
                        "window_done": key[0] == "staff",
                        "updated_at": now,
                    }
                )
        if db.get_bind().dialect.name == "postgresql":  # COPY and one UPDATE … FROM unnest: no per-row round trips
            cols = ("org_id", "kind", "key", "state", "opened_at", "window_done", "updated_at")
            copy_rows(db, "trail_cases", cols, [tuple(pg_value(r[c]) for c in cols) for r in new_rows])
            if updates:  # one JSON document of (id, state) pairs: psycopg's array dumper escaped each state
                db.execute(
                    text(
                        "UPDATE trail_cases AS c SET state = v.state, updated_at = :now "
                        "FROM json_to_recordset(CAST(:rows AS json)) AS v(id integer, state json) "
                        "WHERE c.id = v.id"
                    ),
                    {
                        "now": pg_value(now),
                        "rows": to_json([{"id": u["b_id"], "state": u["b_state"]} for u in updates]),
                    },
                )
            return
        if new_rows:
            db.execute(insert(TrailCase.__table__), new_rows)
        if updates:
            t = TrailCase.__table__
            db.execute(
                update(t)
                .where(t.c.id == bindparam("b_id"))
                .values(state=bindparam("b_state"), updated_at=bindparam("b_now")),
                updates,
            )

    def _save_identities(self, db: Session, org: int, pseudo: Pseudonymiser) -> None:
        rows = []
        for (kind, ref), value in pseudo.seen.items():
            k = (org, kind, ref)
            if k in self._known_identities:
                continue
            rows.append(
                {
                    "org_id": org,
                    "kind": kind,
                    "ref": ref,
                    "value_enc": self.ctx.keys.encrypt(value, f"trail_identities:{org}:{kind}:{ref}"),
                    "created_at": utcnow(),
                }
            )
            if len(self._known_identities) > KNOWN_IDENTITIES:
                self._known_identities.clear()
            self._known_identities.add(k)
        insert_ignore(db, TrailIdentity.__table__, rows, ["org_id", "kind", "ref"])

    def _save_violations(
        self,
        db: Session,
        org: int,
        filing_id: int | None,
        hits: list[Hit],
        now: datetime,
        loop_event_id: str | None,
    ) -> None:
        rows = [
            {
                "org_id": org,
                "rule_id": h.rule.id,
                "severity": h.rule.severity,
                "case_kind": h.case_kind,
                "case_key": h.case_key,
                "trigger": f"seq:{h.seq}" if h.seq is not None else "window",
                "event_seq": h.seq,
                "at": from_epoch(h.at),
                "detected_at": now,
                "filing_id": filing_id,
                "loop_event_id": loop_event_id,
            }
            for h in hits
        ]
        insert_ignore(db, TrailViolation.__table__, rows, ["org_id", "rule_id", "case_kind", "case_key", "trigger"])

    def _emit(self, filing_id: int | None, result: BatchResult | None, *, event_id: str | None = None) -> None:
        """Hand a batch's (or a sweep's) violations to the closed loop as one ``trail_violation`` event."""
        loop = self.ctx.loop
        eid = event_id or (result.loop_event_id if result else None)
        if loop is None or filing_id is None or eid is None:
            return
        with self.ctx.db.session() as db:
            rows = list(
                db.execute(
                    select(TrailViolation.id, TrailViolation.rule_id, TrailViolation.severity).where(
                        TrailViolation.loop_event_id == eid
                    )
                )
            )
        if not rows:
            return
        worst = min((r.severity for r in rows), key=lambda s: SEVERITY_RANK.get(s, 9))
        rules = sorted({r.rule_id for r in rows})
        data = {
            "severity": worst,
            "rules": rules,
            "count": len(rows),
            "violation_ids": [r.id for r in rows[:50]],
            "detail": f"{len(rows)} trail violation(s): {', '.join(rules)}",
            "reason": f"business-trail rules {', '.join(rules)} (worst: {worst})",
        }
        try:
            loop.emit("trail_violation", filing_id, eid, data)
        except Exception:  # the violations are stored; the loop event can be replayed (sweep)
            log.exception("could not hand trail violations %s to the closed loop", eid)

    # --- windowed checks ----------------------------------------------------------------------------

    def sweep(self, now: datetime | None = None, limit: int = 5000) -> int:
        """Windowed rules over cases whose window has passed; returns the violations found (idempotent)."""
        now = now or utcnow()
        t_now = epoch(now)
        found = 0
        for kind in ("prescription", "consultation"):
            rules = [r for r in self.rules.windows if r.case == kind]
            if not rules:
                continue
            shortest = min(r.window_hours or 0 for r in rules)
            longest = max(r.window_hours or 0 for r in rules)
            give_up = now - timedelta(hours=longest, days=7)  # cases that never reach their start time
            last_id = 0
            while True:
                with self.ctx.db.session() as db:
                    cases = list(
                        db.execute(
                            select(TrailCase.id, TrailCase.org_id, TrailCase.key, TrailCase.state, TrailCase.opened_at)
                            .where(
                                TrailCase.kind == kind,
                                TrailCase.window_done.is_(False),
                                TrailCase.opened_at <= now - timedelta(hours=shortest),
                                TrailCase.id > last_id,
                            )
                            .order_by(TrailCase.id)
                            .limit(limit)
                        )
                    )
                    if not cases:
                        break
                    last_id = cases[-1].id
                    done, hits_by_org = [], {}
                    for c in cases:
                        due = [r for r in rules if window_due(r, c.state, t_now)]
                        for r in due:
                            if check_window(r, c.state, t_now):
                                start = c.state.get(r.window_from or "") or 0
                                at = start + (r.window_hours or 0) * 3600
                                hits_by_org.setdefault(c.org_id, []).append(Hit(r, kind, c.key, at, None))
                        if len(due) == len(rules) or c.opened_at <= give_up:
                            done.append({"b_id": c.id})
                    for org, hits in hits_by_org.items():
                        filing = self._filing_of(db, org)
                        eid = f"trail:{org}:window:{now.strftime('%Y%m%dT%H%M%S')}" if filing else None
                        self._save_violations(db, org, filing, hits, now, eid)
                        found += len(hits)
                    if done:
                        t = TrailCase.__table__
                        db.execute(update(t).where(t.c.id == bindparam("b_id")).values(window_done=True), done)
                for org in hits_by_org:
                    filing = self._filing_of_new(org)
                    if filing:
                        self._emit(filing, None, event_id=f"trail:{org}:window:{now.strftime('%Y%m%dT%H%M%S')}")
        return found

    def _filing_of(self, db: Session, org: int) -> int | None:
        """The filing violations of an institution's windowed checks belong to: its first sender's filing."""
        return db.scalar(
            select(TrailSource.filing_id)
            .where(TrailSource.org_id == org, TrailSource.filing_id.is_not(None))
            .order_by(TrailSource.revoked_at.is_not(None), TrailSource.id)
            .limit(1)
        )

    def _filing_of_new(self, org: int) -> int | None:
        with self.ctx.db.session() as db:
            return self._filing_of(db, org)


def service_for(ctx: Platform) -> TrailService:
    """The platform's trail service, built once (kept on the platform object)."""
    svc = getattr(ctx, "_trails", None)
    if svc is None:
        svc = TrailService(ctx)
        ctx._trails = svc  # type: ignore[attr-defined]
    return svc


def sm3_of(data: bytes) -> str:
    return sm3_hex(data)
