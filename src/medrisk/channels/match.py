"""Listings against filed apps: the verdicts (pure: data in, verdict drafts out).

For each listing (docs/channels.md):
- same package as a filing, a signer not among the filing's certificates → ``tampered``;
- same package and signer, version ≠ the filed version → ``drift`` (major when x or y of x.y
  differs, the white paper's §5.2.2(2) rule), and when the listed version is older than the
  filed one and carries high/critical findings that the filed release fixed → ``stale_vulnerable``;
- another package whose name (text or pinyin) or icon is close to a filed app's, or whose
  developer field names the filing institution → ``lookalike`` with the score and threshold;
- no match, but medical by category or keyword → ``unfiled`` (inventory for the regulator).
A listing whose signer is not known yet (not declared by the channel, APK not downloaded)
gets no tamper or drift verdict until it is.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from medrisk.channels import names
from medrisk.platform import versioning

HERE = Path(__file__).resolve().parent
SEVERE = {"high", "critical"}
GRADE_RANK = {"A": 0, "B": 1, "C": 2}


@cache
def config() -> dict[str, Any]:
    return yaml.safe_load((HERE / "matching.yaml").read_text(encoding="utf-8"))


@dataclass
class FiledApp:
    filing_id: int
    org_id: int
    package: str
    name: str
    version: str  # the filed (current) version name
    institution: str = ""
    signers: frozenset[str] = frozenset()
    version_code: int | None = None  # of the latest uploaded release, when known
    grade: str | None = None  # of the latest scan of that release
    severe_rules: frozenset[str] = frozenset()  # its high/critical findings
    icon_hash: str | None = None


@dataclass
class ListingFacts:
    ref: Any  # the caller's handle (a row id)
    package: str
    app_name: str = ""
    version_name: str | None = None
    version_code: int | None = None
    developer: str | None = None
    signers: Sequence[str] = ()
    icon_hash: str | None = None
    categories: Sequence[str] = ()
    summary: str = ""
    grade: str | None = None
    severe_rules: Sequence[str] = ()


@dataclass
class Draft:
    kind: str  # tampered | lookalike | drift | stale_vulnerable | unfiled
    severity: str
    ref: Any
    filing_id: int | None
    org_id: int | None
    score: float | None = None
    threshold: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    key_suffix: str = ""  # what makes two verdicts on one listing different (the filing)


def _version_tuple(v: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v or "")[:4])


def is_older(listing_code: int | None, listing_name: str | None, filed: FiledApp) -> bool:
    if listing_code is not None and filed.version_code is not None:
        return listing_code < filed.version_code
    a, b = _version_tuple(listing_name), _version_tuple(filed.version)
    return bool(a and b) and a < b


def is_medical(facts: ListingFacts) -> bool:
    med = config()["medical"]
    cats = {c.casefold() for c in med["categories"]}
    if any(str(c).casefold() in cats for c in facts.categories):
        return True
    text = f"{facts.app_name} {facts.summary}".casefold()
    return any(k.casefold() in text for k in med["keywords"])


class _SubstringIndex:
    """Which indexed keys occur inside a text: a dict lookup per substring of each indexed length,
    so the cost grows with the text's length, not with the number of keys (10,000 filings)."""

    def __init__(self, items: Iterable[tuple[str, int]]) -> None:
        self.keys: dict[str, list[int]] = defaultdict(list)
        for key, ref in items:
            self.keys[key].append(ref)
        self.lengths = sorted({len(k) for k in self.keys})

    def find(self, text: str) -> dict[int, str]:
        """ref → the key found in ``text``."""
        out: dict[int, str] = {}
        for n in self.lengths:
            if n > len(text):
                break
            for start in range(len(text) - n + 1):
                for ref in self.keys.get(text[start : start + n], ()):
                    out[ref] = text[start : start + n]
        return out


