"""Running scans for the platform: the job that scans a stored version, and the runners.

``ThreadScanRunner`` scans in the calling thread, one at a time (tests, the CLI);
``ProcessScanRunner`` scans in spawned worker processes under the scanner's time and
memory limits, so a hostile package cannot take the service down. Either keeps one
loaded ``Scanner`` per app type (loading the rule library takes about two seconds).
Finished scans are never updated: a rescan is a new scan.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

from medrisk.analysis.errors import AnalysisError
from medrisk.analysis.limits import Limits
from medrisk.crypto import sm3_hex
from medrisk.platform.context import Platform
from medrisk.privacy.policy import decode as decode_policy
from medrisk.scan import Scanner, ScanOptions, failure
from medrisk.store.blobs import BlobStoreError
from medrisk.store.models import Filing, Scan, Version, utcnow


class ScanRunner(Protocol):
    def run(self, path: Path, name: str, app_type: str | None, policy: Path | None = None) -> dict[str, Any]:
        """``policy``: the filing's privacy-policy file (HTML or text), checked instead of one in the package."""
        ...

    def close(self) -> None: ...


def _scan_file(
    scanners: dict[str | None, Scanner], path: Path, name: str, app_type: str | None, policy: Path | None = None
) -> dict[str, Any]:
    scanner = scanners.get(app_type)
    if scanner is None:
        scanner = scanners[app_type] = Scanner(ScanOptions(app_type=app_type))
    try:
        if policy is None:
            return scanner.scan_bytes(Path(path).read_bytes(), name)
        text = decode_policy(Path(policy).read_bytes())
        source = f"filing privacy-policy file (sha256 {Path(policy).name})"
        return scanner.scan_bytes(Path(path).read_bytes(), name, policy_text=text, policy_source=source)
    except AnalysisError as exc:
        return failure(name, exc.code, exc.message)
    except MemoryError:
        return failure(name, "out_of_memory", "scan exceeded the memory limit")
    except RecursionError:
        return failure(name, "corrupt_package", "structure nested too deeply")


