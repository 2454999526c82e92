"""Tampering with the ledger directly in the database (SQL, as a database administrator could):
an edited, deleted, reordered or inserted event row → ``verify`` (the service and
``medrisk trails verify``) names the first bad position; after the rows are put back it passes.
On SQLite and PostgreSQL (the ``tw`` fixture)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, text, update

from medrisk import cli
from medrisk.platform.principal import SYSTEM
from medrisk.store.models import TrailEvent, TrailHead
from medrisk.trails import ledger
from medrisk.trails.generator import Institution, chunks, generate
from medrisk.trails.service import service_for

INST = Institution.make("led", doctors=3, pharmacists=2, couriers=2)
EVENTS = generate(INST, 12, seed=5).events  # 7 roster events + 120 flow events
BATCH = 40  # receipts end at 40, 80, 120, 127
K = 57  # an event in the middle of the second batch


@pytest.fixture(scope="module")
def led(tw):
    s = tw.sender
    for b in chunks(EVENTS, BATCH):
        r = tw.client.post("/api/v1/trails/batches", json=s.body(b), headers=s.headers)
        assert r.status_code == 200, r.text
    pem = tw.ctx.data_dir / "platform-public.pem"
    pem.write_bytes(tw.ctx.keys.public_pem())
    tw.pem = pem
    return tw


def _rows(db, org: int) -> list[dict[str, Any]]:
    t = TrailEvent.__table__
    return [dict(r._mapping) for r in db.execute(select(t).where(t.c.org_id == org).order_by(t.c.seq))]


@contextmanager
def tampered(w) -> Iterator[Any]:
    """Yields a committed-on-exit session to tamper with; afterwards the original rows are restored."""
    org = w.sender.org_id
    with w.ctx.db.session() as db:
        saved = _rows(db, org)
        head = db.execute(select(TrailHead.seq, TrailHead.last_hash).where(TrailHead.org_id == org)).one()
    try:
        with w.ctx.db.session() as db:
            yield db
    finally:
        with w.ctx.db.session() as db:
            t = TrailEvent.__table__
            db.execute(delete(t).where(t.c.org_id == org))
            db.execute(insert(t), saved)
            db.execute(update(TrailHead).where(TrailHead.org_id == org).values(seq=head.seq, last_hash=head.last_hash))


def _service(w) -> ledger.Report:
    with w.ctx.db.session() as db:
        return service_for(w.ctx).verify(db, SYSTEM, w.sender.org_id)


def _cli(w, capsys, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = cli.main(["trails", "verify", "--db", w.ctx.db.url, "--public-key", str(w.pem), *extra])
    return rc, capsys.readouterr().out


def _first(w, capsys) -> tuple[int, str]:
    """(seq, kind) of the first problem, the same from the service and from the CLI."""
    rep = _service(w)
    assert not rep.ok
    p = rep.problems[0]
    assert p.org_id == w.sender.org_id
    rc, out = _cli(w, capsys, "--json")
    assert rc == 1
    assert json.loads(out)["first_problem"] == p.to_dict()
    rc, out = _cli(w, capsys)
    assert rc == 1
    assert f"TAMPERED: first problem in institution {p.org_id} at position {p.seq} ({p.kind})" in out
    return p.seq, p.kind


def _seq(db, org: int, seq: int) -> TrailEvent:
    return db.scalar(select(TrailEvent).where(TrailEvent.org_id == org, TrailEvent.seq == seq))


def _move(db, org: int, from_seq: int, by: int) -> None:
    """seq += by for every event from ``from_seq`` on (in two steps: (org, seq) is unique)."""
    t = TrailEvent.__table__
    db.execute(update(t).where(t.c.org_id == org, t.c.seq >= from_seq).values(seq=-(t.c.seq + by)))
    db.execute(update(t).where(t.c.org_id == org, t.c.seq < 0).values(seq=-t.c.seq))


def _forged(db, org: int, seq: int, prev: TrailEvent, **over: Any) -> dict[str, Any]:
    """A plausible event row at ``seq`` chained correctly after ``prev`` (the attacker knows the algorithm)."""
    row = {c.name: getattr(prev, c.key) for c in TrailEvent.__table__.columns if c.name != "id"}
    row.update(seq=seq, event_id=f"forged-{seq}", prev_hash=prev.hash, **over)
    row["payload"] = {**row["payload"], "event_id": row["event_id"]}
    c = ledger.content(
        org,
        row["event_id"],
        row["type"],
        row["at"],
        row["received_at"],
        row["prescription_id"],
        row["consultation_id"],
        row["payload"],
        row["digest"],
        row["batch_id"],
        row["batch_index"],
    )
    row["hash"] = ledger.chain_hash(prev.hash, c)
    return row


def test_untouched_ledger_verifies(led, capsys):
    rep = _service(led)
    assert rep.ok and rep.events == len(EVENTS) and rep.batches == 4
    rc, out = _cli(led, capsys)
    assert rc == 0 and f"trail ledger OK: {len(EVENTS)} events" in out


def _json_edit(db, org: int, seq: int) -> None:
    """The payload's actor role changed by hand (to a role no event of the generator has)."""
    if db.get_bind().dialect.name == "postgresql":
        sql = (
            "UPDATE trail_events SET payload = jsonb_set(payload::jsonb, '{actor,role}', '\"nurse\"')::json "
            "WHERE org_id = :o AND seq = :s"
        )
    else:
        sql = (
            "UPDATE trail_events SET payload = json_set(payload, '$.actor.role', 'nurse') "
            "WHERE org_id = :o AND seq = :s"
        )
    assert db.execute(text(sql), {"o": org, "s": seq}).rowcount == 1


