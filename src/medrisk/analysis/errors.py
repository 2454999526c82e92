"""Errors raised by the analysers.

Every problem with an input package is an ``AnalysisError`` with a short machine
``code`` and a one-line human message; the CLI prints ``<file>: <code>: <message>``
and never a traceback.
"""

from __future__ import annotations


class AnalysisError(Exception):
    """A package could not be analysed. ``code`` is stable (used in JSON and tests)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class LimitExceeded(AnalysisError):
    """A configured resource limit (size, ratio, entries, time, memory) was hit."""
