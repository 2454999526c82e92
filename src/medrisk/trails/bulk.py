"""Bulk writes of the ingestion hot path: INSERT … ON CONFLICT DO NOTHING, the ledger rows by
COPY on PostgreSQL (executemany on SQLite), and the garbage collector paused inside a batch."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.orm import Session

from medrisk.store.models import TrailEvent


@contextmanager
def batch_without_gc() -> Iterator[None]:
    """No cyclic garbage collection in the middle of a batch. A batch's thousands of short-lived
    objects (events, states, rows) survived the young collections while it ran, were promoted
    and set off full collections of the whole heap every few batches: the slowest batches (p99).
    Freed by reference counting when the batch ends, they never reach an older generation now."""
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def insert_ignore(db: Session, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT … ON CONFLICT DO NOTHING on both databases."""
    if not rows:
        return
    if db.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    db.execute(dialect_insert(table).on_conflict_do_nothing(index_elements=keys), rows)


EVENT_COLUMNS = (
    "org_id",
    "seq",
    "event_id",
    "type",
    "at",
    "received_at",
    "prescription_id",
    "consultation_id",
    "payload",
    "digest",
    "batch_id",
    "batch_index",
    "prev_hash",
    "hash",
)


def insert_events(db: Session, rows: list[dict[str, Any]]) -> None:
    """Append a batch's ledger rows. On PostgreSQL with ``COPY`` in the batch's transaction: the
    ``executemany`` of 500 rows cost about three times as much (one INSERT per row in a pipeline)."""
    if db.get_bind().dialect.name != "postgresql":
        db.execute(insert(TrailEvent.__table__), [{k: v for k, v in r.items() if k != "payload_json"} for r in rows])
        return
    copy_rows(
        db,
        "trail_events",
        EVENT_COLUMNS,
        [
            (
                r["org_id"],
                r["seq"],
                r["event_id"],
                r["type"],
                r["at"].astimezone(UTC).replace(tzinfo=None),  # naive UTC, as UTCDateTime stores it
                r["received_at"].astimezone(UTC).replace(tzinfo=None),
                r["prescription_id"],
                r["consultation_id"],
                r.get("payload_json") or to_json(r["payload"]),
                r["digest"],
                r["batch_id"],
                r["batch_index"],
                r["prev_hash"],
                r["hash"],
            )
            for r in rows
        ],
    )


def to_json(x: Any) -> str:
    """Compact JSON text for the database's JSON columns (orjson; json for what it refuses)."""
    try:
        return orjson.dumps(x, option=orjson.OPT_PASSTHROUGH_DATETIME).decode("utf-8")
    except TypeError:
        return json.dumps(x, ensure_ascii=False, separators=(",", ":"))


def pg_value(v: Any) -> Any:
    """A value as COPY wants it: JSON as text, datetimes as naive UTC (how UTCDateTime stores them)."""
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None)
    if isinstance(v, (dict, list)):
        return to_json(v)
    return v


def copy_rows(db: Session, table: str, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """``COPY table (cols) FROM STDIN`` on the session's connection, inside its transaction."""
    if not rows:
        return
    raw = db.connection().connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)


def epoch(dt: datetime) -> float:
    return dt.timestamp()


def from_epoch(x: float | None) -> datetime | None:
    return None if x is None else datetime.fromtimestamp(x, UTC)
