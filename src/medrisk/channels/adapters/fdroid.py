"""F-Droid repositories: index v2 (``entry.jar`` → ``index-v2.json``) or v1 (``index-v1.jar``).

Trust like the F-Droid client: the JAR's v1 signature must verify, its signer's SHA-256 must
equal the repository fingerprint (``config.fingerprint``; when not configured, the first
successful crawl pins it and a later change is refused), the signed JSON's digest must match
``MANIFEST.MF``, and v2's ``index-v2.json`` must match the SHA-256 and size that ``entry.json``
gives. An index older than the last one seen is refused (a rollback). Incremental: the
``entry.jar``/``index-v1.jar`` ETag and Last-Modified, then the index timestamp.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, datetime
from typing import Any

from medrisk.analysis.jarsign import entry_digest_matches
from medrisk.analysis.signing import signing_facts
from medrisk.channels.adapters.base import Adapter
from medrisk.channels.model import ChannelError, FetchResult, Listing

MAX_INDEX_BYTES = 256 << 20
_LOCALES = ("zh-CN", "zh", "zh-Hans", "zh-TW", "en-US", "en")


def normalise_fingerprint(fp: str) -> str:
    return re.sub(r"[^0-9a-f]", "", fp.lower())


def verify_signed_jar(jar: bytes, payload: str, where: str) -> tuple[bytes, str]:
    """The verified payload and the signer's SHA-256, or ChannelError naming what failed."""
    try:
        z = zipfile.ZipFile(io.BytesIO(jar))
        infos = {i.filename: i for i in z.infolist()}
        if payload not in infos:
            raise ChannelError(f"{where}: {payload} is missing from the signed archive")
        if sum(i.file_size for i in infos.values()) > MAX_INDEX_BYTES:
            raise ChannelError(f"{where}: the signed index is larger than {MAX_INDEX_BYTES} bytes")
        entries = {n: z.read(n) for n in infos if n.startswith("META-INF/") or n == payload}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ChannelError(f"{where}: not a readable signed JAR ({exc})") from None
    facts = signing_facts(jar, entries, None)
    bad = [e for e in facts.errors if e.startswith("v1")]
    if not facts.schemes.v1 or not facts.certificates:
        raise ChannelError(f"{where}: the index is not signed")
    if bad:
        raise ChannelError(f"{where}: index signature does not verify: {bad[0]}")
    signers = {c.sha256 for c in facts.certificates}
    if len(signers) != 1:
        raise ChannelError(f"{where}: the index has {len(signers)} signers, expected one")
    ok = entry_digest_matches(entries.get("META-INF/MANIFEST.MF", b""), payload, entries[payload])
    if ok is None:
        raise ChannelError(f"{where}: {payload} has no digest in META-INF/MANIFEST.MF")
    if not ok:
        raise ChannelError(f"{where}: {payload} does not match its signed digest (tampered index)")
    return entries[payload], signers.pop()


def _local(value: Any) -> Any:
    if isinstance(value, dict):
        for loc in _LOCALES:
            if loc in value:
                return value[loc]
        return next(iter(value.values()), None)
    return value


