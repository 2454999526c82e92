"""App-name similarity, Chinese and pinyin aware.

A counterfeit keeps its victim's name close: the same characters with one added (“健康云”
→ “健康云Plus”), traditional characters or homophones (“平安好医生” → “平安好醫生”, same
pinyin), or Latin letters for the pinyin (“jiankangyun”). Each name is compared twice, as
NFKC-normalised text and as toneless pinyin, with rapidfuzz's normalised Indel similarity;
the higher one counts.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_DROP = re.compile(r"[\s\W_]+", re.UNICODE)
_HAN = re.compile(r"[\u3400-\u9fff]")


@lru_cache(maxsize=200_000)
def normalise(name: str) -> str:
    return _DROP.sub("", unicodedata.normalize("NFKC", name or "").casefold())


@lru_cache(maxsize=200_000)
def pinyin(name: str) -> str:
    text = normalise(name)
    if not _HAN.search(text):
        return text
    from pypinyin import Style, lazy_pinyin

    return "".join(lazy_pinyin(text, style=Style.NORMAL, errors="default"))


def similarity(a: str, b: str) -> float:
    """0..1; names shorter than 2 characters never match (too many false alarms)."""
    from rapidfuzz.distance import Indel

    na, nb = normalise(a), normalise(b)
    if len(na) < 2 or len(nb) < 2:
        return 0.0
    return max(Indel.normalized_similarity(na, nb), Indel.normalized_similarity(pinyin(a), pinyin(b)))
