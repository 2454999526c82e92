"""A small client for hospital backends: ask the gate online, or decide offline from the
platform's SM2-signed status list and the authorisation code itself.

    from medrisk.loop.gate_client import GateClient
    client = GateClient.from_pem(open("platform-key.pem", "rb").read())
    client.load_status_list(open("gate-status.json", "rb").read())   # verify once, cache
    client.check(code, "2.3.1")          # -> Decision(allow=..., reason=...)
    GateClient.online("https://medrisk.example").check(code, "2.3.1")

Offline, the code's signature and validity are checked with the public key (once per code,
then cached), the code's approved version range against the version, and the status list
for a suspended/revoked filing or a revoked code. A status list past its ``next_update`` is
still used but every decision says so (``stale``); a list with a bad signature is refused.
"""

from __future__ import annotations

import json
import time
from typing import Any

from medrisk.crypto import SM2PublicKey, load_public_key_pem
from medrisk.loop.gate import STATUS_LIST_TYPE, CodeInfo, Decision, decide_from
from medrisk.platform import authcode

ALL_STATES = ("filed", "monitoring", "warned", "rectifying", "suspended", "reinstated", "revoked")


class StatusListError(Exception):
    pass


class GateClient:
    def __init__(self, public_key: SM2PublicKey | None = None, base_url: str | None = None) -> None:
        self.public_key = public_key
        self.base_url = base_url.rstrip("/") if base_url else None
        self.status: dict[str, Any] | None = None
        self._blocked_filings: dict[int, str] = {}
        self._revoked_codes: dict[str, str] = {}
        self._allowed: frozenset[str] = frozenset()
        self._codes: dict[str, CodeInfo | None] = {}

    @classmethod
    def from_pem(cls, pem: bytes) -> GateClient:
        return cls(load_public_key_pem(pem))

    @classmethod
    def online(cls, base_url: str) -> GateClient:
        return cls(None, base_url)

    # --- offline ------------------------------------------------------------------------------------

    def load_status_list(self, doc: bytes | str | dict[str, Any]) -> dict[str, Any]:
        if self.public_key is None:
            raise StatusListError("the platform public key is needed to verify a status list")
        if isinstance(doc, bytes | str):
            doc = json.loads(doc)
        if not isinstance(doc, dict):
            raise StatusListError("not a status list")
        try:
            encoded, sig = str(doc["payload"]), authcode.unb64url(str(doc["signature"]))
            payload = json.loads(authcode.unb64url(encoded))
        except (KeyError, ValueError) as exc:
            raise StatusListError(f"not a status list: {exc}") from None
        if not self.public_key.verify(sig, encoded.encode("ascii")):
            raise StatusListError("the status list signature does not verify with the platform key")
        if payload.get("type") != STATUS_LIST_TYPE or payload.get("kid") != self.public_key.fingerprint():
            raise StatusListError("unexpected status list type or signing key")
        if self.status is not None and payload["issued_at"] < self.status["issued_at"]:
            raise StatusListError("older than the status list already loaded (replay)")
        self.status = payload
        self._blocked_filings = {int(e["fid"]): str(e["status"]) for e in payload["filings"]}
        self._revoked_codes = {str(e["jti"]): str(e["reason"]) for e in payload["codes"]}
        self._allowed = frozenset(payload.get("allowed_states") or ())
        return payload

    def _code_info(self, code: str) -> CodeInfo | None:
        if code in self._codes:
            return self._codes[code]
        assert self.public_key is not None
        res = authcode.verify_offline(code, self.public_key, now=None)
        info = None
        if res.checks.get("signature") and res.checks.get("key") and res.payload:
            pl = res.payload
            info = CodeInfo(str(pl["jti"]), int(pl["fid"]), int(pl["exp"]), int(pl["nbf"]), str(pl["ver"]), None)
        if len(self._codes) > 100_000:
            self._codes.clear()
        self._codes[code] = info
        return info

    def check(self, code: str, version: str | None = None, now: float | None = None) -> Decision:
        if self.base_url is not None:
            return self.check_online(code, version)
        if self.status is None:
            raise StatusListError("load a status list first")
        code = (code or "").strip()
        info = self._code_info(code) if code and len(code) <= authcode.MAX_CODE_LENGTH else None
        if info is None:
            return Decision(False, "not a valid authorisation code (signature or format)")
        t = int(time.time() if now is None else now)
        revoked = self._revoked_codes.get(info.jti)
        if revoked:
            info = CodeInfo(info.jti, info.filing_id, info.exp, info.nbf, info.version_range, revoked)
        state = self._blocked_filings.get(info.filing_id, "monitoring")
        d = decide_from(info, state, version, t, self._allowed)
        if t >= self.status["next_update"]:
            return Decision(d.allow, d.reason + " (status list is stale: fetch a new one)", d.filing_id, d.state)
        return d

    # --- online -------------------------------------------------------------------------------------

    def check_online(self, code: str, version: str | None = None, timeout: float = 5.0) -> Decision:
        import httpx

        assert self.base_url is not None
        params = {"code": code, **({"version": version} if version else {})}
        r = httpx.post(f"{self.base_url}/api/v1/gate", json=params, timeout=timeout)
        r.raise_for_status()
        body = r.json()
        return Decision(bool(body["allow"]), str(body["reason"]), body.get("filing_id"), body.get("state"))

    def fetch_status_list(self, timeout: float = 10.0) -> dict[str, Any]:
        import httpx

        assert self.base_url is not None
        r = httpx.get(f"{self.base_url}/.well-known/medrisk/gate-status.json", timeout=timeout)
        r.raise_for_status()
        return self.load_status_list(r.content)
