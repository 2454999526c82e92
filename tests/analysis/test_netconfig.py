"""Network security config facts: corpus apps, synthetic configs (domains, nested
inheritance, pins and expiry, @raw trust anchors), aapt agreement and fuzzing."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medrisk.analysis.axml import Ref
from medrisk.analysis.errors import AnalysisError
from medrisk.analysis.manifest import manifest_facts
from medrisk.analysis.netconfig import netconfig_facts
from tests.analysis.test_arsc import DEFAULT, build_arsc
from tests.analysis.test_axml import APKS, A, E, _mutate, aapt, build_axml, parse_xmltree, read_entry


def corpus_netconfig(name: str, today: date | None = None):
    apk = next(p for p in APKS if p.name == name)
    arsc = read_entry(apk, "resources.arsc")
    m = manifest_facts(read_entry(apk, "AndroidManifest.xml"), arsc)
    path = m.network_security_config
    return netconfig_facts(read_entry(apk, path) if path else None, path, arsc, today=today)


def test_androgoat_trusts_user_cas() -> None:
    f = corpus_netconfig("AndroGoat.apk")
    assert f.to_dict() == {
        "present": True,
        "file": "res/xml/network_security_config.xml",
        "base": {
            "cleartext_permitted": True,
            "trust_anchors": [
                {"src": "system", "overrides_pins": False},
                {"src": "user", "overrides_pins": False},
            ],
        },
        "domains": [],
        "debug_overrides": None,
    }


def test_damn_vulnerable_bank() -> None:
    f = corpus_netconfig("DamnVulnerableBank.apk")
    assert f.present and f.base_cleartext_permitted is True
    assert [t.src for t in f.base_trust_anchors] == ["user", "system"]


@pytest.mark.parametrize("apk", ["AndroGoat.apk", "DamnVulnerableBank.apk"])
def test_tree_agrees_with_aapt(apk: str, corpus_dir: Path) -> None:
    path = next(p for p in APKS if p.name == apk)
    rc, out = aapt("dump", "xmltree", str(path), "res/xml/network_security_config.xml")
    assert rc == 0
    nodes = parse_xmltree(out)
    anchors = [a for n in nodes if n.tag == "certificates" for a in n.attrs if a[0] == "src"]
    f = corpus_netconfig(apk)
    assert [t.src for t in f.base_trust_anchors] == [v.strip('"') for _n, _r, v in anchors]


def test_absent_config() -> None:
    f = corpus_netconfig("InsecureBankv2.apk")
    assert f.to_dict() == {
        "present": False,
        "file": None,
        "base": {"cleartext_permitted": None, "trust_anchors": []},
        "domains": [],
        "debug_overrides": None,
    }
    # manifest names a file the package does not contain
    assert netconfig_facts(None, "res/xml/missing.xml").to_dict()["file"] == "res/xml/missing.xml"


def pinned_config() -> bytes:
    return build_axml(
        E(
            "network-security-config",
            [],
            [
                E("base-config", [A("cleartextTrafficPermitted", False, ns=None)], line=2),
                E(
                    "domain-config",
                    [A("cleartextTrafficPermitted", True, ns=None)],
                    [
                        E("domain", [A("includeSubdomains", True, ns=None)], text=" api.med.example "),
                        E("domain", [], text="cdn.med.example"),
                        E(
                            "trust-anchors",
                            [],
                            [
                                E("certificates", [A("src", Ref(0x7F010000), ns=None)]),
                                E("certificates", [A("src", "system", ns=None), A("overridePins", True, ns=None)]),
                            ],
                        ),
                        E(
                            "pin-set",
                            [A("expiration", "2024-06-30", ns=None)],
                            [
                                E(
                                    "pin",
                                    [A("digest", "SHA-256", ns=None)],
                                    text="7HIpactkIAq2Y49orFOOQKurWxmmSFZhBCoQYcRhJ3Y=",
                                ),
                                E(
                                    "pin",
                                    [A("digest", "SHA-256", ns=None)],
                                    text="fwza0LRMXouZHRC8Ei+4PyuldPDcf3UKgO/04cDM1oE=",
                                ),
                            ],
                        ),
                        E(
                            "domain-config",
                            [],
                            [E("domain", [], text="legacy.med.example")],
                            line=20,
                        ),
                        E(
                            "domain-config",
                            [A("cleartextTrafficPermitted", False, ns=None)],
                            [E("domain", [], text="strict.med.example"), E("pin-set", [], [])],
                            line=25,
                        ),
                    ],
                    line=3,
                ),
                E("debug-overrides", [], [E("trust-anchors", [], [E("certificates", [A("src", "user", ns=None)])])]),
            ],
        )
    )


def test_domains_pins_and_inheritance() -> None:
    arsc = build_arsc([("raw", "my_ca", {DEFAULT: "res/raw/my_ca.pem"})])
    f = netconfig_facts(pinned_config(), "res/xml/nsc.xml", arsc, today=date(2024, 1, 1))
    d = f.to_dict()
    assert d["base"] == {"cleartext_permitted": False, "trust_anchors": []}
    assert d["debug_overrides"] == {"trust_anchors": [{"src": "user", "overrides_pins": False}]}
    top, nested, strict = d["domains"]
    assert top["domains"] == [
        {"name": "api.med.example", "include_subdomains": True},
        {"name": "cdn.med.example", "include_subdomains": False},
    ]
    assert top["cleartext_permitted"] is True
    assert top["trust_anchors"] == [
        {"src": "@raw/my_ca", "overrides_pins": False},
        {"src": "system", "overrides_pins": True},
    ]
    assert [p["digest"] for p in top["pins"]] == ["SHA-256", "SHA-256"]
    assert top["pins"][0]["value"].startswith("7HIp")
    assert top["pin_expiration"] == "2024-06-30" and top["pin_expired"] is False
    # nested config inherits cleartext, anchors and pins from its parent
    assert nested["domains"] == [{"name": "legacy.med.example", "include_subdomains": False}]
    assert nested["cleartext_permitted"] is True
    assert nested["trust_anchors"] == top["trust_anchors"] and nested["pins"] == top["pins"]
    assert nested["pin_expired"] is False
    # its own (empty) pin-set replaces the parent's
    assert strict["cleartext_permitted"] is False and strict["pins"] == [] and strict["pin_expired"] is None
    json.dumps(d)


@pytest.mark.parametrize(
    ("today", "expired"), [(date(2024, 6, 29), False), (date(2024, 6, 30), True), (date(2030, 1, 1), True)]
)
def test_pin_expiry(today: date, expired: bool) -> None:
    f = netconfig_facts(pinned_config(), "x", None, today=today)
    assert f.domains[0].pin_expired is expired


def test_default_today_and_unresolved_raw() -> None:
    f = netconfig_facts(pinned_config(), "x", None)  # today = date.today(); 2024-06-30 is past
    assert f.domains[0].pin_expired is True
    assert f.domains[0].trust_anchors[0].src == "@0x7f010000"  # no resources.arsc to name it


def test_not_a_netconfig() -> None:
    with pytest.raises(AnalysisError) as exc:
        netconfig_facts(build_axml(E("manifest")), "x", None)
    assert exc.value.code == "corrupt_netconfig"
    with pytest.raises(AnalysisError) as exc:
        netconfig_facts(b"<network-security-config/>", "x", None)
    assert exc.value.code == "corrupt_axml"


def test_deeply_nested_domain_configs() -> None:
    el = E("domain-config", [A("cleartextTrafficPermitted", True, ns=None)], [E("domain", [], text="d0")])
    root = el
    for i in range(1, 3000):
        child = E("domain-config", [], [E("domain", [], text=f"d{i}")])
        el.children.append(child)
        el = child
    t = time.perf_counter()
    f = netconfig_facts(build_axml(E("network-security-config", [], [root])), "x", None)
    assert time.perf_counter() - t < 2.0
    assert len(f.domains) == 3000 and all(d.cleartext_permitted for d in f.domains)


SEEDS = [pinned_config()] + [
    d
    for d in (read_entry(p, "res/xml/network_security_config.xml") for p in APKS if p.name == "AndroGoat.apk")
    if d is not None
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEEDS) - 1), st.integers(0, 2**32), st.integers(1, 12))
def test_fuzz_mutated_configs(which: int, seed: int, n: int) -> None:
    try:
        json.dumps(netconfig_facts(_mutate(SEEDS[which], seed, n), "x", None, today=date(2025, 1, 1)).to_dict())
    except AnalysisError as e:
        assert e.code in ("corrupt_axml", "corrupt_netconfig")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        netconfig_facts(data, "x", None)
    except AnalysisError:
        pass
