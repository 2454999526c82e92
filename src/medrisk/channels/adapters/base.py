"""The adapter interface: list what a channel offers, fetch one APK, fetch one icon."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from medrisk.channels.fetch import HttpClient
from medrisk.channels.model import FetchResult, Listing


class Adapter(ABC):
    kind: ClassVar[str]

    def __init__(self, url: str, config: dict[str, Any], http: HttpClient) -> None:
        self.url = url
        self.config = config
        self.http = http

    @abstractmethod
    def fetch(self, state: dict[str, Any]) -> FetchResult:
        """All listings now offered, or ``listings=None`` when nothing changed since ``state``.

        Raise ``ChannelError`` with a message naming the problem when the channel cannot be read.
        """

    def download(self, listing: Listing, dest: Path, max_bytes: int) -> str:
        """Put the listing's APK at ``dest`` and return its SHA-256."""
        if not listing.apk_url:
            from medrisk.channels.model import ChannelError

            raise ChannelError(f"{listing.key}: the channel gives no download address")
        return self.http.download(
            listing.apk_url, dest, sha256=listing.apk_sha256, size=listing.apk_size, max_bytes=max_bytes
        )

    def icon(self, listing: Listing) -> bytes | None:
        if not listing.icon_url:
            return None
        return self.http.get(listing.icon_url, max_bytes=1 << 20).body
