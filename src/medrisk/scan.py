"""One scan, end to end: package bytes -> indicators -> findings -> score and grade.

The CLI, and later the platform's workers, call ``scan_bytes``/``scan_paths``; the
result is the JSON-ready *scan result* described by
``schema/scan-result.schema.json``. Every scan runs under a wall-time limit
(SIGALRM in the scanning process) and an address-space limit (RLIMIT_AS in the
worker), so a hostile package cannot hang or exhaust the machine.
"""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medrisk.analysis.apk import analyse_apk
from medrisk.analysis.errors import AnalysisError, LimitExceeded
from medrisk.analysis.libraries import is_library
from medrisk.analysis.limits import Limits
from medrisk.privacy.inventory import resolve_app_type
from medrisk.privacy.policy import load_policy_file
from medrisk.risk.scoring import RiskModel, load_model, score
from medrisk.rules import suppress
from medrisk.rules.engine import Engine
from medrisk.rules.loader import load_library_versioned
from medrisk.rules.model import SEVERITY_ORDER

SCHEMA_VERSION = "1.0"


@dataclass
class ScanOptions:
    limits: Limits = field(default_factory=Limits)
    rule_dirs: list[Path] = field(default_factory=list)
    risk_model: Path | None = None
    suppressions: Path | None = None
    app_type: str | None = None
    privacy_policy: Path | None = None


class Scanner:
    """Loaded rule library and risk model, reused for many scans."""

    def __init__(self, options: ScanOptions | None = None) -> None:
        self.options = options or ScanOptions()
        self.rules, self.library_version = load_library_versioned(self.options.rule_dirs)
        self.engine = Engine(self.rules)
        self.model: RiskModel = load_model(self.options.risk_model)
        self.suppressions = suppress.load_suppressions(self.options.suppressions) if self.options.suppressions else []
        warm_caches()
        resolve_app_type(self.options.app_type)  # ValueError naming the valid types, before any scan
        self.policy_text: str | None = None
        if self.options.privacy_policy:
            try:
                self.policy_text = load_policy_file(self.options.privacy_policy)
            except OSError as exc:
                raise ValueError(
                    f"{self.options.privacy_policy}: cannot read the privacy policy: {exc.strerror}"
                ) from exc

    def scan_bytes(
        self, data: bytes, name: str, *, policy_text: str | None = None, policy_source: str | None = None
    ) -> dict[str, Any]:
        """``policy_text`` (with its ``policy_source``) replaces the options' privacy policy for this scan."""
        if policy_text is None:
            policy_text = self.policy_text
            policy_source = str(self.options.privacy_policy) if self.options.privacy_policy else None
        doc = analyse_apk(
            data,
            name,
            self.options.limits,
            policy_text=policy_text,
            policy_source=policy_source,
            app_type=self.options.app_type,
        )
        return self.evaluate(doc)

    def evaluate(self, doc: dict[str, Any]) -> dict[str, Any]:
        ev = self.engine.evaluate(doc)
        package = doc["manifest"]["package"]
        for f in ev.findings:
            for e in f.evidence:
                e.library = is_library(e.cls, package)
        findings = suppress.apply(ev.findings, self.suppressions)
        sc = score(self.model, findings)
        findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.rule.id, f.suppressed))
        m = doc["manifest"]
        return {
            "schema_version": SCHEMA_VERSION,
            "file": doc["file"],
            "app": {
                "package": m["package"],
                "version_name": m["version_name"],
                "version_code": m["version_code"],
                "min_sdk": m["min_sdk"],
                "target_sdk": m["target_sdk"],
            },
            "rules_version": self.library_version,
            "sdk_database_version": doc.get("sdks", {}).get("database_version", ""),
            "risk": sc.to_dict(),
            "summary": _summary(findings),
            "findings": [f.to_dict() for f in findings],
            "indicators": doc,
            "errors": sorted(ev.errors + doc["code"].get("errors", [])),
        }


