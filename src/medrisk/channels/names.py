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


@lru_cache(maxsize=1)
def _readings() -> dict[int, str | None]:
    """Code point → its toneless reading when it has only one, ``None`` when it has several
    (from pypinyin's character table)."""
    from pypinyin.pinyin_dict import pinyin_dict

    out: dict[int, str | None] = {}
    for cp, readings in pinyin_dict.items():
        plain = {
            "".join(c for c in unicodedata.normalize("NFKD", r) if not unicodedata.combining(c))
            for r in readings.split(",")
        }
        out[cp] = plain.pop() if len(plain) == 1 else None
    return out


@lru_cache(maxsize=200_000)
def pinyin(name: str) -> str:
    """Toneless pinyin. Names whose characters each have one reading are read from the character
    table (~30x faster); a name with a polyphonic character (重, 行, 长 ...) goes through
    pypinyin's phrase-aware ``lazy_pinyin`` (重庆 → chongqing). Same output either way."""
    text = normalise(name)
    if not _HAN.search(text):
        return text
    table = _readings()
    out = []
    for ch in text:
        r = table.get(ord(ch), ch)
        if r is None:
            from pypinyin import Style, lazy_pinyin

            return "".join(lazy_pinyin(text, style=Style.NORMAL, errors="default"))
        out.append(r)
    return "".join(out)


def similarity(a: str, b: str) -> float:
    """0..1; names shorter than 2 characters never match (too many false alarms)."""
    from rapidfuzz.distance import Indel

    na, nb = normalise(a), normalise(b)
    if len(na) < 2 or len(nb) < 2:
        return 0.0
    return max(Indel.normalized_similarity(na, nb), Indel.normalized_similarity(pinyin(a), pinyin(b)))
