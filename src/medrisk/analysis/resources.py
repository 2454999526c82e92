"""Facts from ``resources.arsc`` string resources (the ``resources`` section).

* ``strings``: number of ``string`` resources (distinct names);
* ``firebase_urls``: Firebase Realtime Database URLs found in any string value;
* ``secret_strings``: ``strings.xml`` entries whose *name* suggests a credential and
  whose *value* looks like one (a ``password`` string reading "Password" is a label);
* ``certificates`` / ``keystores``: packaged files by name, when the caller passes the
  container's entry names.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from medrisk.analysis.arsc import ResourceTable

FIREBASE_RE = re.compile(
    r"https?://[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.firebaseio\.com|(?:\.[a-z0-9-]{1,63})*\.firebasedatabase\.app)\b",
    re.IGNORECASE,
)

# A name suggests a secret when one of its words (split on ``_ . -`` and camelCase)
# is in _SECRET_WORDS, or two adjacent words form a pair in _SECRET_PAIRS ...
_SECRET_WORDS = frozenset(
    "secret secrets password passwd pwd passphrase token tokens apikey apikeys credential "
    "credentials bearer salt aws privatekey accesskey secretkey clientsecret appsecret "
    "appkey authkey authtoken accesstoken refreshtoken".split()
)
_SECRET_PAIRS = frozenset(
    tuple(p.split("+"))
    for p in "api+key api+keys access+key private+key secret+key client+secret app+key app+secret "
    "auth+key encryption+key signing+key license+key master+key consumer+secret consumer+key "
    "sdk+key server+key".split()
)
# ... and none of its words marks it as UI text or public configuration.
_NOT_SECRET_WORDS = frozenset(
    "hint label title desc description message msg error prompt summary toggle button btn text "
    "caption forgot reset show hide confirm enter invalid wrong incorrect mismatch required empty "
    "length strength visibility visible placeholder header subtitle action dialog toast menu "
    "tooltip note info help policy requirements requirement rule rules field input old new "
    "current change changed expired type mode ui screen".split()
)
_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_CERT_EXT = (".cer", ".crt", ".pem", ".der", ".p7b", ".p7c")
_KEYSTORE_EXT = (".jks", ".bks", ".keystore", ".p12", ".pfx", ".pkcs12", ".ks")
MAX_SECRET_VALUE = 4096


@dataclass(slots=True)
class SecretString:
    name: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value}


@dataclass(slots=True)
class ResourceFacts:
    strings: int = 0
    firebase_urls: list[str] = field(default_factory=list)
    secret_strings: list[SecretString] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)
    keystores: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strings": self.strings,
            "firebase_urls": list(self.firebase_urls),
            "secret_strings": [s.to_dict() for s in self.secret_strings],
            "certificates": list(self.certificates),
            "keystores": list(self.keystores),
        }


def shannon_entropy(value: str) -> float:
    """Bits per character."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def name_words(name: str) -> list[str]:
    """``googleApiKey_v2`` -> ``["google", "api", "key", "v", "2"]``."""
    return [w.lower() for w in _WORD_RE.findall(name)]


def name_suggests_secret(name: str) -> bool:
    words = name_words(name[:200])
    if not words or any(w in _NOT_SECRET_WORDS for w in words):
        return False
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:]))


def looks_like_credential(value: str) -> bool:
    """A credential-looking value: no whitespace, at least 8 characters, not a resource
    reference or URL, and either letters mixed with digits or high entropy (so labels
    such as "Password:" or "Keystore" are not)."""
    v = value.strip()
    if len(v) < 8 or len(v) > MAX_SECRET_VALUE or any(c.isspace() for c in v):
        return False
    if v[0] in "@?" or v.startswith(("http://", "https://", "android.", "com.", "res/")):
        return False
    has_alpha = any(c.isalpha() for c in v)
    has_digit = any(c.isdigit() for c in v)
    if has_alpha and has_digit:
        return True
    classes = sum((any(c.islower() for c in v), any(c.isupper() for c in v), has_digit))
    classes += any(not c.isalnum() for c in v)
    return classes >= 2 and shannon_entropy(v) >= 3.5


def classify_files(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(certificates, keystores) among packaged file names, by extension."""
    certs: set[str] = set()
    stores: set[str] = set()
    for name in names:
        low = name.lower()
        if low.startswith("meta-inf/"):
            continue  # signature blocks are reported by the signing analyser
        if low.endswith(_CERT_EXT):
            certs.add(name)
        elif low.endswith(_KEYSTORE_EXT):
            stores.add(name)
    return sorted(certs), sorted(stores)


def resource_facts(arsc: bytes | ResourceTable | None, names: Iterable[str] | None = None) -> ResourceFacts:
    """Facts from ``resources.arsc`` (bytes or parsed table; ``None``: no resources).

    ``names`` (optional) are the package's entry names, used for ``certificates`` and
    ``keystores``. Raises ``AnalysisError('corrupt_arsc')`` on an unreadable table.
    """
    facts = ResourceFacts()
    if names is not None:
        facts.certificates, facts.keystores = classify_files(names)
    if arsc is None:
        return facts
    table = arsc if isinstance(arsc, ResourceTable) else ResourceTable(arsc)
    named = table.named_strings()
    facts.strings = len(named)

    urls: set[str] = set()
    for s in table.strings():
        if "firebase" in s.lower():
            for m in FIREBASE_RE.finditer(s):
                urls.add(m.group(0).lower())
    facts.firebase_urls = sorted(urls)

    secrets: list[SecretString] = []
    for name, value in named:
        if name_suggests_secret(name) and looks_like_credential(value):
            secrets.append(SecretString(name, value))
    facts.secret_strings = secrets
    return facts