def warm_caches() -> None:
    """Load every data table once, before worker processes fork, so that no scan pays for it."""
    from medrisk.analysis import code, libraries, manifest
    from medrisk.privacy import inventory, policy, sdks

    code.load_catalog()
    libraries.is_library("warm.up")
    manifest._permission_table()
    sdks.load_database()
    inventory.load_catalog()
    inventory.load_app_types()
    policy.load_vocabulary()


def _summary(findings: list[Any]) -> dict[str, int]:
    counts = {s: 0 for s in SEVERITY_ORDER}
    counts["suppressed"] = 0
    for f in findings:
        if f.suppressed:
            counts["suppressed"] += 1
        else:
            counts[f.severity] += 1
    return counts


def library_version(extra: list[Path] | None = None) -> str:
    """``<medrisk version>+<hash of the rule files>``, as in every scan result."""
    return load_library_versioned(extra)[1]


def failure(path: str, code: str, message: str) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "file": {"name": path}, "error": {"code": code, "message": message}}


# --- running scans under limits -------------------------------------------------------------

_SCANNER: Scanner | None = None


class _Timeout(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def _limit_worker(limits: Limits) -> None:
    """Runs in each worker process: address-space limit and the wall-clock alarm."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or limits.memory_bytes < hard:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, hard))
    signal.signal(signal.SIGALRM, _on_alarm)


def _scan_one(path: str) -> dict[str, Any]:
    assert _SCANNER is not None
    limits = _SCANNER.options.limits
    try:
        size = os.path.getsize(path)
        if size > limits.max_file_bytes:
            return failure(path, "file_too_large", f"{size} bytes exceeds the limit of {limits.max_file_bytes} bytes")
        signal.setitimer(signal.ITIMER_REAL, limits.timeout_seconds)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            return _SCANNER.scan_bytes(data, os.path.basename(path))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Timeout:
        return failure(path, "timeout", f"scan exceeded the time limit of {limits.timeout_seconds:g} s")
    except MemoryError:
        return failure(
            path, "out_of_memory", f"scan exceeded the memory limit of {limits.memory_bytes // (1024 * 1024)} MiB"
        )
    except LimitExceeded as exc:
        return failure(path, exc.code, exc.message)
    except AnalysisError as exc:
        return failure(path, exc.code, exc.message)
    except OSError as exc:
        return failure(path, "unreadable", exc.strerror or str(exc))
    except RecursionError:
        return failure(path, "corrupt_package", "structure nested too deeply")
    except Exception as exc:  # noqa: BLE001 - a bug must cost one file, not the batch
        return failure(path, "internal_error", f"analyser failure ({type(exc).__name__}: {exc}); please report it")


def collect(paths: list[str]) -> list[str]:
    """Expand folders to the packages inside them (sorted, so output is deterministic)."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in os.walk(p):
                out += [os.path.join(root, f) for f in files if f.lower().endswith((".apk", ".apks"))]
        else:
            out.append(p)
    return sorted(dict.fromkeys(out)) if any(os.path.isdir(p) for p in paths) else list(dict.fromkeys(out))


def scan_paths(paths: list[str], options: ScanOptions, jobs: int = 1, isolate: bool = True) -> Iterator[dict[str, Any]]:
    """Scan files; yields one result (or failure) per file, in input order.

    With ``isolate`` (the CLI's mode) scans run in forked worker processes under the
    memory limit; the rule library is loaded once, before the fork, and shared.
    Without it (library use, tests) scans run in this process under the time limit only.
    """
    global _SCANNER
    _SCANNER = Scanner(options)
    if not isolate:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        try:
            for p in paths:
                yield _scan_one(p)
        finally:
            signal.signal(signal.SIGALRM, previous)
        return
    import multiprocessing as mp  # here: only batches in worker processes need it

    ctx = mp.get_context("fork")
    with ctx.Pool(max(1, jobs), initializer=_limit_worker, initargs=(options.limits,), maxtasksperchild=100) as pool:
        yield from pool.imap(_scan_one, paths, chunksize=1)