class Matcher:
    """Built once per crawl from the approved filings; ``judge`` takes listings in batches."""

    def __init__(self, filed: Iterable[FiledApp]) -> None:
        self.filed = list(filed)
        th = config()["thresholds"]
        self.sev = config()["severity"]
        self.name_th = float(th["name_similarity"])
        self.contain_min = int(th["name_containment_min"])
        self.icon_th = int(th["icon_distance"])
        self.dev_min = int(th["developer_min_chars"])
        self.by_package: dict[str, list[FiledApp]] = defaultdict(list)
        for f in self.filed:
            self.by_package[f.package].append(f)
        self.norm = [names.normalise(f.name) for f in self.filed]
        self.pin = [names.pinyin(f.name) for f in self.filed]
        # icon index: split the 64-bit hash into icon_th + 1 chunks; by pigeonhole, two hashes
        # within the threshold agree exactly on at least one chunk
        self.chunks = self.icon_th + 1
        self.icon_index: list[dict[int, list[int]]] = [defaultdict(list) for _ in range(self.chunks)]
        for i, f in enumerate(self.filed):
            if f.icon_hash:
                for c, part in enumerate(self._parts(int(f.icon_hash, 16))):
                    self.icon_index[c][part].append(i)
        # substring indexes: a filed name inside a listing's name, an institution inside its developer
        self.contained = _SubstringIndex((n, i) for i, n in enumerate(self.norm) if len(n) >= self.contain_min)
        self.institutions = _SubstringIndex(
            (inst, i) for i, f in enumerate(self.filed) if len(inst := names.normalise(f.institution)) >= self.dev_min
        )

    def _parts(self, h: int) -> list[int]:
        bounds = [round(64 * c / self.chunks) for c in range(self.chunks + 1)]
        return [(h >> bounds[c]) & ((1 << (bounds[c + 1] - bounds[c])) - 1) for c in range(self.chunks)]

    # --- same package -------------------------------------------------------------------------

    def _same_package(self, lf: ListingFacts, filings: list[FiledApp]) -> list[Draft]:
        out: list[Draft] = []
        seen = sorted(set(lf.signers))
        for f in filings:
            if not seen or not f.signers:
                continue  # nothing to compare yet (see the module docstring)
            if not set(seen) & f.signers:
                out.append(
                    Draft(
                        "tampered",
                        self.sev["tampered"],
                        lf.ref,
                        f.filing_id,
                        f.org_id,
                        evidence={
                            "package": lf.package,
                            "listed_signers": seen,
                            "filed_signers": sorted(f.signers),
                            "version": lf.version_name,
                        },
                        key_suffix=str(f.filing_id),
                    )
                )
                continue
            if lf.version_name and lf.version_name != f.version:
                major = versioning.major_drift(lf.version_name, f.version)
                out.append(
                    Draft(
                        "drift",
                        self.sev["drift_major" if major else "drift_minor"],
                        lf.ref,
                        f.filing_id,
                        f.org_id,
                        evidence={
                            "seen": lf.version_name,
                            "filed": f.version,
                            "class": "major" if major else "minor",
                            "rule": "x.y of the seen and filed versions differ" if major else "only the patch differs",
                        },
                        key_suffix=str(f.filing_id),
                    )
                )
            severe = set(lf.severe_rules)
            if severe and f.grade and is_older(lf.version_code, lf.version_name, f):
                fixed = sorted(severe - f.severe_rules)
                better = GRADE_RANK.get(f.grade, 9) < GRADE_RANK.get(lf.grade or "C", 9)
                if fixed or better:
                    out.append(
                        Draft(
                            "stale_vulnerable",
                            self.sev["stale_vulnerable"],
                            lf.ref,
                            f.filing_id,
                            f.org_id,
                            evidence={
                                "listed_version": lf.version_name,
                                "listed_grade": lf.grade,
                                "listed_severe_findings": sorted(severe),
                                "fixed_version": f.version,
                                "fixed_grade": f.grade,
                                "fixed_findings": fixed,
                            },
                            key_suffix=str(f.filing_id),
                        )
                    )
        return out

    # --- other packages -----------------------------------------------------------------------

    def _name_hits(self, batch: list[ListingFacts]) -> list[dict[int, float]]:
        hits: list[dict[int, float]] = [dict() for _ in batch]
        if not self.filed or not batch:
            return hits
        import numpy as np
        from rapidfuzz import process
        from rapidfuzz.distance import Indel

        cutoff = self.name_th
        for choices, convert in ((self.norm, names.normalise), (self.pin, names.pinyin)):
            queries = [convert(lf.app_name) for lf in batch]
            for start in range(0, len(queries), 2000):
                part = queries[start : start + 2000]
                m = process.cdist(
                    part, choices, scorer=Indel.normalized_similarity, score_cutoff=cutoff, dtype=np.float32, workers=-1
                )
                rows, cols = np.nonzero(m)
                for r, c in zip(rows.tolist(), cols.tolist()):
                    q, f = part[r], choices[c]
                    if len(q) < 2 or len(f) < 2:
                        continue
                    d = hits[start + r]
                    d[c] = max(d.get(c, 0.0), float(m[r, c]))
        # a filed name contained in the listing's name ("健康云" in "健康云Plus")
        for i, lf in enumerate(batch):
            text = names.normalise(lf.app_name)
            if len(text) < self.contain_min:
                continue
            for c, n in self.contained.find(text).items():
                if n != text:
                    hits[i][c] = max(hits[i].get(c, 0.0), 0.9)
        return hits

    def _icon_hits(self, lf: ListingFacts) -> dict[int, int]:
        if not lf.icon_hash:
            return {}
        h = int(lf.icon_hash, 16)
        cands: set[int] = set()
        for c, part in enumerate(self._parts(h)):
            cands.update(self.icon_index[c].get(part, ()))
        out = {}
        for i in cands:
            d = (h ^ int(self.filed[i].icon_hash or "0", 16)).bit_count()
            if d <= self.icon_th:
                out[i] = d
        return out

    def _developer_hits(self, lf: ListingFacts) -> dict[int, str]:
        dev = names.normalise(lf.developer or "")
        return self.institutions.find(dev) if len(dev) >= self.dev_min else {}

    def judge(self, batch: list[ListingFacts]) -> list[Draft]:
        out: list[Draft] = []
        foreign = [lf for lf in batch if lf.package not in self.by_package]
        for lf in batch:
            if lf.package in self.by_package:
                out.extend(self._same_package(lf, self.by_package[lf.package]))
        name_hits = self._name_hits(foreign)
        for lf, nh in zip(foreign, name_hits):
            icon = self._icon_hits(lf)
            dev = self._developer_hits(lf)
            matched = set(nh) | set(icon) | set(dev)
            for i in sorted(matched):
                f = self.filed[i]
                reasons = []
                if i in nh:
                    reasons.append({"by": "name", "score": round(nh[i], 3), "threshold": self.name_th})
                if i in icon:
                    reasons.append(
                        {"by": "icon", "distance": icon[i], "threshold": self.icon_th, "score": 1 - icon[i] / 64}
                    )
                if i in dev:
                    reasons.append({"by": "developer", "institution": f.institution, "found": dev[i], "score": 1.0})
                best = max(reasons, key=lambda r: r["score"])
                out.append(
                    Draft(
                        "lookalike",
                        self.sev["lookalike"],
                        lf.ref,
                        f.filing_id,
                        f.org_id,
                        score=round(float(best["score"]), 3),
                        threshold=float(best["threshold"]) if "threshold" in best else None,
                        evidence={
                            "listed": {"package": lf.package, "name": lf.app_name, "developer": lf.developer},
                            "filed": {"package": f.package, "name": f.name, "institution": f.institution},
                            "fired": reasons,
                        },
                        key_suffix=str(f.filing_id),
                    )
                )
            if not matched and is_medical(lf):
                out.append(
                    Draft(
                        "unfiled",
                        self.sev["unfiled"],
                        lf.ref,
                        None,
                        None,
                        evidence={"package": lf.package, "name": lf.app_name, "categories": list(lf.categories)},
                    )
                )
        return out
