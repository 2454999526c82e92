"""Back-fill from JSON Lines (``medrisk trails import``): a signed file goes into the ledger in
chunks; a bad line is reported with its line number and field (the lines before it are kept, a
re-run of the fixed file counts them as duplicates); duplicate event ids are accepted once.
On SQLite and PostgreSQL (the ``tw`` fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from medrisk import cli
from medrisk.crypto import sign_file
from medrisk.platform.errors import Invalid
from medrisk.platform.principal import SYSTEM
from medrisk.store.models import TrailBatch, TrailEvent
from medrisk.trails.generator import Institution, generate
from medrisk.trails.service import service_for


def _write(path: Path, lines: list[str], key) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    sign_file(key, path)
    return path


def _dump(events) -> list[str]:
    return [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in events]


def _import(w, path: Path, chunk: int = 50):
    return service_for(w.ctx).import_jsonl(w.sender.org_id, w.sender.key_id, path, Path(f"{path}.sig"), chunk=chunk)


def _in_ledger(w, prefix: str) -> int:
    with w.ctx.db.session() as db:
        return db.scalar(
            select(func.count())
            .select_from(TrailEvent)
            .where(TrailEvent.org_id == w.sender.org_id, TrailEvent.event_id.like(f"{prefix}-%"))
        )


def _verify_ok(w) -> None:
    with w.ctx.db.session() as db:
        rep = service_for(w.ctx).verify(db, SYSTEM, w.sender.org_id)
    assert rep.ok, rep.problems[:3]


def test_good_file(tw, tmp_path):
    g = generate(Institution.make("imp1"), 20, {"RX-03": 0.2, "RX-04": 0.2}, seed=3)
    lines = _dump(g.events)
    lines.insert(30, "")  # blank lines are skipped
    path = _write(tmp_path / "good.jsonl", lines, tw.sender.key)
    res = _import(tw, path)
    assert res["accepted"] == len(g.events) and res["duplicates"] == 0 and res["conflicts"] == 0
    assert res["batches"] == -(-len(g.events) // 50) and res["violations"] >= 2
    assert _in_ledger(tw, "imp1") == len(g.events)
    with tw.ctx.db.session() as db:
        b = db.scalars(select(TrailBatch).where(TrailBatch.via == "import").order_by(TrailBatch.id.desc())).first()
        assert b.file_sm3 == res["file_sm3"] and b.receipt_signature
    _verify_ok(tw)


def test_bad_line_named_with_its_number_and_field(tw, tmp_path):
    g = generate(Institution.make("imp2"), 12, seed=4)
    events = [dict(e) for e in g.events]
    bad_at = 72  # the 22nd event of the second chunk of 50
    events[bad_at] = {**events[bad_at], "actor": {**events[bad_at]["actor"], "role": "surgeon"}}
    lines = _dump(events)
    lines.insert(10, "")  # the reported number is the file's line, blank lines included
    path = _write(tmp_path / "bad.jsonl", lines, tw.sender.key)
    with pytest.raises(Invalid) as exc:
        _import(tw, path)
    line = bad_at + 2  # 1-based, and one blank line before it
    assert exc.value.message.startswith(f"line {line}: actor.role: ")
    assert "surgeon" in exc.value.message or "doctor" in exc.value.message
    assert exc.value.field == f"line.{line}.actor.role"
    assert _in_ledger(tw, "imp2") == bad_at  # every event before the bad line, none from it on
    # the fixed file, re-signed: the earlier lines count as duplicates, the rest is accepted
    path = _write(tmp_path / "fixed.jsonl", _dump(g.events), tw.sender.key)
    res = _import(tw, path)
    assert res["duplicates"] == bad_at and res["accepted"] == len(g.events) - bad_at
    assert _in_ledger(tw, "imp2") == len(g.events)
    _verify_ok(tw)


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ('{"schema_version": 1, "event_id": "imp3-x"', "line.6", "not valid JSON"),
        ("[1, 2]", "line.6", "must be a JSON object"),
        ('{"schema_version": 2, "event_id": "imp3-y"}', "line.6.schema_version", "unknown schema version 2"),
    ],
)
def test_malformed_lines(tw, tmp_path, line, field, words):
    g = generate(Institution.make("imp3"), 1, seed=5, roster=False)
    lines = _dump(g.events[:5]) + [line] + _dump(g.events[5:])
    path = _write(tmp_path / "m.jsonl", lines, tw.sender.key)
    with pytest.raises(Invalid) as exc:
        _import(tw, path)
    assert exc.value.field == field and exc.value.message.startswith("line 6: ") and words in exc.value.message
    assert _in_ledger(tw, "imp3") == 5


def test_duplicates_accepted_once(tw, tmp_path):
    g = generate(Institution.make("imp4"), 8, seed=6)
    events = g.events + g.events[10:40]  # thirty ids twice in the same file (across chunks)
    path = _write(tmp_path / "dup.jsonl", _dump(events), tw.sender.key)
    res = _import(tw, path, chunk=25)
    assert res["accepted"] == len(g.events) and res["duplicates"] == 30
    assert _in_ledger(tw, "imp4") == len(g.events)
    again = _import(tw, path, chunk=25)  # the whole file a second time
    assert again["accepted"] == 0 and again["duplicates"] == len(events)
    assert _in_ledger(tw, "imp4") == len(g.events)
    _verify_ok(tw)


def test_file_not_signed_by_the_sender_is_refused(tw, tmp_path):
    g = generate(Institution.make("imp5"), 2, seed=7)
    path = _write(tmp_path / "s.jsonl", _dump(g.events), tw.sender.key)
    with open(path, "a", encoding="utf-8") as fh:  # changed after signing
        fh.write(_dump(generate(Institution.make("imp5x"), 1, roster=False).events)[0] + "\n")
    with pytest.raises(Invalid) as exc:
        _import(tw, path)
    assert exc.value.field == "signature"
    assert _in_ledger(tw, "imp5") == 0


def test_cli_import(tw, tmp_path, capsys):
    g = generate(Institution.make("imp6"), 5, seed=8)
    path = _write(tmp_path / "cli.jsonl", _dump(g.events), tw.sender.key)
    args = ["--org", str(tw.sender.org_id), "--key-id", tw.sender.key_id]
    db = ["--db", tw.ctx.db.url, "--data-dir", str(tw.ctx.data_dir)]
    capsys.readouterr()
    assert cli.main(["trails", "import", str(path), *args, *db]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["accepted"] == len(g.events)
    assert _in_ledger(tw, "imp6") == len(g.events)
    bad = _write(tmp_path / "cli-bad.jsonl", _dump(g.events[:3]) + ["{"], tw.sender.key)
    assert cli.main(["trails", "import", str(bad), *args, *db]) == 2
    assert "line 4: not valid JSON" in capsys.readouterr().err
