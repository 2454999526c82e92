"""The running platform: database, blob store, keys, job queue and scan runner, built once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from medrisk.platform.keys import PlatformKeys
from medrisk.store.blobs import BlobStore
from medrisk.store.db import Database

if TYPE_CHECKING:
    from medrisk.channels.service import ChannelService
    from medrisk.jobs.base import JobQueue
    from medrisk.loop.engine import LoopService
    from medrisk.platform.scanning import ScanRunner


@dataclass
class Platform:
    db: Database
    blobs: BlobStore
    keys: PlatformKeys
    data_dir: Path
    jobs: JobQueue | None = None
    scan_runner: ScanRunner | None = None
    # the address header trusted when behind a reverse proxy (None: use the socket peer)
    forwarded_header: str | None = None
    info: dict[str, str] = field(default_factory=dict)
    loop: LoopService | None = None  # the closed loop (medrisk.loop): dispositions, gate, notifications
    channels: ChannelService | None = None  # channel monitoring (medrisk.channels)

    def close(self) -> None:
        if self.loop is not None:
            self.loop.close()
        if self.jobs is not None:
            self.jobs.shutdown()
        if self.scan_runner is not None:
            self.scan_runner.close()
        self.db.dispose()
