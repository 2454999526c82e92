"""Helpers for the crypto tests: the ``openssl`` command line (Debian's OpenSSL 3.0) as the reference."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest


def _openssl_version() -> str | None:
    exe = shutil.which("openssl")
    if exe is None:
        return None
    return subprocess.run([exe, "version"], capture_output=True, text=True, check=True).stdout.strip()


OPENSSL_VERSION = _openssl_version()


class OpenSSL:
    def __call__(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=30)
        if check and proc.returncode != 0:
            raise AssertionError(f"openssl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()}")
        return proc

    def cmd(self, template: str, *, input: bytes | None = None, check: bool = True, **paths: object):
        """Run a command written as in docs/crypto.md; ``{name}`` placeholders are filled per argument."""
        args = [arg.format(**{k: str(v) for k, v in paths.items()}) for arg in shlex.split(template)]
        return self(*args, input=input, check=check)


@pytest.fixture(scope="session")
def openssl() -> OpenSSL:
    if OPENSSL_VERSION is None or not OPENSSL_VERSION.startswith("OpenSSL 3."):
        pytest.fail(
            f"the crypto cross-checks need the OpenSSL 3 command line (found: {OPENSSL_VERSION}): "
            "apt-get install openssl (or run scripts/test.sh)",
            pytrace=False,
        )
    return OpenSSL()