class ThreadScanRunner:
    """Scans in the calling thread, one at a time (the loaded scanners are shared)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scanners: dict[str | None, Scanner] = {}

    def run(self, path: Path, name: str, app_type: str | None, policy: Path | None = None) -> dict[str, Any]:
        with self._lock:
            return _scan_file(self._scanners, path, name, app_type, policy)

    def close(self) -> None:
        pass


# --- worker processes -------------------------------------------------------------------------------

_WORKER_SCANNERS: dict[str | None, Scanner] = {}


class _Timeout(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def _init_worker(memory_bytes: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or memory_bytes < hard:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))
    signal.signal(signal.SIGALRM, _on_alarm)


def _init_pool_worker(memory_bytes: int, parent: int) -> None:
    """A scanner process of ``ProcessScanRunner``: limits, and exit when the service is gone (killed
    without closing its pool, the process would otherwise wait for work for ever)."""
    _init_worker(memory_bytes)

    def watch() -> None:
        import time

        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="medrisk-parent-watch", daemon=True).start()


def _worker_scan(
    path: str, name: str, app_type: str | None, timeout: float, policy: str | None = None
) -> dict[str, Any]:
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return _scan_file(_WORKER_SCANNERS, Path(path), name, app_type, Path(policy) if policy else None)
    except _Timeout:
        return failure(name, "timeout", f"scan exceeded the time limit of {timeout:g} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class ProcessScanRunner:
    def __init__(self, workers: int = 1, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.workers = max(1, workers)
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=get_context("spawn"),  # fork is unsafe in a multi-threaded server
            initializer=_init_pool_worker,
            initargs=(self.limits.memory_bytes, os.getpid()),
        )

    def run(self, path: Path, name: str, app_type: str | None, policy: Path | None = None) -> dict[str, Any]:
        from concurrent.futures.process import BrokenProcessPool

        pool = self._pool
        try:
            fut = pool.submit(
                _worker_scan, str(path), name, app_type, self.limits.timeout_seconds, str(policy) if policy else None
            )
            return fut.result()
        except BrokenProcessPool as exc:  # the worker died (killed, out of memory outside Python)
            with self._lock:  # a broken pool stays broken: start a new one for the next scans
                if self._pool is pool:
                    self._pool = self._new_pool()
                    pool.shutdown(wait=False, cancel_futures=True)
            return failure(name, "worker_failed", type(exc).__name__)
        except Exception as exc:  # an analyser bug on this package: a result, like the CLI's
            return failure(name, "internal_error", f"analyser failure ({type(exc).__name__}: {exc})")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# --- the job ----------------------------------------------------------------------------------------


class ScanJobError(Exception):
    """A failure of the job, not a finding about the package: retried, then the job is parked."""


def _check_blob(ctx: Platform, sha: str) -> Path:
    """The stored package, verified against its SHA-256 (another machine's copy may be missing or torn)."""
    import hashlib

    h = hashlib.sha256()
    try:
        path = ctx.blobs.path(sha)  # an object store's local copy: fetched (and verified) first
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except OSError as exc:
        raise ScanJobError(f"stored package {sha} unreadable: {exc.strerror or exc}") from exc
    except BlobStoreError as exc:  # the object store is down or returned damaged bytes: retried
        raise ScanJobError(str(exc)) from exc
    if h.hexdigest() != sha:
        raise ScanJobError(f"stored package {sha} is corrupt (its SHA-256 is {h.hexdigest()})")
    return path


def run_scan(ctx: Platform, scan_id: int) -> None:
    """Job ``scan``: analyse the version's package and store the result once.

    Idempotent (jobs are delivered at least once): a scan already finished is not scanned
    again, two concurrent runs store one result (the row is locked for the final write),
    and the closed loop is told again (its event id ``scan:<id>`` makes that a no-op) in case
    the run that finished died before telling it.
    """
    with ctx.db.session() as db:
        scan = db.get(Scan, scan_id)
        if scan is None:
            return  # gone
        if scan.status not in ("queued", "running"):
            done = scan.status == "done"
        else:
            done = None
            version = db.get(Version, scan.version_id)
            filing = db.get(Filing, scan.filing_id)
            assert version is not None and filing is not None
            scan.status, scan.started_at = "running", utcnow()
            sha, name, app_type = version.sha256, version.file_name, filing.app_type
            policy_sha = filing.privacy_policy_sha256
    if done is not None:  # finished already (a redelivered job)
        if done:
            _tell_loop(ctx, scan_id)
        return
    assert ctx.scan_runner is not None
    package = _check_blob(ctx, sha)
    try:
        if policy_sha:  # the filing's privacy-policy file is checked (it wins over one in the package)
            result = ctx.scan_runner.run(package, name, app_type, ctx.blobs.path(policy_sha))
        else:
            result = ctx.scan_runner.run(package, name, app_type)
    except OSError as exc:
        result = failure(name, "blob_missing", exc.strerror or "package file missing")
    if result.get("error", {}).get("code") == "worker_failed":  # the scanner process died: retry the job
        raise ScanJobError(f"scanner process died ({result['error'].get('message')})")
    with ctx.db.session() as db:
        scan = db.get(Scan, scan_id, with_for_update=True)  # one writer: a concurrent duplicate waits here
        assert scan is not None
        if scan.status != "running":
            return
        scan.finished_at = utcnow()
        if "error" in result:
            scan.status = "failed"
            scan.error_code = str(result["error"]["code"])[:64]
            scan.error_message = str(result["error"]["message"])
            return
        scan.status = "done"
        scan.result = result
        scan.result_sm3 = sm3_hex(
            json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        )
        scan.rules_version = result["rules_version"]
        scan.score = float(result["risk"]["score"])
        scan.grade = result["risk"]["grade"]
    _tell_loop(ctx, scan_id)


def _tell_loop(ctx: Platform, scan_id: int) -> None:
    if ctx.loop is not None:  # the closed loop: emit "scan graded" (idempotent per scan)
        try:
            ctx.loop.on_scan_done(scan_id)
        except Exception:
            logging.getLogger(__name__).exception("disposition of scan %s failed", scan_id)


def park_scan(ctx: Platform, scan_id: int, error: str) -> None:
    """The scan job used up its attempts: the scan is failed with the job's error (and stays visible)."""
    with ctx.db.session() as db:
        scan = db.get(Scan, scan_id, with_for_update=True)
        if scan is None or scan.status not in ("queued", "running"):
            return
        scan.status, scan.finished_at = "failed", utcnow()
        scan.error_code = "job_parked"
        scan.error_message = (error.splitlines() or ["job failed"])[0][:2000]


def unpark_scan(ctx: Platform, scan_id: int) -> None:
    """A person retries a parked scan job: the scan is queued again."""
    with ctx.db.session() as db:
        scan = db.get(Scan, scan_id, with_for_update=True)
        if scan is not None and scan.status == "failed" and scan.error_code == "job_parked":
            scan.status, scan.error_code, scan.error_message, scan.finished_at = "queued", None, None, None


def resent_on_start(jobs: object) -> bool:
    """Whether ``service.start_background`` re-sends unfinished scans with this job backend: yes,
    except Celery (Redis keeps its messages; N web replicas would each re-send the whole backlog)."""
    from medrisk.jobs.celery_backend import CeleryQueue

    return not isinstance(jobs, CeleryQueue)


def requeue_unfinished(ctx: Platform) -> int:
    """On start: scans queued or running when the service stopped are queued again."""
    from sqlalchemy import select

    with ctx.db.session() as db:
        ids = list(db.scalars(select(Scan.id).where(Scan.status.in_(("queued", "running")))))
        for sid in ids:
            s = db.get(Scan, sid)
            assert s is not None
            s.status = "queued"
    for sid in ids:
        assert ctx.jobs is not None
        ctx.jobs.enqueue("scan", scan_id=sid)
    return len(ids)


def cpu_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2) // 2))
