"""Perceptual hash of app icons (dHash, 64 bits): a look-alike keeps its icon's shape.

Own 30-line dHash over Pillow instead of the ``imagehash`` package (which pulls NumPy, SciPy
and PyWavelets in for this one function). Hostile images are bounded: at most 1 MB of input
and 4096×4096 pixels; anything Pillow cannot decode gives ``None``.
"""

from __future__ import annotations

import io

MAX_BYTES = 1 << 20
MAX_PIXELS = 4096 * 4096


def dhash(data: bytes | None) -> str | None:
    """16 hex digits, or None when the bytes are not a decodable image."""
    if not data or len(data) > MAX_BYTES:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                return None
            im.draft("L", (64, 64))
            im = im.convert("RGBA")
            # transparent areas count as white, as a launcher shows them on a light background
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            g = Image.alpha_composite(bg, im).convert("L").resize((9, 8), Image.Resampling.LANCZOS)
            px = g.tobytes()  # one byte per pixel in mode L
    except Exception:  # noqa: BLE001 - Pillow raises many types for bad images; any of them means "no hash"
        return None
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return f"{bits:016x}"


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