@pytest.mark.parametrize("what", ["payload", "column", "digest", "hash", "prev_hash", "first", "last"])
def test_edited_row(led, capsys, what):
    org = led.sender.org_id
    seq = {"first": 1, "last": len(EVENTS)}.get(what, K)
    with tampered(led) as db:
        if what in ("payload", "first", "last"):
            _json_edit(db, org, seq)
        else:
            col, value = {
                "column": ("prescription_id", "RX-led-999"),
                "digest": ("digest", "ab" * 32),
                "hash": ("hash", "cd" * 32),
                "prev_hash": ("prev_hash", "ef" * 32),
            }[what]
            db.execute(
                text(f"UPDATE trail_events SET {col} = :v WHERE org_id = :o AND seq = :s"),
                {"v": value, "o": org, "s": seq},
            )
        db.commit()
        assert _first(led, capsys) == (seq, "edited")
    assert _service(led).ok


def test_edit_with_the_chain_recomputed_is_caught_by_the_signed_receipt(led, capsys):
    """An attacker who edits an event and re-chains every later row (and the head) leaves a consistent
    chain: the platform's signed receipts no longer match, and verify names the batch that holds the edit."""
    org = led.sender.org_id
    with tampered(led) as db:
        _json_edit(db, org, K)
        db.commit()
        prev = _seq(db, org, K - 1).hash
        for e in db.scalars(
            select(TrailEvent).where(TrailEvent.org_id == org, TrailEvent.seq >= K).order_by(TrailEvent.seq)
        ):
            h = ledger.chain_hash(prev, ledger.row_content(e))
            db.execute(
                update(TrailEvent.__table__).where(TrailEvent.__table__.c.id == e.id).values(prev_hash=prev, hash=h)
            )
            prev = h
        db.execute(update(TrailHead).where(TrailHead.org_id == org).values(last_hash=prev))
        db.commit()
        rep = _service(led)
        assert [p.kind for p in rep.problems if p.kind != "receipt"] == []
        seq, kind = _first(led, capsys)
        assert (seq, kind) == (41, "receipt")  # the batch of events 41-80 that holds event 57
        assert "events 41-80" in rep.problems[0].message
    assert _service(led).ok


@pytest.mark.parametrize("where", [K, 1, BATCH + 1, len(EVENTS)])
def test_deleted_row(led, capsys, where):
    org = led.sender.org_id
    with tampered(led) as db:
        db.execute(text("DELETE FROM trail_events WHERE org_id = :o AND seq = :s"), {"o": org, "s": where})
        db.commit()
        assert _first(led, capsys) == (where, "removed")
    assert _service(led).ok


def test_deleted_rows_and_later_ones_renumbered(led, capsys):
    """The gap hidden by renumbering: the first renumbered row no longer links to its predecessor."""
    org = led.sender.org_id
    with tampered(led) as db:
        db.execute(
            text("DELETE FROM trail_events WHERE org_id = :o AND seq IN (:a, :b)"), {"o": org, "a": K, "b": K + 1}
        )
        _move(db, org, K + 2, -2)
        db.execute(text("UPDATE trail_heads SET seq = seq - 2 WHERE org_id = :o"), {"o": org})
        db.commit()
        assert _first(led, capsys) == (K, "removed")
    assert _service(led).ok


@pytest.mark.parametrize("where", [K, BATCH])  # inside a batch; across two batches (40 ↔ 41)
def test_reordered_rows(led, capsys, where):
    org = led.sender.org_id
    with tampered(led) as db:
        db.execute(text("UPDATE trail_events SET seq = -1 WHERE org_id = :o AND seq = :s"), {"o": org, "s": where})
        db.execute(
            text("UPDATE trail_events SET seq = :s WHERE org_id = :o AND seq = :n"),
            {"o": org, "s": where, "n": where + 1},
        )
        db.execute(text("UPDATE trail_events SET seq = :n WHERE org_id = :o AND seq = -1"), {"o": org, "n": where + 1})
        db.commit()
        assert _first(led, capsys) == (where, "reordered")
    assert _service(led).ok


