"""HTTP for channels: conditional GETs, size-limited resumable downloads, retries, rate limits.

Standard library only (urllib), one ``HttpClient`` per channel so each channel keeps its own
rate limit. Retries: connection errors, timeouts, 408/429/5xx, with exponential backoff
(``backoff * 2**attempt`` seconds, honouring ``Retry-After`` up to 60 s); other 4xx fail at once.
A download goes to ``<dest>.part`` first and continues from there with a ``Range`` request
after an interruption; the finished file must match the expected SHA-256 and size or it is
deleted and the download fails.
"""

from __future__ import annotations

import hashlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from medrisk import __version__
from medrisk.channels.model import ChannelError

CHUNK = 1 << 16
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class HttpClient:
    def __init__(
        self,
        *,
        rate_per_second: float = 2.0,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.min_interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self._last = 0.0
        self._lock = threading.Lock()
        self.requests = 0

    def _throttle(self) -> None:
        with self._lock:
            wait = self._last + self.min_interval - time.monotonic()
            if wait > 0:
                self.sleep(wait)
            self._last = time.monotonic()

    def _open(self, url: str, headers: dict[str, str]):  # noqa: ANN202 - urllib's response type
        if not url.startswith(("http://", "https://")):
            raise ChannelError(f"{url}: only http and https URLs are fetched")
        req = urllib.request.Request(url, headers={"User-Agent": f"medrisk/{__version__}", **headers})  # noqa: S310
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            self._throttle()
            self.requests += 1
            try:
                return urllib.request.urlopen(req, timeout=self.timeout)  # noqa: S310 - scheme checked above
            except urllib.error.HTTPError as exc:
                if exc.code == 304:
                    return exc
                if exc.code not in RETRY_STATUS:
                    raise ChannelError(f"{url}: HTTP {exc.code} {exc.reason}") from None
                last = exc
                delay = _retry_after(exc.headers.get("Retry-After")) if exc.code in (429, 503) else None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last, delay = exc, None
            if attempt < self.retries:
                self.sleep(delay if delay is not None else self.backoff * (2**attempt))
        raise ChannelError(f"{url}: {_describe(last)} (after {self.retries + 1} attempts)")

    def get(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None, max_bytes: int = 64 << 20
    ) -> Response:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        resp = self._open(url, headers)
        with resp:
            status = getattr(resp, "status", None) or resp.getcode()
            hdrs = {k.lower(): v for k, v in resp.headers.items()}
            if status == 304:
                return Response(304, b"", hdrs)
            body = _read_limited(resp, max_bytes, url)
        return Response(status, body, hdrs)

    def download(self, url: str, dest: Path, *, sha256: str | None, size: int | None, max_bytes: int) -> str:
        """Fetch ``url`` into ``dest``; returns the SHA-256. Resumes a partial ``dest.part``."""
        if size is not None and size > max_bytes:
            raise ChannelError(f"{url}: {size} bytes exceeds the download limit of {max_bytes} bytes")
        part = dest.with_name(dest.name + ".part")
        have = part.stat().st_size if part.exists() else 0
        if have and size is not None and have >= size:
            have = 0  # a stale or oversized part: start again
            part.unlink()
        headers = {"Range": f"bytes={have}-"} if have else {}
        resp = self._open(url, headers)
        with resp:
            status = getattr(resp, "status", None) or resp.getcode()
            mode = "ab" if have and status == 206 else "wb"
            written = have if mode == "ab" else 0
            with part.open(mode) as out:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > max_bytes:
                        out.close()
                        part.unlink(missing_ok=True)
                        raise ChannelError(f"{url}: more than the download limit of {max_bytes} bytes")
                    out.write(chunk)
        digest = _sha256_file(part)
        if size is not None and part.stat().st_size != size:
            got = part.stat().st_size
            if got < size:  # interrupted: keep the part, the next attempt resumes
                raise ChannelError(f"{url}: download incomplete ({got} of {size} bytes), will resume")
            part.unlink()
            raise ChannelError(f"{url}: {got} bytes, the channel says {size}")
        if sha256 and digest != sha256.lower():
            part.unlink()
            raise ChannelError(f"{url}: SHA-256 {digest} does not match the channel's {sha256.lower()}")
        part.replace(dest)
        return digest


def _read_limited(resp, max_bytes: int, url: str) -> bytes:  # noqa: ANN001
    chunks, total = [], 0
    while True:
        chunk = resp.read(CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:
            raise ChannelError(f"{url}: response larger than {max_bytes} bytes")
        chunks.append(chunk)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _retry_after(value: str | None) -> float | None:
    try:
        return min(60.0, max(0.0, float(value))) if value else None
    except ValueError:
        return None


def _describe(exc: Exception | None) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect: {exc.reason}"
    return f"{type(exc).__name__}: {exc}" if exc else "failed"
