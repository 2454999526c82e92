"""No process outlives its owner: the embedded backend's scanner processes exit when the service that
spawned them is killed without closing its pool (a full run once left one behind)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.jobs.procs import wait_for

SERVICE = """
import os, sys, time
from medrisk.platform.scanning import ProcessScanRunner
r = ProcessScanRunner(workers=1)
child = r._pool.submit(os.getpid).result()  # the pool's scanner process, started and initialised
print(child, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # exited; a zombie until its new parent reaps it


def test_scanner_processes_exit_when_the_service_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        child = int(proc.stdout.readline())
        assert not _gone(child)
        proc.kill()  # SIGKILL: no shutdown of the pool
        proc.wait(10)
        wait_for(lambda: _gone(child), 10, f"scanner process {child} to exit after its service was killed", 0.1)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.stdout.close()
