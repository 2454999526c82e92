"""Resource limits applied to every scan (configurable from the CLI)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 300 * 1024 * 1024  # the package on disk
    max_entries: int = 100_000  # zip entries
    max_entry_bytes: int = 256 * 1024 * 1024  # one inflated entry
    max_total_inflated_bytes: int = 1024 * 1024 * 1024  # all entries we inflate
    max_ratio: float = 200.0  # inflated / compressed, per entry bigger than 1 MiB
    max_dex_bytes: int = 128 * 1024 * 1024  # one inflated classes*.dex
    timeout_seconds: float = 120.0  # wall time per package
    memory_bytes: int = 2 * 1024 * 1024 * 1024  # address-space limit of a scan worker


DEFAULT_LIMITS = Limits()
