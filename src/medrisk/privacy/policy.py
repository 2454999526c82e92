"""Privacy-policy analysis: find the policy, read it, and check it against the inventory.

The text (HTML or plain) is split into sentences; Chinese is segmented with jieba so that a
term inside a longer word with another meaning (短信 in 短信验证码) does not count. Every check
reports the sentence that satisfied it, so a reviewer can confirm or overrule the verdict.
Verdicts: ``pass``, ``fail`` or ``not_applicable``.

Matching is deliberately lenient for disclosures (a brand name anywhere counts as naming the
SDK; 设备标识符 counts for every device identifier): a ``fail`` means the policy really does
not mention the item, while a ``pass`` still deserves a human look at the quoted sentence.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from medrisk.datafiles import load_yaml
from medrisk.privacy.sdks import Database, load_database

DATA = Path(__file__).parent / "data" / "policy_vocabulary.yaml"
MAX_SENTENCE = 200  # characters of a quoted sentence
MIN_SENTENCE = 16  # shorter lines are usually headings ("三、保存期限")

_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|\n+|(?<=[.])\s+(?=[A-Z0-9\"'(])")
_CLAUSE_END = re.compile(r"[，,、；;]")
_WORD = re.compile(r"[0-9a-z]")


# --------------------------------------------------------------------------- loading and choosing


@lru_cache(maxsize=1)
def _text_extractor() -> Any:
    """The HTML text extractor class, built on first use: html.parser is imported only by
    scans that meet an HTML policy, not by every process (a few ms of start-up)."""
    from html.parser import HTMLParser

    class _TextExtractor(HTMLParser):
        BLOCK = {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "td",
            "th",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "table",
            "dt",
            "dd",
        }

        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag: str, attrs: Any) -> None:
            if tag in ("script", "style", "head", "title"):
                self.skip += 1
            elif tag in self.BLOCK:
                self.parts.append("\n")

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style", "head", "title"):
                self.skip = max(0, self.skip - 1)
            elif tag in self.BLOCK:
                self.parts.append("\n")

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.parts.append(data)

    return _TextExtractor


def html_to_text(text: str) -> str:
    """Visible text of an HTML document (plain text passes through unchanged)."""
    if not re.search(r"<\s*(html|body|p|div|br|h[1-6]|li|table|span)\b", text, re.I):
        return text
    parser = _text_extractor()()
    parser.feed(text)
    parser.close()
    lines = (re.sub(r"[ \t\u3000\xa0]+", " ", line).strip() for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def decode(data: bytes) -> str:
    """Decode a policy file: UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def load_policy_file(path: str | Path) -> str:
    """Read ``--privacy-policy FILE`` (HTML or text, any common Chinese encoding)."""
    return decode(Path(path).read_bytes())


_PATH_HINTS = (
    (re.compile(r"privacy|隐私|yinsi|ysxy|ystk", re.I), 4),
    (re.compile(r"policy|政策|personal|个人信息", re.I), 2),
    (re.compile(r"agreement|protocol|协议|xieyi|terms|条款|user_?agreement", re.I), 1),
)
_CONTENT_HINTS = (
    (re.compile(r"隐私政策|隐私保护指引|个人信息保护政策|隐私权政策|个人信息处理规则"), 4),
    (re.compile(r"privacy policy|privacy notice", re.I), 3),
    (re.compile(r"个人信息|personal (information|data)", re.I), 1),
)


_CANDIDATE = re.compile(
    r"privacy|policy|agreement|protocol|terms|隐私|政策|协议|条款|yinsi|xieyi|ysxy|ystk|personal", re.I
)


def is_policy_candidate(path: str) -> bool:
    """Should the pipeline pass this package entry to ``asset_texts``? (HTML/text under assets/ or
    res/raw/ whose name suggests a policy or agreement.)"""
    p = path.replace("\\", "/")
    if not p.startswith(("assets/", "res/raw/")) or not p.lower().endswith((".html", ".htm", ".txt", ".xhtml")):
        return False
    return bool(_CANDIDATE.search(p))


def choose_policy(asset_texts: dict[str, str] | None) -> tuple[str, str] | None:
    """Pick the bundled asset that is the privacy policy: (path, text), or None.

    The lead passes assets whose path suggests a policy or agreement; a user agreement with no
    personal-information content is not a privacy policy.
    """
    best: tuple[int, int, str, str] | None = None
    for path, raw in sorted((asset_texts or {}).items()):
        text = html_to_text(raw or "")
        content = sum(w for rx, w in _CONTENT_HINTS if rx.search(text))
        if content < 2:
            continue
        score = content + sum(w for rx, w in _PATH_HINTS if rx.search(path))
        key = (score, -len(path), path, text)
        if best is None or key[:2] > best[:2]:
            best = key
    return (best[2], best[3]) if best else None


