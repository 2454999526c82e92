"""The circuit-breaker gate (熔断): may this app connect to a hospital backend right now?

Decisions are served from memory. A code is verified (SM2 signature, validity) once and its
facts kept; each filing's disposition state is kept until it changes. The engine invalidates
a filing on every state change in this process; ``refresh`` (every 0.5 s on the scheduler)
picks up changes made elsewhere (another worker, the CLI) from ``dispositions.updated_at``
and ``authcodes.revoked_at``, so a suspension reaches the gate within a second.

The offline mode is an SM2-signed status list (like a CRL): the suspended and revoked
filings and the revoked codes, with its issue time and next update; see gate_client.py.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from medrisk.platform import authcode, versioning
from medrisk.store.models import AuthCode, Disposition, Filing, utcnow

if TYPE_CHECKING:
    from medrisk.loop.engine import LoopService
    from medrisk.platform.context import Platform

STATUS_LIST_TYPE = "medrisk-gate-status-list"
STATUS_LIST_VALIDITY = timedelta(hours=1)
MAX_CACHED_CODES = 200_000


@dataclass(frozen=True)
class CodeInfo:
    jti: str
    filing_id: int
    exp: int
    nbf: int
    version_range: str
    revoked: str | None  # reason, or None


@dataclass(frozen=True)
class Decision:
    allow: bool
    reason: str
    filing_id: int | None = None
    state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "allow": self.allow,
            "decision": "allow" if self.allow else "deny",
            "reason": self.reason,
            "filing_id": self.filing_id,
            "state": self.state,
        }


_INVALID = CodeInfo("", 0, 0, 0, "", "invalid")
_MISSING: Any = object()


def decide_from(
    info: CodeInfo, state: str | None, version: str | None, now: int, allowed: frozenset[str] | set[str]
) -> Decision:
    """The decision from the code's facts and the filing's state (shared by server and client)."""
    if info is _INVALID or not info.jti:
        return Decision(False, "not a valid authorisation code (signature or format)")
    fid = info.filing_id
    if now >= info.exp:
        return Decision(False, "the authorisation code has expired", fid, state)
    if now < info.nbf:
        return Decision(False, "the authorisation code is not yet valid", fid, state)
    if info.revoked:
        return Decision(False, f"the authorisation code is revoked ({info.revoked})", fid, state)
    if state is None:
        return Decision(False, "the filing is not approved", fid, state)
    if state not in allowed:
        return Decision(False, f"the app is {state} (circuit breaker open)", fid, state)
    if version is not None:
        ok = versioning.in_range(version, info.version_range)
        if not ok:
            return Decision(False, f"version {version} is outside the approved range {info.version_range}", fid, state)
    return Decision(True, f"authorised; the app is {state}", fid, state)


class Gate:
    def __init__(self, ctx: Platform, svc: LoopService) -> None:
        self.ctx = ctx
        self.svc = svc
        self._codes: dict[str, CodeInfo] = {}
        self._by_jti: dict[str, str] = {}
        self._states: dict[int, str | None] = {}
        self._lock = threading.Lock()
        self._seen_at: tuple[datetime, datetime] | None = None
        self._status_list: tuple[dict[str, Any], datetime] | None = None

    # --- cache ------------------------------------------------------------------------------------

    def invalidate(self, filing_id: int | None = None) -> None:
        with self._lock:
            if filing_id is None:
                self._states.clear()
                self._codes.clear()
                self._by_jti.clear()
            else:
                self._states.pop(filing_id, None)
            self._status_list = None

    def refresh(self) -> None:
        """Pick up state changes and code revocations made since the last look (any process)."""
        # dispositions carry the loop's clock, authorisation codes the platform's (real) clock
        now, real_now = self.svc.clock.now(), utcnow()
        since = self._seen_at
        self._seen_at = (now - timedelta(seconds=2), real_now - timedelta(seconds=2))  # overlap: late commits
        if since is None:
            return
        with self.ctx.db.session() as db:
            fids = list(db.scalars(select(Disposition.filing_id).where(Disposition.updated_at >= since[0])))
            jtis = list(db.scalars(select(AuthCode.id).where(AuthCode.revoked_at >= since[1])))
        with self._lock:
            for fid in fids:
                self._states.pop(fid, None)
            for jti in jtis:
                code = self._by_jti.pop(jti, None)
                if code is not None:
                    self._codes.pop(code, None)
            if fids or jtis:
                self._status_list = None

    def _code_info(self, code: str) -> CodeInfo:
        info = self._codes.get(code)
        if info is not None:
            return info
        res = authcode.verify_offline(code, self.ctx.keys.public_key, now=datetime.fromtimestamp(0).astimezone())
        if not res.checks.get("signature") or not res.checks.get("key") or res.payload is None:
            info = _INVALID
        else:
            pl = res.payload
            with self.ctx.db.session() as db:
                row = db.get(AuthCode, str(pl.get("jti", "")))
            revoked = "unknown code" if row is None else row.revoke_reason or "revoked" if row.revoked_at else None
            info = CodeInfo(str(pl["jti"]), int(pl["fid"]), int(pl["exp"]), int(pl["nbf"]), str(pl["ver"]), revoked)
        with self._lock:
            if len(self._codes) >= MAX_CACHED_CODES:
                self._codes.clear()
                self._by_jti.clear()
            self._codes[code] = info
            if info.jti:
                self._by_jti[info.jti] = code
        return info

    def _state(self, filing_id: int) -> str | None:
        try:
            return self._states[filing_id]
        except KeyError:
            pass
        with self.ctx.db.session() as db:
            f = db.get(Filing, filing_id)
            d = db.get(Disposition, filing_id)
            state = None if f is None or f.approved_revision is None else (d.state if d else "filed")
        with self._lock:
            self._states[filing_id] = state
        return state

    def try_decide(self, code: str, version: str | None = None) -> Decision | None:
        """The decision if everything it needs is in memory (no I/O: safe on the event loop), else None."""
        info = self._codes.get(code)
        if info is None:
            return None
        state = None
        if info.jti:
            state = self._states.get(info.filing_id, _MISSING)  # one lookup: safe against a concurrent pop
            if state is _MISSING:
                return None
        now = int(self.svc.clock.now().timestamp())
        return decide_from(info, state, version, now, self.svc.policy.gate_allows)

    def decide(self, code: str, version: str | None = None) -> Decision:
        code = (code or "").strip()
        if not code or len(code) > authcode.MAX_CODE_LENGTH:
            return Decision(False, "no authorisation code given" if not code else "not a valid authorisation code")
        info = self._code_info(code)
        state = self._state(info.filing_id) if info.jti else None
        now = int(self.svc.clock.now().timestamp())
        return decide_from(info, state, version, now, self.svc.policy.gate_allows)

    def warm(self, codes: bool = True) -> int:
        """Load every approved filing's state and verify every valid code once (start-up, benchmarks)."""
        with self.ctx.db.session() as db:
            approved = list(db.scalars(select(Filing.id).where(Filing.approved_revision.is_not(None))))
            states = dict(db.execute(select(Disposition.filing_id, Disposition.state)).all())
            active = list(
                db.execute(
                    select(AuthCode.code, AuthCode.payload).where(
                        AuthCode.revoked_at.is_(None), AuthCode.expires_at > utcnow()
                    )
                )
            )
        with self._lock:
            for fid in approved:
                self._states[fid] = states.get(fid, "filed")
        if codes:
            key = self.ctx.keys.public_key
            for code, pl in active[:MAX_CACHED_CODES]:
                if code in self._codes or not authcode.verify_offline(code, key).checks.get("signature"):
                    continue
                info = CodeInfo(str(pl["jti"]), int(pl["fid"]), int(pl["exp"]), int(pl["nbf"]), str(pl["ver"]), None)
                with self._lock:
                    self._codes[code] = info
                    self._by_jti[info.jti] = code
        return len(approved)

    # --- signed status list -------------------------------------------------------------------------

    def status_list(self) -> dict[str, Any]:
        now = self.svc.clock.now()
        cached = self._status_list
        if cached is not None and now < cached[1]:
            return cached[0]
        doc, fresh_until = build_status_list(self.ctx, self.svc, now)
        self._status_list = (doc, fresh_until)
        return doc


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def build_status_list(ctx: Platform, svc: LoopService, now: datetime) -> tuple[dict[str, Any], datetime]:
    blocked = sorted(
        s
        for s in ("filed", "monitoring", "warned", "rectifying", "suspended", "reinstated", "revoked")
        if s not in svc.policy.gate_allows
    )
    with ctx.db.session() as db:
        filings = [
            {"fid": fid, "status": state, "since": int(at.timestamp())}
            for fid, state, at in db.execute(
                select(Disposition.filing_id, Disposition.state, Disposition.updated_at)
                .where(Disposition.state.in_(blocked))
                .order_by(Disposition.filing_id)
            )
        ]
        codes = [
            {"jti": jti, "reason": reason or "revoked", "since": int(at.timestamp())}
            for jti, reason, at in db.execute(
                select(AuthCode.id, AuthCode.revoke_reason, AuthCode.revoked_at)
                .where(AuthCode.revoked_at.is_not(None), AuthCode.expires_at > now)
                .order_by(AuthCode.id)
            )
        ]
    issued = now.replace(microsecond=0)
    next_update = issued + STATUS_LIST_VALIDITY
    payload = {
        "type": STATUS_LIST_TYPE,
        "v": 1,
        "iss": "medrisk",
        "kid": ctx.keys.kid,
        "issued_at": int(issued.timestamp()),
        "next_update": int(next_update.timestamp()),
        "allowed_states": sorted(svc.policy.gate_allows),
        "filings": filings,
        "codes": codes,
    }
    encoded = authcode.b64url(_canonical(payload))
    doc = {
        "payload": encoded,
        "signature": authcode.b64url(ctx.keys.sign(encoded.encode("ascii"))),
        "alg": authcode.ALG,
        "kid": ctx.keys.kid,
        "status_list": payload,  # the same content, readable (only the signed payload counts)
    }
    return doc, min(next_update - timedelta(minutes=10), now + timedelta(minutes=5))
