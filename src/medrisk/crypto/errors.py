"""The one exception type of :mod:`medrisk.crypto`.

Messages say what went wrong and what to do, never a key, password, plaintext
or ciphertext: they end up in logs and HTTP error bodies.
"""

from __future__ import annotations


class CryptoError(Exception):
    """A cryptographic operation failed (bad input, tampering, wrong password, missing backend)."""