def detect_language(text: str) -> str | None:
    """``zh``, ``en``, ``other`` or None (no text)."""
    if not text or not text.strip():
        return None
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    if cjk >= 50 or (cjk and cjk * 4 >= latin):
        return "zh"
    if latin >= 20 and latin > cjk:
        return "en"
    return "other"


# --------------------------------------------------------------------------- vocabulary and reading


@dataclass(frozen=True, eq=False)
class Vocabulary:
    version: str
    shadow: tuple[str, ...]
    negation: dict[str, re.Pattern[str]]
    items: dict[str, tuple[str, ...]]
    checks: tuple[dict[str, Any], ...]


@lru_cache(maxsize=2)
def load_vocabulary(path: Path = DATA) -> Vocabulary:
    raw = load_yaml(Path(path).read_text(encoding="utf-8"))
    return Vocabulary(
        version=str(raw["version"]),
        shadow=tuple(raw.get("shadow") or ()),
        negation={k: re.compile(v, re.I) for k, v in (raw.get("negation") or {}).items()},
        items={k: tuple(str(t) for t in v) for k, v in raw["items"].items()},
        checks=tuple(raw["checks"]),
    )


_TOKENIZER: Any = None
_TOKENIZER_LOCK = threading.Lock()


def _tokenizer(vocab: Vocabulary, db: Database) -> Any:
    """A private jieba tokenizer that knows our terms and shadow words (built once)."""
    global _TOKENIZER
    with _TOKENIZER_LOCK:
        if _TOKENIZER is None:
            import logging

            import jieba

            jieba.setLogLevel(logging.WARNING)
            tk = jieba.Tokenizer()
            tk.initialize()
            words = set(vocab.shadow)
            for terms in vocab.items.values():
                words |= {t.lower() for t in terms if _CJK.search(t) and not t.startswith("re:")}
            for s in db.sdks:
                words |= {a.lower() for a in (s.name, *s.aliases) if _CJK.search(a)}
            for w in sorted(words):
                tk.add_word(w)
            _TOKENIZER = tk
        return _TOKENIZER