def test_row_moved_far(led, capsys):
    """Event 10 moved behind event 100 (every row in between shifted down by one)."""
    org = led.sender.org_id
    with tampered(led) as db:
        db.execute(text("UPDATE trail_events SET seq = -100000 WHERE org_id = :o AND seq = 10"), {"o": org})
        _move(db, org, 11, -1)
        db.execute(text("UPDATE trail_events SET seq = 100 WHERE org_id = :o AND seq = -100000"), {"o": org})
        db.commit()
        seq, kind = _first(led, capsys)
        assert seq == 10 and kind in ("reordered", "removed")
    assert _service(led).ok


@pytest.mark.parametrize("how", ["chained", "naive"])
def test_inserted_row_in_the_middle(led, capsys, how):
    """A forged row at K (the later rows shifted up): correctly chained to K-1, or with a made-up hash."""
    org = led.sender.org_id
    with tampered(led) as db:
        prev = _seq(db, org, K - 1)
        row = _forged(db, org, K, prev)
        if how == "naive":
            row["hash"] = "12" * 32
        _move(db, org, K, 1)
        db.execute(insert(TrailEvent.__table__), [row])
        db.execute(text("UPDATE trail_heads SET seq = seq + 1 WHERE org_id = :o"), {"o": org})
        db.commit()
        assert _first(led, capsys) == (K, "inserted")
    assert _service(led).ok


@pytest.mark.parametrize("head", ["kept", "advanced"])
def test_inserted_row_at_the_end(led, capsys, head):
    """A forged, correctly chained row after the last one; with or without the head moved along."""
    org = led.sender.org_id
    n = len(EVENTS)
    with tampered(led) as db:
        row = _forged(db, org, n + 1, _seq(db, org, n))
        db.execute(insert(TrailEvent.__table__), [row])
        if head == "advanced":
            db.execute(
                text("UPDATE trail_heads SET seq = :n, last_hash = :h WHERE org_id = :o"),
                {"o": org, "n": n + 1, "h": row["hash"]},
            )
        db.commit()
        assert _first(led, capsys) == (n + 1, "inserted")
    assert _service(led).ok


def test_problems_in_two_places_first_is_named_first(led, capsys):
    org = led.sender.org_id
    with tampered(led) as db:
        db.execute(text("DELETE FROM trail_events WHERE org_id = :o AND seq = 100"), {"o": org})
        _json_edit(db, org, 30)
        db.commit()
        assert _first(led, capsys) == (30, "edited")
        kinds = [(p.seq, p.kind) for p in _service(led).problems]
        assert (100, "removed") in kinds
    assert _service(led).ok


def test_chain_hash_with_payload_is_the_chain_hash():
    """The ingestion path hashes the payload's JSON once; verify hashes the whole content: same bytes."""
    from datetime import UTC, datetime

    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    payload = {"actor": {"ref": "s_1", "role": "doctor"}, "data": {"药": "二甲双胍", "n": [1, None, True]}}
    args = (7, "e-1", "prescription.created", at, at, "RX-1", "C-1")
    full = ledger.content(*args, payload, "ab" * 32, 3, 4)
    marked = ledger.content(*args, ledger.PAYLOAD_MARK, "ab" * 32, 3, 4)
    assert ledger.chain_hash_with_payload(ledger.GENESIS, marked, ledger.canonical_str(payload)) == ledger.chain_hash(
        ledger.GENESIS, full
    )


# --- canonical JSON: the bytes hashed and signed must not depend on the encoder --------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)  # beyond 64 bits orjson refuses: json answers
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
)
_json_docs = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)


def _reference(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@settings(max_examples=400, deadline=None)
@given(_json_docs)
def test_canonical_bytes_are_json_dumps_sorted(doc: Any) -> None:
    assert ledger.canonical(doc) == _reference(doc)
    assert ledger.canonical_str(doc) == _reference(doc).decode("utf-8")


def test_canonical_of_generated_events_and_odd_values() -> None:
    from datetime import UTC, datetime

    from medrisk.trails.generator import INJECT

    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = generate(Institution.make("c"), 30, {r: 0.05 for r in INJECT}, seed=3, start=start).events
    assert all(ledger.canonical(e) == _reference(e) for e in events)
    odd = {"\x00": "\x1f\x7f\u2028\u00e9中", "n": 2**64}  # control characters, an integer beyond 64 bits
    assert ledger.canonical(odd) == _reference(odd)
    assert ledger.canonical({2: "b", 1: "a"}) == _reference({2: "b", 1: "a"}) == b'{"1":"a","2":"b"}'
    with pytest.raises(TypeError):
        ledger.canonical({"at": start})  # as json.dumps: a datetime is not JSON
