"""Network security configuration facts (``res/xml/network_security_config.xml``).

The file is compiled binary XML. Nested ``<domain-config>`` elements inherit what they
do not set from their parent, as on Android; the result lists every domain config with
its effective values. Pin-set expiration is compared with ``today``: Android stops
enforcing pins from the expiration date on, so a pin set is expired when
``expiration <= today``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from medrisk.analysis.arsc import ResourceTable
from medrisk.analysis.axml import Element, Ref, parse_axml
from medrisk.analysis.errors import AnalysisError

MAX_DOMAIN_CONFIGS = 10_000


@dataclass(slots=True)
class TrustAnchor:
    src: str
    overrides_pins: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"src": self.src, "overrides_pins": self.overrides_pins}


@dataclass(slots=True)
class Pin:
    digest: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "value": self.value}


@dataclass(slots=True)
class DomainName:
    name: str
    include_subdomains: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "include_subdomains": self.include_subdomains}


@dataclass(slots=True)
class DomainConfig:
    domains: list[DomainName] = field(default_factory=list)
    cleartext_permitted: bool | None = None
    trust_anchors: list[TrustAnchor] = field(default_factory=list)
    pins: list[Pin] = field(default_factory=list)
    pin_expiration: str | None = None
    pin_expired: bool | None = None
    line: int | None = None  # not part of the JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "domains": [d.to_dict() for d in self.domains],
            "cleartext_permitted": self.cleartext_permitted,
            "trust_anchors": [t.to_dict() for t in self.trust_anchors],
            "pins": [p.to_dict() for p in self.pins],
            "pin_expiration": self.pin_expiration,
            "pin_expired": self.pin_expired,
        }


@dataclass(slots=True)
class NetConfigFacts:
    present: bool = False
    file: str | None = None
    base_cleartext_permitted: bool | None = None
    base_trust_anchors: list[TrustAnchor] = field(default_factory=list)
    domains: list[DomainConfig] = field(default_factory=list)
    debug_overrides: list[TrustAnchor] | None = None
    anomalies: list[str] = field(default_factory=list)  # not part of the JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "file": self.file,
            "base": {
                "cleartext_permitted": self.base_cleartext_permitted,
                "trust_anchors": [t.to_dict() for t in self.base_trust_anchors],
            },
            "domains": [d.to_dict() for d in self.domains],
            "debug_overrides": (
                None if self.debug_overrides is None else {"trust_anchors": [t.to_dict() for t in self.debug_overrides]}
            ),
        }


def _attr(el: Element, name: str) -> Any:
    """Non-namespaced attribute value (the config's attributes carry no namespace)."""
    a = el.get(name, None)
    if a is None:
        # tolerate android:-prefixed spellings that aapt would keep as written
        for cand in el.attributes:
            if cand.name == name:
                a = cand
                break
    return None if a is None else a.value


class _Resolver:
    def __init__(self, table: ResourceTable | None) -> None:
        self.table = table

    def value(self, v: Any) -> Any:
        if isinstance(v, Ref) and not v.attr and self.table is not None:
            r = self.table.resolve(v.id)
            return v if r is None else r
        return v

    def bool(self, el: Element, name: str) -> bool | None:
        v = self.value(_attr(el, name))
        if isinstance(v, bool):
            return v
        if isinstance(v, int):
            return v != 0
        if isinstance(v, str):
            s = v.strip().lower()
            return True if s == "true" else False if s == "false" else None
        return None

    def src(self, el: Element) -> str:
        v = _attr(el, "src")
        if isinstance(v, Ref):
            name = self.table.name(v.id) if self.table is not None else None
            return f"@{name}" if name else str(v)
        return "" if v is None else str(v).strip()


def _trust_anchors(el: Element, r: _Resolver) -> list[TrustAnchor]:
    out: list[TrustAnchor] = []
    for ta in el.children:
        if ta.tag != "trust-anchors":
            continue
        for cert in ta.children:
            if cert.tag == "certificates":
                out.append(TrustAnchor(r.src(cert), bool(r.bool(cert, "overridePins"))))
    return out


def _parse_expiration(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def netconfig_facts(
    xml_bytes: bytes | None,
    path: str | None,
    arsc: bytes | ResourceTable | None = None,
    today: date | None = None,
) -> NetConfigFacts:
    """Facts from a compiled network security config (``None`` bytes: not present)."""
    facts = NetConfigFacts(present=False, file=path)
    if xml_bytes is None:
        return facts
    doc = parse_axml(xml_bytes)
    root = doc.root
    facts.anomalies = list(doc.anomalies)
    if root.tag != "network-security-config":
        raise AnalysisError("corrupt_netconfig", f"root element is <{root.tag[:40]}>, not <network-security-config>")
    facts.present = True
    table: ResourceTable | None
    if arsc is None or isinstance(arsc, ResourceTable):
        table = arsc
    else:
        try:
            table = ResourceTable(arsc)
        except AnalysisError as e:
            facts.anomalies.append(f"resources.arsc unreadable: {e.message}")
            table = None
    r = _Resolver(table)
    today = today or date.today()

    base = root.find("base-config")
    if base is not None:
        facts.base_cleartext_permitted = r.bool(base, "cleartextTrafficPermitted")
        facts.base_trust_anchors = _trust_anchors(base, r)
    debug = root.find("debug-overrides")
    if debug is not None:
        facts.debug_overrides = _trust_anchors(debug, r)

    # Iterative walk over (possibly nested) domain-configs with inherited state.
    parent_state = DomainConfig()
    work: list[tuple[Element, DomainConfig]] = [
        (el, parent_state) for el in reversed(root.children) if el.tag == "domain-config"
    ]
    while work:
        el, parent = work.pop()
        if len(facts.domains) >= MAX_DOMAIN_CONFIGS:
            facts.anomalies.append("too many domain-config elements")
            break
        cfg = DomainConfig(line=el.line)
        cleartext = r.bool(el, "cleartextTrafficPermitted")
        cfg.cleartext_permitted = parent.cleartext_permitted if cleartext is None else cleartext
        for d in el.children:
            if d.tag == "domain":
                name = d.text.strip()
                if name:
                    cfg.domains.append(DomainName(name, bool(r.bool(d, "includeSubdomains"))))
        anchors = _trust_anchors(el, r)
        cfg.trust_anchors = anchors if any(c.tag == "trust-anchors" for c in el.children) else parent.trust_anchors
        pin_set = el.find("pin-set")
        if pin_set is not None:
            for p in pin_set.children:
                if p.tag == "pin":
                    digest = _attr(p, "digest")
                    cfg.pins.append(Pin(str(digest) if digest is not None else "", p.text.strip()))
            exp = _attr(pin_set, "expiration")
            if exp is not None:
                cfg.pin_expiration = str(exp)
                day = _parse_expiration(str(exp))
                cfg.pin_expired = None if day is None else day <= today
        else:
            cfg.pins = list(parent.pins)
            cfg.pin_expiration = parent.pin_expiration
            cfg.pin_expired = parent.pin_expired
        facts.domains.append(cfg)
        for child in reversed(el.children):
            if child.tag == "domain-config":
                work.append((child, cfg))
    return facts