class Reader:
    """A policy text split into sentences, with term search that respects word boundaries."""

    def __init__(self, text: str, vocab: Vocabulary | None = None, db: Database | None = None) -> None:
        self.vocab = vocab or load_vocabulary()
        self.db = db or load_database()
        self.text = text
        self.sentences = [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
        self._lower = [s.lower() for s in self.sentences]
        self._shadow_spans: list[list[tuple[int, int]] | None] = [None] * len(self.sentences)
        self._shadow = {w.lower() for w in self.vocab.shadow}

    def _shadows(self, i: int) -> list[tuple[int, int]]:
        spans = self._shadow_spans[i]
        if spans is None:
            spans = []
            pos = 0
            for tok in _tokenizer(self.vocab, self.db).cut(self._lower[i], HMM=False):
                if tok in self._shadow:
                    spans.append((pos, pos + len(tok)))
                pos += len(tok)
            self._shadow_spans[i] = spans
        return spans

    def occurrences(self, i: int, term: str) -> list[int]:
        """Start offsets of ``term`` in sentence ``i`` (whole words for Latin, outside shadow words)."""
        s = self._lower[i]
        if term.startswith("re:"):
            return [m.start() for m in re.finditer(term[3:], self.sentences[i], re.I)]
        t = term.lower()
        out = []
        start = s.find(t)
        while start >= 0:
            end = start + len(t)
            ok = True
            if _WORD.match(t[0]) and start > 0 and _WORD.match(s[start - 1]):
                ok = False
            if _WORD.match(t[-1]) and end < len(s) and _WORD.match(s[end]):
                ok = False
            if ok and _CJK.search(t):
                ok = not any(a <= start and end <= b and (a, b) != (start, end) for a, b in self._shadows(i))
            if ok:
                out.append(start)
            start = s.find(t, start + 1)
        return out

    def denied(self, i: int, pos: int) -> bool:
        """Is the mention at ``pos`` inside a clause that denies collecting it?"""
        s = self.sentences[i]
        starts = [m.end() for m in _CLAUSE_END.finditer(s, 0, pos)]
        clause = s[starts[-1] if starts else 0 : pos]
        return any(rx.search(clause) for rx in self.vocab.negation.values())

    def find_all_of(self, groups: list[list[str]]) -> str | None:
        """The first sentence with a term from every group (a heading only when nothing else has one)."""
        heading = None
        for i in range(len(self.sentences)):
            if all(any(self.occurrences(i, t) for t in g) for g in groups):
                if len(self.sentences[i]) >= MIN_SENTENCE:
                    return quote(self.sentences[i])
                heading = heading or quote(self.sentences[i])
        return heading

    def mention(self, terms: list[str] | tuple[str, ...]) -> tuple[str | None, bool]:
        """(sentence, denied): the first sentence that mentions a term without denying it; else the
        first denying one with denied=True; else (None, False)."""
        denial = None
        for i in range(len(self.sentences)):
            for t in terms:
                for pos in self.occurrences(i, t):
                    if not self.denied(i, pos):
                        return quote(self.sentences[i]), False
                    denial = denial or quote(self.sentences[i])
        return (denial, True) if denial else (None, False)


def quote(sentence: str) -> str:
    s = re.sub(r"\s+", " ", sentence).strip()
    return s if len(s) <= MAX_SENTENCE else s[: MAX_SENTENCE - 1] + "…"


# --------------------------------------------------------------------------- the analysis


def _check(spec: dict[str, Any], verdict: str, evidence: str | None, detail: dict[str, str] | None = None):
    return {
        "id": spec["id"],
        "title": dict(spec["title"]),
        "verdict": verdict,
        "evidence": evidence,
        "detail": detail,
        "clause": spec["clause"],
        "rule": spec.get("rule"),
    }


BUILTIN_CHECKS = {
    "present": {
        "id": "present",
        "title": {"zh": "具有隐私政策", "en": "Has a privacy policy"},
        "clause": "《App违法违规收集使用个人信息行为认定方法》一.1",
        "rule": "PRIV-001",
    },
    "language_zh": {
        "id": "language_zh",
        "title": {"zh": "提供简体中文版隐私政策", "en": "Policy available in simplified Chinese"},
        "clause": "《App违法违规收集使用个人信息行为认定方法》一.4",
        "rule": "PRIV-003",
    },
    "permissions_disclosed": {
        "id": "permissions_disclosed",
        "title": {
            "zh": "说明申请敏感权限收集的个人信息及目的",
            "en": "Discloses the personal information collected through sensitive permissions",
        },
        "clause": "《App违法违规收集使用个人信息行为认定方法》二.3；工信部信管函〔2023〕26号",
        "rule": "PRIV-014",
    },
    "items_disclosed": {
        "id": "items_disclosed",
        "title": {"zh": "逐一列出收集的其他个人信息", "en": "Lists every other type of personal information collected"},
        "clause": "《App违法违规收集使用个人信息行为认定方法》二.1",
        "rule": "PRIV-020",
    },
    "sdks_disclosed": {
        "id": "sdks_disclosed",
        "title": {
            "zh": "逐一列明收集个人信息的第三方 SDK",
            "en": "Names every third-party SDK that collects personal information",
        },
        "clause": "《App违法违规收集使用个人信息行为认定方法》二.1、五.1",
        "rule": "PRIV-005",
    },
}

CHECK_ORDER = (
    "present",
    "language_zh",
    "collection_rules",
    "permissions_disclosed",
    "items_disclosed",
    "sdk_list",
    "sdks_disclosed",
    "withdraw_consent",
    "correction",
    "deletion",
    "account_cancellation",
    "complaint",
    "response_period",
    "retention",
    "contact",
    "sensitive_consent",
    "update_notice",
    "minors",
)


def empty_policy() -> dict[str, Any]:
    return {
        "present": False,
        "source": None,
        "language": None,
        "characters": 0,
        "checks": [],
        "disclosures": [],
        "sdk_disclosures": [],
    }


def analyse_policy(
    text: str | None,
    source: str | None,
    inventory: list[dict[str, Any]],
    detected: list[dict[str, Any]],
    *,
    dangerous_permissions: set[str] | None = None,
    vocab: Vocabulary | None = None,
    db: Database | None = None,
) -> dict[str, Any]:
    """The ``privacy.policy`` section for a policy text (None: no policy found)."""
    vocab = vocab or load_vocabulary()
    db = db or load_database()
    specs = {c["id"]: c for c in vocab.checks} | BUILTIN_CHECKS
    text = html_to_text(text) if text else ""
    result = empty_policy()
    checks: dict[str, dict[str, Any]] = {}
    if not text.strip():
        result["source"] = source
        checks["present"] = _check(specs["present"], "fail", None, _no_policy())
        for cid in CHECK_ORDER[1:]:
            checks[cid] = _check(specs[cid], "not_applicable", None, _no_policy())
        result["checks"] = [checks[c] for c in CHECK_ORDER]
        return result

    reader = Reader(text, vocab, db)
    language = detect_language(text)
    result.update(present=True, source=source, language=language, characters=len(text))
    checks["present"] = _check(specs["present"], "pass", quote(reader.sentences[0]) if reader.sentences else None)
    checks["language_zh"] = _check(
        specs["language_zh"],
        "pass" if language == "zh" else "fail",
        None,
        None
        if language == "zh"
        else {"zh": f"政策语言为 {language}，未提供简体中文版", "en": f"policy is in {language}"},
    )

    # personal-information disclosures
    dangerous = dangerous_permissions or set()
    disclosures = []
    for item in inventory:
        if all(e["source"] == "app_type" for e in item["evidence"]):
            continue
        sentence, denied = reader.mention(vocab.items.get(item["id"], ()))
        via_permission = any(e["source"] == "permission" and e["value"] in dangerous for e in item["evidence"])
        disclosures.append(
            {
                "item": item["id"],
                "name": item["name"],
                "permission": via_permission,
                "disclosed": sentence is not None and not denied,
                "denied": denied,
                "evidence": sentence,
            }
        )
    result["disclosures"] = disclosures
    for cid, want in (("permissions_disclosed", True), ("items_disclosed", False)):
        rows = [d for d in disclosures if d["permission"] == want]
        checks[cid] = _disclosure_check(specs[cid], rows)

    # SDK disclosures
    by_id = db.by_id()
    sdk_rows = []
    for s in detected:
        if not s.get("confirmed", True):
            continue
        entry = by_id.get(s["id"])
        terms = [s.get("name", ""), s.get("name_en", ""), s.get("vendor", "")]
        if entry is not None:
            terms += list(entry.aliases)
        sentence, denied = reader.mention([t for t in dict.fromkeys(terms) if t])
        sdk_rows.append(
            {
                "sdk": s["id"],
                "name": s.get("name") or s["id"],
                "vendor": s.get("vendor", ""),
                "collects": list(s.get("collects") or []),
                "required": bool(s.get("collects")),
                "disclosed": sentence is not None and not denied,
                "denied": denied,
                "evidence": sentence,
            }
        )
    result["sdk_disclosures"] = sdk_rows
    required = [r for r in sdk_rows if r["required"]]
    missing = [r for r in required if not r["disclosed"]]
    if not required:
        checks["sdk_list"] = _check(specs["sdk_list"], "not_applicable", None, _no_sdks())
        checks["sdks_disclosed"] = _check(specs["sdks_disclosed"], "not_applicable", None, _no_sdks())
    else:
        sentence = reader.find_all_of(specs["sdk_list"]["all_of"])
        checks["sdk_list"] = _check(specs["sdk_list"], "pass" if sentence else "fail", sentence)
        names = "、".join(r["name"] for r in missing)
        checks["sdks_disclosed"] = _check(
            specs["sdks_disclosed"],
            "fail" if missing else "pass",
            next((r["evidence"] for r in required if r["disclosed"]), None),
            {"zh": f"未列明：{names}", "en": f"not named: {', '.join(r['sdk'] for r in missing)}"} if missing else None,
        )

    sensitive = [i for i in inventory if i["sensitive"]]
    for spec in vocab.checks:
        cid = spec["id"]
        if cid in checks or cid == "sdk_list":
            continue
        if spec.get("applies") == "sensitive" and not sensitive:
            checks[cid] = _check(
                spec, "not_applicable", None, {"zh": "未发现敏感个人信息", "en": "no sensitive information found"}
            )
            continue
        sentence = reader.find_all_of(spec["all_of"])
        detail = None
        if sentence is None and spec.get("applies") == "sensitive":
            names = "、".join(i["name"]["zh"] for i in sensitive)
            detail = {"zh": f"涉及敏感个人信息：{names}", "en": ", ".join(i["id"] for i in sensitive)}
        checks[cid] = _check(spec, "pass" if sentence else "fail", sentence, detail)

    result["checks"] = [checks[c] for c in CHECK_ORDER if c in checks]
    return result


def _disclosure_check(spec: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return _check(spec, "not_applicable", None, {"zh": "无相关个人信息", "en": "nothing in scope"})
    missing = [r for r in rows if not r["disclosed"]]
    if not missing:
        return _check(spec, "pass", rows[0]["evidence"])
    zh = "、".join(r["name"]["zh"] + ("（政策声称不收集）" if r["denied"] else "") for r in missing)
    en = ", ".join(r["item"] + (" (policy denies it)" if r["denied"] else "") for r in missing)
    return _check(spec, "fail", None, {"zh": f"未说明：{zh}", "en": f"not disclosed: {en}"})


def _no_policy() -> dict[str, str]:
    return {
        "zh": "安装包中未找到隐私政策，也未通过 --privacy-policy 提供",
        "en": "no policy bundled in the package or given with --privacy-policy",
    }


def _no_sdks() -> dict[str, str]:
    return {"zh": "未检出收集个人信息的第三方 SDK", "en": "no third-party SDK that collects personal information"}
