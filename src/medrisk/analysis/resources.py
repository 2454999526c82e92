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
from medrisk.analysis.axml import Ref, parse_axml
from medrisk.analysis.errors import AnalysisError

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
    string_secrets: list[dict[str, str]] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)
    keystores: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strings": self.strings,
            "firebase_urls": list(self.firebase_urls),
            "secret_strings": [s.to_dict() for s in self.secret_strings],
            "string_secrets": list(self.string_secrets),
            "layouts": [],
            "file_provider_paths": [],
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
    pool = table.strings_pool
    # decoding every string of a large table (tens of thousands of translations) costs ~0.1 s;
    # a byte search of the pool tells first whether any string can mention Firebase
    for s in table.strings() if pool is not None and pool.may_contain("firebase") else ():
        if "firebase" in s.lower():
            for m in FIREBASE_RE.finditer(s):
                urls.add(m.group(0).lower())
    facts.firebase_urls = sorted(urls)

    secrets: list[SecretString] = []
    for name, value in named:
        if name_suggests_secret(name) and looks_like_credential(value):
            secrets.append(SecretString(name, value))
    facts.secret_strings = secrets

    from medrisk.analysis.code import classify_secret  # the classifier of code strings

    found: dict[tuple[str, str], dict[str, str]] = {}
    for name, value in named:
        if len(value) > MAX_SECRET_VALUE:
            continue
        kinds = classify_secret(value, generic=False)
        if _URL_CREDENTIALS.match(value) and not _URL_PLACEHOLDER.match(value):
            kinds.append(("password", value))
        for kind, v in kinds:
            found.setdefault((kind, name), {"name": name, "kind": kind, "value": v})
    facts.string_secrets = [found[k] for k in sorted(found)]
    return facts


_URL_CREDENTIALS = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]+:[^/?#@\s]+@")
_URL_PLACEHOLDER = re.compile(
    r"(?i)^[^:]+://[^/?#@]*:(password|passwd|pass|pwd|secret|[*x]+|%s|[$]?[{][^}]*[}]|<[^>]*>)@"
)
MAX_LAYOUT_FILES = 400
MAX_XML_BYTES = 256 * 1024


def _password_type(itype: int) -> bool:
    """textPassword / textVisiblePassword / textWebPassword / numberPassword."""
    cls, variation = itype & 0xF, itype & 0xFF0
    return (cls == 1 and variation in (0x80, 0x90, 0xE0)) or (cls == 2 and variation == 0x10)


_PATH_TAGS = (
    "root-path",
    "external-path",
    "external-files-path",
    "external-cache-path",
    "external-media-path",
    "files-path",
    "cache-path",
)


def layout_facts(container: Any, arsc: ResourceTable | None, components: list[dict], package: str) -> dict[str, Any]:
    """``layouts`` (EditText fields of res/layout*/*.xml, bounded) and ``file_provider_paths``
    (the path entries of the FILE_PROVIDER_PATHS file of each provider)."""
    layouts: list[dict[str, Any]] = []
    count = 0
    for name in sorted(container.names()):
        if not (name.startswith("res/layout") and name.endswith(".xml")):
            continue
        count += 1
        if count > MAX_LAYOUT_FILES:
            break
        entry = container.entry(name)
        if entry is None or entry.size > MAX_XML_BYTES:
            continue
        try:
            doc = parse_axml(container.read(name))
        except AnalysisError:
            continue
        for el in doc.root.iter():
            if not el.tag.endswith("EditText"):
                continue
            itype = el.value("inputType")
            itype = itype if isinstance(itype, int) and not isinstance(itype, bool) else None
            pw = el.value("password")
            ident = el.get("id")
            hint = el.get("hint")
            layouts.append(
                {
                    "file": name,
                    "id": _res_name(arsc, ident.value) if ident is not None else None,
                    "input_type": itype,
                    "password": pw is True or (itype is not None and _password_type(itype)),
                    "hint": _res_text(arsc, hint.value) if hint is not None else None,
                }
            )
    paths: list[dict[str, str]] = []
    if container.has("AndroidManifest.xml") and any(c.get("type") == "provider" for c in components):
        try:
            man = parse_axml(container.read("AndroidManifest.xml"))
        except AnalysisError:
            man = None
        for el in man.root.iter("provider") if man is not None else ():
            pname = el.value("name")
            for md in el.findall("meta-data"):
                if md.value("name") != "android.support.FILE_PROVIDER_PATHS":
                    continue
                res = md.value("resource")
                file = arsc.resolve(res.id) if isinstance(res, Ref) and arsc is not None else None
                if not isinstance(file, str) or not container.has(file):
                    continue
                try:
                    pdoc = parse_axml(container.read(file))
                except AnalysisError:
                    continue
                for pe in pdoc.root.iter():
                    if pe.tag in _PATH_TAGS:
                        pv = pe.value("path", None)
                        full = str(pname) if pname else ""
                        if full.startswith("."):
                            full = package + full
                        paths.append({"provider": full, "file": file, "tag": pe.tag, "path": str(pv or "")})
    return {"layouts": layouts, "file_provider_paths": paths}


def _res_name(arsc: ResourceTable | None, value: object) -> str | None:
    if isinstance(value, Ref) and arsc is not None:
        return arsc.name(value.id)
    return None if value is None else str(value)


def _res_text(arsc: ResourceTable | None, value: object) -> str | None:
    if isinstance(value, Ref) and arsc is not None:
        v = arsc.resolve(value.id)
        return v if isinstance(v, str) else None
    return value if isinstance(value, str) else None