def _ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class FDroidAdapter(Adapter):
    kind = "fdroid"

    @property
    def base(self) -> str:
        return self.url.rstrip("/")

    def fetch(self, state: dict[str, Any]) -> FetchResult:
        version = self.config.get("index", "auto")
        if version not in ("auto", "v1", "v2"):
            raise ChannelError(f"index must be auto, v1 or v2, not {version!r}")
        if version in ("auto", "v2"):
            try:
                return self._fetch("v2", state)
            except ChannelError as exc:
                if version == "v2" or "HTTP 404" not in str(exc):
                    raise
        return self._fetch("v1", state)

    def _fetch(self, fmt: str, state: dict[str, Any]) -> FetchResult:
        jar_name, payload = ("entry.jar", "entry.json") if fmt == "v2" else ("index-v1.jar", "index-v1.json")
        url = f"{self.base}/{jar_name}"
        cond = state.get("http", {}) if state.get("format") == fmt else {}
        resp = self.http.get(url, etag=cond.get("etag"), last_modified=cond.get("last_modified"), max_bytes=64 << 20)
        if resp.not_modified:
            return FetchResult(None, state, {"format": fmt, "why": "HTTP 304"})
        body, signer = verify_signed_jar(resp.body, payload, url)
        pinned = normalise_fingerprint(self.config.get("fingerprint") or state.get("fingerprint") or "")
        if pinned and signer != pinned:
            raise ChannelError(f"{url}: signed by {signer}, but the repository fingerprint is {pinned}")
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise ChannelError(f"{url}: {payload} is not JSON ({exc})") from None
        timestamp = _int(doc.get("timestamp") if fmt == "v2" else (doc.get("repo") or {}).get("timestamp"))
        if timestamp is None:
            raise ChannelError(f"{url}: {payload} has no timestamp")
        new_state = {
            "format": fmt,
            "fingerprint": signer,
            "timestamp": timestamp,
            "http": {"etag": resp.headers.get("etag"), "last_modified": resp.headers.get("last-modified")},
        }
        last = state.get("timestamp") if state.get("format") == fmt else None
        if last is not None and timestamp < int(last):
            raise ChannelError(f"{url}: index timestamp {timestamp} is older than the last seen {last} (rollback)")
        info = {"format": fmt, "timestamp": timestamp, "signer": signer}
        if last is not None and timestamp == int(last):
            return FetchResult(None, new_state, {**info, "why": "same index timestamp"})
        if fmt == "v1":
            return FetchResult(self._v1(doc), new_state, info)
        index = doc.get("index") or {}
        name, sha, size = index.get("name"), index.get("sha256"), _int(index.get("size"))
        if not name or not sha:
            raise ChannelError(f"{url}: entry.json does not name the index and its SHA-256")
        iurl = f"{self.base}/{str(name).lstrip('/')}"
        raw = self.http.get(iurl, max_bytes=MAX_INDEX_BYTES).body
        if hashlib.sha256(raw).hexdigest() != str(sha).lower() or (size is not None and len(raw) != size):
            raise ChannelError(f"{iurl}: does not match the SHA-256/size signed in entry.json (tampered index)")
        try:
            return FetchResult(self._v2(json.loads(raw)), new_state, info)
        except (ValueError, AttributeError, TypeError) as exc:
            raise ChannelError(f"{iurl}: not a valid index-v2 document ({exc})") from None

    def _v2(self, doc: dict[str, Any]) -> list[Listing]:
        out: list[Listing] = []
        for pkg, p in (doc.get("packages") or {}).items():
            meta = p.get("metadata") or {}
            icon = _local(meta.get("icon")) or {}
            for v in (p.get("versions") or {}).values():
                f, m = v.get("file") or {}, v.get("manifest") or {}
                out.append(
                    Listing(
                        package=str(pkg),
                        app_name=str(_local(meta.get("name")) or ""),
                        version_name=m.get("versionName"),
                        version_code=_int(m.get("versionCode")),
                        released_at=_ms(v.get("added")),
                        developer=meta.get("authorName"),
                        categories=[str(c) for c in meta.get("categories") or []],
                        summary=str(_local(meta.get("summary")) or ""),
                        apk_url=f"{self.base}/{str(f.get('name', '')).lstrip('/')}" if f.get("name") else None,
                        apk_sha256=f.get("sha256"),
                        apk_size=_int(f.get("size")),
                        signer_sha256=[str(s).lower() for s in (m.get("signer") or {}).get("sha256") or []],
                        icon_url=f"{self.base}/{str(icon['name']).lstrip('/')}" if icon.get("name") else None,
                        icon_sha256=icon.get("sha256"),
                    )
                )
        return out

    def _v1(self, doc: dict[str, Any]) -> list[Listing]:
        apps = {a.get("packageName"): a for a in doc.get("apps") or []}
        out: list[Listing] = []
        for pkg, apks in (doc.get("packages") or {}).items():
            a = apps.get(pkg) or {}
            loc = _local(a.get("localized") or {}) or {}
            for apk in apks:
                out.append(
                    Listing(
                        package=str(pkg),
                        app_name=str(a.get("name") or loc.get("name") or ""),
                        version_name=apk.get("versionName"),
                        version_code=_int(apk.get("versionCode")),
                        released_at=_ms(apk.get("added")),
                        developer=a.get("authorName"),
                        categories=[str(c) for c in a.get("categories") or []],
                        summary=str(a.get("summary") or loc.get("summary") or ""),
                        apk_url=f"{self.base}/{apk['apkName']}" if apk.get("apkName") else None,
                        apk_sha256=apk.get("hash") if apk.get("hashType", "sha256") == "sha256" else None,
                        apk_size=_int(apk.get("size")),
                        signer_sha256=[str(apk["signer"]).lower()] if apk.get("signer") else [],
                        icon_url=f"{self.base}/icons/{a['icon']}" if a.get("icon") else None,
                    )
                )
        return out
