"""String classification for the code analysis: URLs, IP addresses, e-mail addresses,
domains and secrets (specific token formats, entropy-based generic keys) found in the
string constants of DEX files, plus the collector and the per-DEX string scan that feed them.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from bisect import bisect_right
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from medrisk.analysis.code_results import (
    FRAMEWORK_PREFIXES,
    MAX_LOCATIONS,
    EmailString,
    IpString,
    Location,
    Secret,
    UrlString,
)
from medrisk.analysis.dex import TYPE_STRING_DATA_ITEM

_URL_SCHEMES = (b"https", b"http", b"wss", b"ftp", b"ws")
_URL_BODY = re.compile(rb"[^\x00-\x20\x7f-\xff\"'<>\\^`{|}]+")
_HOST_RE = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_IP_RE = re.compile(r"^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,12}(?![A-Za-z0-9-])"
)
# whole strings (anchored at the NUL before the uleb128 length) that may be hosts, IPs or tokens
_WHOLE_RE = re.compile(
    rb"\x00(?:[\x04-\x7f]|[\x80-\xff][\x01-\x7f])"
    rb"(?:(?P<ip>\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d{1,5})?)"
    rb"|(?P<dom>[a-z0-9][a-z0-9.-]*+(?:(?<=\.[a-z]{2})|(?<=\.[a-z]{3})|(?<=\.[a-z]{4})|(?<=\.[a-z]{5})))"
    rb"|(?P<tok>(?=[^\x00]{16})[A-Za-z+/=_-]*+[0-9][A-Za-z0-9+/=_-]*+)"
    rb"|(?P<text>(?:-----BEGIN |(?:Bearer |bearer )?eyJ)[^\x00]*+))(?=\x00)"  # PEM blocks, JWTs
)
# identifiers naming a secret (field names): key, mKey, AES_KEY, apiKey, password, clientSecret...
_SECRET_WORDS = ("key", "secret", "password", "passwd", "pwd", "token", "passphrase")
_SECRET_END = re.compile(r"(?i)(?:key|secret|passw(?:or)?d|pwd|token|passphrase)$")


def _secret_name(name: str) -> bool:
    """``key``, ``mKey``, ``aesKey``, ``AES_KEY``, ``api_key``, ``clientSecret``: the last word of
    the identifier (camelCase or snake_case) is a secret word; ``monkey``/``hockey`` are not."""
    low = name.lower()
    for w in _SECRET_WORDS:
        if not low.endswith(w):
            continue
        head = name[: len(name) - len(w)]
        tail = name[len(name) - len(w) :]
        if not head:
            return True
        if head.endswith("_"):
            return True
        if tail[0].isupper() and (head[-1].islower() or head[-1].isdigit()):
            return True
        if tail.isupper() and head.isupper() and head.endswith(("API", "SECRET")):
            return True
    return False


_PASSWORD_NAME = re.compile(r"(?i)pass|pwd")

_TLDS = frozenset(
    """com net org edu gov mil int info biz pro mobi app dev io co ai me tv cc us uk de fr it es nl be
    ch at se no dk fi pl cz ru ua cn jp kr tw hk sg in au nz ca br mx ar cl eu asia xyz online site tech
    cloud health care clinic hospital med network services solutions""".split()
)
_PACKAGE_ROOTS = frozenset(
    "com org net io android androidx java javax kotlin kotlinx dalvik de fr uk edu gov me co".split()
)
_NAMESPACE_HOSTS = frozenset(
    """schemas.android.com www.w3.org w3.org ns.adobe.com xmlpull.org www.xmlpull.org xml.org xml.apache.org
    schemas.xmlsoap.org schemas.openxmlformats.org purl.org java.sun.com apache.org www.apache.org
    xmlns.jcp.org schemas.microsoft.com schema.org www.schema.org ns.android.com""".split()
)

_SPECIFIC_SECRETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("aws_access_key", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])")),
    ("google_api_key", re.compile(r"AIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])")),
    ("jwt", re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")),
    ("slack_token", re.compile(r"xox[abposr]-[0-9A-Za-z\-]{10,}")),
    ("github_token", re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{50,})")),
    ("stripe_secret_key", re.compile(r"(?:sk|rk)_live_[0-9A-Za-z]{20,}")),
    ("aliyun_access_key", re.compile(r"(?<![A-Za-z0-9])LTAI[A-Za-z0-9]{12,20}(?![A-Za-z0-9])")),
    ("tencent_secret_id", re.compile(r"(?<![A-Za-z0-9])AKID[A-Za-z0-9]{32}(?![A-Za-z0-9])")),
    ("sendgrid_key", re.compile(r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}")),
    ("twilio_key", re.compile(r"(?<![A-Za-z0-9])SK[0-9a-f]{32}(?![A-Za-z0-9])")),
)
# cheap pre-check: the literal prefixes of the patterns above
_ANY_SPECIFIC = re.compile(
    r"AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|AIza|eyJ|xox|gh[pousr]_|github_pat_|_live_|LTAI|AKID|SG\.|SK"
)
_PRIVATE_KEY_RE = re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----")
_FIREBASE_RE = re.compile(r"^https?://[a-z0-9.-]+\.(?:firebaseio\.com|firebasedatabase\.app)(?:/|$)")
_URL_CREDENTIALS = re.compile(r"^[a-z]+://([^/@:\s]+):([^/@\s]+)@")
_PASSWORD_ASSIGN = re.compile(r"(?i)(?:password|passwd|pwd)\s*[=:]\s*([^\s&;,'\"]{4,})")
_NOT_SECRET_PREFIXES = (
    "MII",  # DER (certificates, public keys)
    "MFkw",  # EC public key
    "MCow",  # Ed25519 public key
    "iVBORw0KGgo",  # PNG
    "/9j/",  # JPEG
    "R0lGOD",  # GIF
    "UklGR",  # WEBP
    "PHN2Zy",  # SVG
    "sha256/",
    "sha1/",
    "data:",
)
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_SEQUENCES = ("0123", "1234", "2345", "3456", "4567", "5678", "6789", "abcd", "bcde", "cdef", "ABCD", "BCDE", "wxyz")


def shannon_entropy(text: str) -> float:
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _char_classes(text: str) -> int:
    return any(c.islower() for c in text) + any(c.isupper() for c in text) + any(c.isdigit() for c in text)


def _transitions(text: str) -> float:
    """Share of adjacent characters whose class (lower/upper/digit/other) changes: random
    tokens switch class often, identifiers (camelCase, SNAKE_CASE_1) rarely."""

    def cls(c: str) -> int:
        return 0 if c.islower() else 1 if c.isupper() else 2 if c.isdigit() else 3

    prev = cls(text[0])
    changes = 0
    for c in text[1:]:
        k = cls(c)
        if k != prev:
            changes += 1
        prev = k
    return changes / max(len(text) - 1, 1)


def classify_secret(text: str, *, generic: bool = True) -> list[tuple[str, str]]:
    """Secrets in one string constant: [(kind, value)]. ``generic`` adds the entropy-based
    ``generic_api_key`` test for strings that are a single token."""
    found: list[tuple[str, str]] = []
    if "-----BEGIN" in text and _PRIVATE_KEY_RE.search(text):
        found.append(("private_key", text))
    if _ANY_SPECIFIC.search(text):
        for kind, rx in _SPECIFIC_SECRETS:
            for m in rx.finditer(text):
                found.append((kind, m.group(0)))
    if found or not generic:
        return found
    if _FIREBASE_RE.match(text):
        return [("firebase_url", text)]
    m = _URL_CREDENTIALS.match(text)
    if m:
        return [("password", text)]
    m = _PASSWORD_ASSIGN.search(text)
    if m and not m.group(1).startswith(("%", "$", "{", "?")):
        return [("password", text)]
    if _looks_like_generic_key(text):
        return [("generic_api_key", text)]
    return []


def _looks_like_generic_key(text: str) -> bool:
    n = len(text)
    if n < 20 or n > 100 or "." in text or text.startswith(_NOT_SECRET_PREFIXES):
        return False
    if _HEX_RE.match(text) or text.count("/") > 2 or text.count("_") > 2 or text.count("-") > 4:
        return False
    if _char_classes(text) < 3 or any(s in text for s in _SEQUENCES):
        return False
    if shannon_entropy(text) < 4.0:
        return False
    return _transitions(text) >= 0.35


def _value_is_secret_like(text: str) -> bool:
    """Filter for string constants stored into secret-named fields (``key = "..."``)."""
    if len(text) < 6 or len(text) > 512 or text.startswith(("http://", "https://", "/", "%")):
        return False
    if re.fullmatch(r"[a-z0-9_.\-]+|[A-Z0-9_.\-]+", text):  # preference names, constants
        return False
    return shannon_entropy(text) >= 2.5


def _valid_host(host: str) -> bool:
    return bool(host) and len(host) <= 253 and bool(_HOST_RE.match(host))


def _is_ip(text: str) -> bool:
    return bool(_IP_RE.match(text))


def _ip_private(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return addr.is_private or addr.is_loopback or addr.is_link_local


def _domain_ok(dom: str) -> bool:
    """A whole string that looks like a host name (not a Java package or a file name)."""
    labels = dom.split(".")
    return (
        len(labels) >= 2
        and labels[-1] in _TLDS
        and labels[0] not in _PACKAGE_ROOTS
        and not (len(labels) >= 3 and labels[0] in _TLDS)  # nl.example.app: reversed package
        and all(lab and not lab.startswith("-") and not lab.endswith("-") for lab in labels)
        and not labels[-2].isdigit()
    )


_PRINTABLE = re.compile(r"^[\x20-\x7e]{6,64}$")


def _decoded_text(value: str) -> str | None:
    """Printable ASCII text (6-64 characters) that a constant Base64 string decodes to."""
    if len(value) < 8 or len(value) > 128:
        return None
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if _PRINTABLE.match(text) else None


class _StringCollector:
    """Interesting string values across DEX files, with their code locations."""

    def __init__(self) -> None:
        self.urls: dict[str, UrlString] = {}
        self.ips: dict[str, IpString] = {}
        self.emails: dict[str, EmailString] = {}
        self.domains: set[str] = set()
        self.secrets: dict[tuple[str, str], Secret] = {}
        # (dex index, string idx) -> value objects that gain a location when the string is used
        self.by_sidx: dict[tuple[int, int], list[Any]] = {}
        # generic secrets must be referenced from code (const-string) to be reported
        self.pending_generic: dict[tuple[int, int], Secret] = {}

    def attach(self, key: tuple[int, int], obj: Any) -> None:
        lst = self.by_sidx.setdefault(key, [])
        if obj not in lst:
            lst.append(obj)

    def needs_location(self, key: tuple[int, int]) -> bool:
        objs = self.by_sidx.get(key)
        return bool(objs) and any(len(o.locations) < MAX_LOCATIONS for o in objs)

    def add_location(self, key: tuple[int, int], loc: Location) -> None:
        for o in self.by_sidx.get(key, ()):
            if len(o.locations) < MAX_LOCATIONS and loc not in o.locations:
                o.locations.append(loc)
        pending = self.pending_generic.get(key)
        if pending is not None and not (loc.cls or "").startswith(FRAMEWORK_PREFIXES):
            del self.pending_generic[key]
            existing = self.secrets.get((pending.kind, pending.value))
            if existing is None:
                self.secrets[(pending.kind, pending.value)] = pending
                pending.locations.append(loc)
            elif loc not in existing.locations and len(existing.locations) < MAX_LOCATIONS:
                existing.locations.append(loc)
            self.attach(key, self.secrets[(pending.kind, pending.value)])

    def secret(self, kind: str, value: str) -> Secret:
        s = self.secrets.get((kind, value))
        if s is None:
            s = Secret(kind, value, round(shannon_entropy(value), 3))
            self.secrets[(kind, value)] = s
        return s


class _StringScan:
    """Mixin of ``_DexScan``: finds the interesting string ids of one DEX file by scanning
    the string-data bytes (never decoding every string)."""

    # ---------------------------------------------------------------- strings
    def _setup_strings(self) -> None:
        offs = self.dex.string_offsets
        # string data is normally laid out in id order; check a sample (a wrong guess only
        # loses hits: _string_at verifies that the string found contains the position)
        sample = offs[:: max(1, len(offs) // 256)]
        if sorted(sample) == sample.tolist():
            self._soffs = offs
            self._sidx = None
        else:
            order = sorted(range(len(offs)), key=offs.__getitem__)
            self._soffs = [offs[i] for i in order]
            self._sidx = order

    def _string_at(self, pos: int) -> tuple[int, int, int] | None:
        """(string idx, data start, data end) of the string whose bytes contain ``pos``."""
        i = bisect_right(self._soffs, pos) - 1
        if i < 0:
            return None
        sidx = self._sidx[i] if self._sidx is not None else i
        data = self.data
        p = self._soffs[i]
        for _ in range(5):
            if p >= len(data):
                return None
            b = data[p]
            p += 1
            if b < 0x80:
                break
        if pos < p:
            return None
        end = data.find(b"\x00", p)
        if end < 0 or pos > end:
            return None
        return sidx, p, end

    def collect_strings(self) -> None:
        dex = self.dex
        data = self.data
        col = self.prog.strings
        di = self.di
        self._setup_strings()
        ss, se = dex.section_range(TYPE_STRING_DATA_ITEM)
        done: set[int] = set()

        def text_of(sidx: int) -> str:
            return dex.string(sidx)

        # URLs: anchored on "://"
        find = data.find
        p = find(b"://", ss, se)
        while p >= 0:
            hit = self._string_at(p)
            if hit is not None and hit[0] not in done:
                done.add(hit[0])
                self._urls_in(hit[0], text_of(hit[0]))
            p = find(b"://", p + 3, se)
        # e-mail addresses
        p = find(b"@", ss, se)
        while p >= 0:
            hit = self._string_at(p)
            if hit is not None:
                if hit[0] not in done:
                    text = text_of(hit[0])
                    for m in _EMAIL_RE.finditer(text):
                        email = m.group(0)
                        if email.rsplit(".", 1)[1].lower() in (
                            "png",
                            "jpg",
                            "jpeg",
                            "gif",
                            "webp",
                            "xml",
                            "json",
                            "js",
                        ):
                            continue
                        obj = col.emails.setdefault(email, EmailString(email))
                        col.attach((di, hit[0]), obj)
                        self.str_targets.add(hit[0])
                p = find(b"@", hit[2], se) if hit[2] > p else find(b"@", p + 1, se)
            else:
                p = find(b"@", p + 1, se)
        # whole strings: IPs, host names, single tokens
        for m in _WHOLE_RE.finditer(data, max(ss - 1, 0), se):
            group = m.lastgroup
            start = m.start(group)
            hit = self._string_at(start)
            if hit is None or hit[1] != start or hit[0] in done:
                continue
            sidx = hit[0]
            if group == "text":
                self._secrets_in(sidx, text_of(sidx), generic=False)
                continue
            value = m.group(group).decode("ascii")
            if group == "ip":
                ip = value.split(":", 1)[0]
                if _is_ip(ip):
                    obj = col.ips.setdefault(ip, IpString(ip, _ip_private(ip)))
                    col.attach((di, sidx), obj)
                    self.str_targets.add(sidx)
            elif group == "dom":
                if _domain_ok(value):
                    col.domains.add(value)
            else:
                self._secrets_in(sidx, value, generic=True)

    def _urls_in(self, sidx: int, text: str) -> None:
        col = self.prog.strings
        key = (self.di, sidx)
        raw = text.encode("utf-8", "replace")
        p = raw.find(b"://")
        while p >= 0:
            start = -1
            for scheme in _URL_SCHEMES:
                if raw[max(p - len(scheme), 0) : p].lower() == scheme and p >= len(scheme):
                    start = p - len(scheme)
                    break
            if start >= 0:
                m = _URL_BODY.match(raw, p + 3)
                if m:
                    url = raw[start : m.end()].decode("ascii", "replace").rstrip(".,;:)]'\"")
                    self._add_url(key, url)
            p = raw.find(b"://", p + 3)
        self._secrets_in(sidx, text, generic=False)
        m = _URL_CREDENTIALS.match(text)
        if m or _FIREBASE_RE.match(text):
            kind = "firebase_url" if not m else "password"
            col.attach(key, col.secret(kind, text if m else text.split("?")[0]))
            self.str_targets.add(sidx)

    def _add_url(self, key: tuple[int, int], url: str) -> None:
        col = self.prog.strings
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            scheme = parts.scheme.lower()
        except ValueError:
            return
        if not _valid_host(host) or host in _NAMESPACE_HOSTS:
            return
        if "." not in host and host != "localhost":
            return
        obj = col.urls.get(url)
        if obj is None:
            obj = col.urls[url] = UrlString(url, scheme, host)
        col.attach(key, obj)
        self.str_targets.add(key[1])
        if _is_ip(host):
            ipo = col.ips.setdefault(host, IpString(host, _ip_private(host)))
            ipo.in_url = True
            col.attach(key, ipo)
        elif host != "localhost":
            col.domains.add(host)
        if _FIREBASE_RE.match(url):
            col.attach(key, col.secret("firebase_url", f"{scheme}://{host}"))
        elif host == "hooks.slack.com" and "/services/" in url:
            col.attach(key, col.secret("slack_webhook", url))

    def _secrets_in(self, sidx: int, text: str, generic: bool) -> None:
        col = self.prog.strings
        key = (self.di, sidx)
        for kind, value in classify_secret(text, generic=generic):
            if kind == "generic_api_key":
                # reported only if some code loads the constant (see add_location)
                col.pending_generic[key] = Secret(kind, value, round(shannon_entropy(value), 3))
            else:
                col.attach(key, col.secret(kind, value))
            self.str_targets.add(sidx)
