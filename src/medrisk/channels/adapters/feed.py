"""The JSON feed (``channels/feed.schema.json``) for app-store exports and partners.

Validated field by field with errors that name the entry and field (no JSON-Schema library at
run time; the tests check this validator against the schema file). Incremental by ETag and
Last-Modified, then ``generated_at``; an older ``generated_at`` than the last seen is refused.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from medrisk.channels.adapters.base import Adapter
from medrisk.channels.model import ChannelError, FetchResult, Listing

SCHEMA = "medrisk-channel-feed/1"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def _time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ChannelError(f"{where}: not an ISO 8601 date-time: {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _opt(entry: dict[str, Any], key: str, types: tuple[type, ...], where: str) -> Any:
    v = entry.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, types):
        raise ChannelError(f"{where}.{key}: expected {' or '.join(t.__name__ for t in types)}, got {v!r}"[:300])
    return v


def parse_feed(doc: Any, base_url: str) -> tuple[list[Listing], datetime | None]:
    if not isinstance(doc, dict):
        raise ChannelError("feed: the document must be a JSON object")
    if doc.get("schema") != SCHEMA:
        raise ChannelError(f"feed.schema: expected {SCHEMA!r}, got {doc.get('schema')!r}")
    apps = doc.get("apps")
    if not isinstance(apps, list):
        raise ChannelError("feed.apps: must be a list")
    out = []
    for i, e in enumerate(apps):
        where = f"feed.apps[{i}]"
        if not isinstance(e, dict):
            raise ChannelError(f"{where}: must be an object")
        for key in ("package", "name", "version_name"):
            if not isinstance(e.get(key), str) or (key == "package" and not e[key]):
                raise ChannelError(f"{where}.{key}: required string")
        code = _opt(e, "version_code", (int,), where)
        downloads = _opt(e, "downloads", (int,), where)
        rating = _opt(e, "rating", (int, float), where)
        if rating is not None and not 0 <= rating <= 5:
            raise ChannelError(f"{where}.rating: must be between 0 and 5")
        for key in ("version_code", "downloads", "apk_size"):
            if (_opt(e, key, (int,), where) or 0) < 0:
                raise ChannelError(f"{where}.{key}: must not be negative")
        sha = _opt(e, "apk_sha256", (str,), where)
        if sha is not None and not _HEX64.match(sha):
            raise ChannelError(f"{where}.apk_sha256: must be 64 hex digits")
        signers = e.get("signer_sha256") or []
        if not isinstance(signers, list) or not all(isinstance(s, str) and _HEX64.match(s) for s in signers):
            raise ChannelError(f"{where}.signer_sha256: must be a list of 64-hex-digit fingerprints")
        cats = e.get("categories") or []
        if not isinstance(cats, list):
            raise ChannelError(f"{where}.categories: must be a list")
        apk_url = _opt(e, "apk_url", (str,), where)
        icon_url = _opt(e, "icon_url", (str,), where)
        out.append(
            Listing(
                package=e["package"][:255],
                app_name=e["name"][:300],
                version_name=e["version_name"][:128],
                version_code=code,
                released_at=_time(e.get("released_at"), f"{where}.released_at"),
                developer=(_opt(e, "developer", (str,), where) or None),
                downloads=downloads,
                rating=float(rating) if rating is not None else None,
                categories=[str(c) for c in cats],
                summary=str(e.get("summary") or ""),
                apk_url=urljoin(base_url, apk_url) if apk_url else None,
                apk_sha256=sha.lower() if sha else None,
                apk_size=_opt(e, "apk_size", (int,), where),
                signer_sha256=[s.lower() for s in signers],
                icon_url=urljoin(base_url, icon_url) if icon_url else None,
            )
        )
    return out, _time(doc.get("generated_at"), "feed.generated_at")


class FeedAdapter(Adapter):
    kind = "feed"

    def fetch(self, state: dict[str, Any]) -> FetchResult:
        cond = state.get("http", {})
        resp = self.http.get(self.url, etag=cond.get("etag"), last_modified=cond.get("last_modified"))
        if resp.not_modified:
            return FetchResult(None, state, {"why": "HTTP 304"})
        try:
            doc = json.loads(resp.body)
        except ValueError as exc:
            raise ChannelError(f"{self.url}: the feed is not JSON ({exc})") from None
        listings, generated = parse_feed(doc, self.url)
        new_state = {"http": {"etag": resp.headers.get("etag"), "last_modified": resp.headers.get("last-modified")}}
        info: dict[str, Any] = {}
        if generated is not None:
            new_state["generated_at"] = generated.isoformat()
            info["generated_at"] = generated.isoformat()
            last = state.get("generated_at")
            if last and generated < datetime.fromisoformat(last):
                raise ChannelError(f"{self.url}: feed generated_at {generated} is older than the last seen {last}")
            if last and generated == datetime.fromisoformat(last):
                return FetchResult(None, new_state, {**info, "why": "same generated_at"})
        return FetchResult(listings, new_state, info)
