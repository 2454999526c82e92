"""Risk model: findings -> 0-100 score, A/B/C grade and per-category breakdown.

The model is data (``model.yaml``); the formula is documented in docs/risk.md and
is monotonic by construction: every deduction is a sum of non-negative terms
passed through ``min(cap, .)``, so adding a finding can never raise the score and
the worst open severity can only lower the grade.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medrisk import datafiles
from medrisk.datafiles import load_yaml
from medrisk.rules.model import SEVERITIES, Finding, Text

DEFAULT_MODEL = Path(__file__).parent / "model.yaml"
GRADES = ("A", "B", "C")


class ModelError(Exception):
    pass


@dataclass
class SubCategory:
    id: str
    name: Text
    cap: float


@dataclass
class Category:
    id: str
    name: Text
    weight: float
    subcategories: list[SubCategory]


@dataclass
class RiskModel:
    version: str
    a_min: float
    c_max: float
    severity_points: dict[str, float]
    step: float
    max_extra: int
    caps: dict[str, str]
    library_factor: float
    library_caps_grade: bool
    rule_weights: dict[str, float]
    categories: list[Category]
    sub_index: dict[str, tuple[Category, SubCategory]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sub_index = {s.id: (c, s) for c in self.categories for s in c.subcategories}

    def grade_for(self, score: float) -> str:
        if score >= self.a_min:
            return "A"
        if score > self.c_max:
            return "B"
        return "C"


def load_model(path: Path | None = None) -> RiskModel:
    src = Path(path or DEFAULT_MODEL)
    try:
        d = load_yaml(src.read_text(encoding="utf-8"))
        cats = [
            Category(
                id=c["id"],
                name=Text(**c["name"]),
                weight=float(c["weight"]),
                subcategories=[SubCategory(s["id"], Text(**s["name"]), float(s["cap"])) for s in c["subcategories"]],
            )
            for c in d["categories"]
        ]
        model = RiskModel(
            version=str(d["version"]),
            a_min=float(d["grades"]["A"]),
            c_max=float(d["grades"]["C_max"]),
            severity_points={s: float(d["severity_points"].get(s, 0)) for s in SEVERITIES},
            step=float(d.get("instances", {}).get("step", 0)),
            max_extra=int(d.get("instances", {}).get("max_extra", 0)),
            caps={k: str(v) for k, v in (d.get("caps") or {}).items()},
            library_factor=float((d.get("library") or {}).get("factor", 1.0)),
            library_caps_grade=bool((d.get("library") or {}).get("caps_grade", True)),
            rule_weights={k: float(v) for k, v in (d.get("rule_weights") or {}).items()},
            categories=cats,
        )
    except (OSError, datafiles.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{src}: invalid risk model: {exc}") from exc
    total = sum(c.weight for c in cats)
    if abs(total - 100) > 1e-9:
        raise ModelError(f"{src}: category weights sum to {total}, not 100")
    if not 0 <= model.library_factor <= 1:
        raise ModelError(f"{src}: library.factor must be between 0 and 1")
    if any(p < 0 for p in model.severity_points.values()) or any(w < 0 for w in model.rule_weights.values()):
        raise ModelError(f"{src}: points and weights must not be negative")
    if any(g not in GRADES for g in model.caps.values()):
        raise ModelError(f"{src}: caps must name grades A, B or C")
    return model


@dataclass
class Score:
    score: float
    grade: str
    grade_by_score: str
    capped_by: str | None
    deduction: float
    categories: list[dict[str, Any]]
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 1),
            "grade": self.grade,
            "grade_by_score": self.grade_by_score,
            "capped_by": self.capped_by,
            "deduction": round(self.deduction, 2),
            "categories": self.categories,
            "model_version": self.model_version,
        }


def raw_points(model: RiskModel, f: Finding) -> float:
    n = max(1, len(f.evidence))
    factor = 1 + model.step * min(n - 1, model.max_extra)
    lib = model.library_factor if f.in_library else 1.0
    return model.severity_points[f.severity] * model.rule_weights.get(f.rule.id, 1.0) * factor * lib


def score(model: RiskModel, findings: list[Finding]) -> Score:
    """Score the open (not suppressed) findings; sets ``finding.cost`` on each."""
    open_ = [f for f in findings if not f.suppressed]
    for f in findings:
        f.cost = 0.0
    by_sub: dict[str, list[Finding]] = {}
    for f in open_:
        if f.rule.category not in model.sub_index:
            raise ModelError(f"rule {f.rule.id}: category '{f.rule.category}' is not in the risk model")
        by_sub.setdefault(f.rule.category, []).append(f)
    breakdown = []
    total = 0.0
    for cat in model.categories:
        subs = []
        cat_raw = 0.0
        for sub in cat.subcategories:
            items = by_sub.get(sub.id, [])
            raw = sum(raw_points(model, f) for f in items)
            eff = min(sub.cap, raw)
            subs.append((sub, items, raw, eff))
            cat_raw += eff
        cat_eff = min(cat.weight, cat_raw)
        cat_scale = cat_eff / cat_raw if cat_raw else 0.0
        sub_rows = []
        for sub, items, raw, eff in subs:
            scale = (eff / raw if raw else 0.0) * cat_scale
            for f in items:
                f.cost = raw_points(model, f) * scale
            sub_rows.append(
                {
                    "id": sub.id,
                    "name": sub.name.to_dict(),
                    "cap": sub.cap,
                    "deduction": round(eff * cat_scale, 2),
                    "findings": len(items),
                }
            )
        total += cat_eff
        breakdown.append(
            {
                "id": cat.id,
                "name": cat.name.to_dict(),
                "weight": cat.weight,
                "deduction": round(cat_eff, 2),
                "score": round(cat.weight - cat_eff, 2),
                "subcategories": sub_rows,
            }
        )
    value = max(0.0, 100.0 - total)
    by_score = model.grade_for(round(value, 1))
    grade, capped_by = by_score, None
    for sev in SEVERITIES:  # worst first
        cap = model.caps.get(sev)
        capping = [f for f in open_ if f.severity == sev and (model.library_caps_grade or not f.in_library)]
        if cap and capping and GRADES.index(cap) > GRADES.index(grade):
            grade, capped_by = cap, sev
            break
    return Score(value, grade, by_score, capped_by, total, breakdown, model.version)
