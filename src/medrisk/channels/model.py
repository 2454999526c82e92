"""What an adapter reports: listings (one APK of one package version in one channel)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ChannelError(Exception):
    """A channel could not be read (network, signature, format). The message names the problem."""


@dataclass
class Listing:
    package: str
    app_name: str = ""
    version_name: str | None = None
    version_code: int | None = None
    released_at: datetime | None = None
    developer: str | None = None
    downloads: int | None = None
    rating: float | None = None
    categories: list[str] = field(default_factory=list)
    summary: str = ""
    apk_url: str | None = None  # absolute URL, or a path for folder channels
    apk_sha256: str | None = None
    apk_size: int | None = None
    signer_sha256: list[str] = field(default_factory=list)  # as the channel declares it
    icon_url: str | None = None
    icon_sha256: str | None = None
    key: str = ""  # unique within the channel; derived when empty

    def __post_init__(self) -> None:
        if not self.key:
            self.key = f"{self.package}@{self.version_code if self.version_code is not None else self.version_name}"
            if self.apk_sha256:
                self.key += f"#{self.apk_sha256[:16]}"

    def observed(self) -> tuple[Any, ...]:
        """The fields that move between crawls; a change is recorded as an observation."""
        return (self.app_name, self.developer, self.downloads, self.rating)


@dataclass
class FetchResult:
    """``listings`` is None when the channel says nothing changed (ETag, Last-Modified, timestamp)."""

    listings: list[Listing] | None
    state: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
