"""Back-fill: an institution's signed JSON Lines file imported in chunks through the same
ingestion as the API (``medrisk trails import``)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medrisk.crypto import load_public_key_pem
from medrisk.platform import audit
from medrisk.platform.errors import Invalid

if TYPE_CHECKING:
    from medrisk.platform.context import Platform


class Backfill:
    """Mixed into ``TrailService``."""

    ctx: Platform

    def import_jsonl(
        self, org_id: int, key_id: str, path: Path, signature_path: Path, *, chunk: int = 500, actor: str = "cli"
    ) -> dict[str, Any]:
        """Import a JSON Lines file whose detached SM2 signature (``sign_file``) is by a registered sender.

        Stops at the first invalid line (``line N: field: problem``, field ``line.N.field``); the lines
        before it are in the ledger, and re-running the fixed file is safe (those count as duplicates)."""

        from medrisk.crypto import verify_file

        with self.ctx.db.session() as db:
            src = self._source(db, org_id, key_id)
            key = load_public_key_pem(src.public_key_pem.encode())
        if not verify_file(key, path, signature_path):
            raise Invalid(
                f"{signature_path} is not a valid SM2 signature of {path} by key {key_id[:16]}…", field="signature"
            )
        sig_b64 = base64.b64encode(Path(signature_path).read_bytes()).decode()
        file_hash = _file_sm3(path)
        totals = Counter[str]()
        batch: list[Any] = []
        lines: list[int] = []  # the file line of each event in the batch, for error messages

        def flush() -> None:
            if not batch:
                return

            def send(events: list[Any]) -> None:
                r = self.ingest_for(
                    org_id, key_id, sig_b64, events, via="import", file_sm3=file_hash, field_prefix="line"
                )
                totals.update(
                    accepted=r.accepted, duplicates=r.duplicates, conflicts=r.conflicts, violations=r.violations
                )
                totals["batches"] += 1

            try:
                send(batch)
            except Invalid as exc:
                bad = _chunk_index(exc.field)
                if bad:  # the valid lines before the bad one go into the ledger (a re-run counts them as duplicates)
                    send(batch[:bad])
                message, where = _line_message(exc, lines)
                raise Invalid(message, field=where) from None
            batch.clear()
            lines.clear()

        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    batch.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    flush()
                    raise Invalid(f"line {lineno}: not valid JSON ({exc.msg})", field=f"line.{lineno}") from None
                lines.append(lineno)
                if len(batch) >= chunk:
                    flush()
        flush()
        with self.ctx.db.session() as db:
            audit.record(
                self.ctx.keys,
                db,
                "trail.imported",
                actor_name=actor,
                org_id=org_id,
                target=f"file:{file_hash}",
                details={"file": Path(path).name, **dict(totals)},
            )
        return {"file_sm3": file_hash, **dict(totals)}


def _file_sm3(path: Path) -> str:
    from medrisk.crypto import new_sm3

    h = new_sm3()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.finalize().hex()


def _chunk_index(where: str | None) -> int | None:
    """The index in the chunk of ``line.7.actor.role`` (7), or None for an error of the whole chunk."""
    parts = (where or "").split(".", 2)
    if len(parts) >= 2 and parts[0] == "line" and parts[1].isdigit():
        return int(parts[1])
    return None


def _line_message(exc: Invalid, lines: list[int]) -> tuple[str, str | None]:
    """``line.7.actor.role: …`` (index in the chunk) → ``line 1507: actor.role: …`` and the field
    ``line.1507.actor.role`` (the line in the file)."""
    i = _chunk_index(exc.field)
    if i is not None and i < len(lines):
        parts = (exc.field or "").split(".", 2)
        rest = parts[2] if len(parts) > 2 else ""
        msg = exc.message.split(": ", 1)[-1] if ": " in exc.message else exc.message
        where = f"line.{lines[i]}" + (f".{rest}" if rest else "")
        return f"line {lines[i]}: {rest + ': ' if rest else ''}{msg}", where
    return exc.message, exc.field
