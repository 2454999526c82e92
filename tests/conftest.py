"""Shared test fixtures.

The real-APK corpus lives outside the repository (never copied in); tests find it
through MEDRISK_CORPUS, defaulting to ../shared/corpus/apks beside the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("MEDRISK_CORPUS", REPO.parent / "shared" / "corpus" / "apks"))


def corpus_apks() -> list[Path]:
    return sorted(CORPUS.glob("*.apk"))


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        raise RuntimeError(f"APK corpus not found at {CORPUS}; set MEDRISK_CORPUS")
    return CORPUS
