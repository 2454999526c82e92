"""Shared test fixtures.

The real-APK corpus lives outside the repository (never copied in); tests find it
through MEDRISK_CORPUS, defaulting to ../shared/corpus/apks beside the checkout.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("MEDRISK_CORPUS", REPO.parent / "shared" / "corpus" / "apks"))


# Debian packages providing the reference tools; scripts/test.sh installs them.
TOOL_PACKAGES = {"aapt": "aapt", "dexdump": "dexdump", "readelf": "binutils", "gcc": "gcc", "openssl": "openssl"}


def require_tool(name: str) -> str:
    """Path of a reference tool the tests compare against; fails (never skips) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pkg = TOOL_PACKAGES.get(name, name)
        pytest.fail(f"{name} not found: apt-get install {pkg} (or run scripts/test.sh)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def require_dexdump() -> str:
    return require_tool("dexdump")


@pytest.fixture(scope="session")
def require_readelf() -> str:
    return require_tool("readelf")


def corpus_apks() -> list[Path]:
    """The corpus APKs; an empty corpus is an error, not an empty parametrisation (which pytest skips)."""
    apks = sorted(CORPUS.glob("*.apk"))
    if not apks:
        raise RuntimeError(f"no APKs in the corpus at {CORPUS}; set MEDRISK_CORPUS (scripts/test.sh expects it)")
    return apks


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        raise RuntimeError(f"APK corpus not found at {CORPUS}; set MEDRISK_CORPUS")
    return CORPUS
