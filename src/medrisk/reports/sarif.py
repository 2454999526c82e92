"""SARIF 2.1.0 output: one run per scanned package, with rule metadata and locations."""

from __future__ import annotations

from typing import Any

from medrisk import __version__
from medrisk.reports.i18n import pick

LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note", "secure": "none"}
# GitHub code scanning reads "security-severity" (0-10) from rule properties.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0", "secure": "0.0"}
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render(results: list[dict[str, Any]], lang: str = "zh") -> dict[str, Any]:
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [_run(r, lang) for r in results]}


def _run(r: dict[str, Any], lang: str) -> dict[str, Any]:
    driver: dict[str, Any] = {
        "name": "MedRisk",
        "semanticVersion": __version__,
        "informationUri": "https://github.com/medrisk/medrisk",
        "rules": [],
    }
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "results": [],
        "artifacts": [{"location": {"uri": r["file"]["name"]}}],
    }
    if "error" in r:
        run["invocations"] = [
            {
                "executionSuccessful": False,
                "toolExecutionNotifications": [
                    {"level": "error", "message": {"text": f"{r['error']['code']}: {r['error']['message']}"}}
                ],
            }
        ]
        return run
    run["artifacts"][0]["hashes"] = {"sha-256": r["file"]["sha256"]}
    run["invocations"] = [{"executionSuccessful": True}]
    run["properties"] = {
        "score": r["risk"]["score"],
        "grade": r["risk"]["grade"],
        "rulesVersion": r["rules_version"],
        "riskModelVersion": r["risk"]["model_version"],
        "package": r["app"]["package"],
        "versionName": r["app"]["version_name"],
    }
    index: dict[str, int] = {}
    for f in r["findings"]:
        if f["rule_id"] not in index:
            index[f["rule_id"]] = len(driver["rules"])
            driver["rules"].append(_rule(f, lang))
        run["results"].append(_result(f, index[f["rule_id"]], r["file"]["name"], lang))
    return run


def _rule(f: dict[str, Any], lang: str) -> dict[str, Any]:
    title = pick(f["title"], lang)
    fix = pick(f["remediation"], lang)
    tags = ["security", f["masvs"], *f["cwe"]] + ([f["maswe"]] if f.get("maswe") else [])
    return {
        "id": f["rule_id"],
        "name": f["rule_id"].replace("-", ""),
        "shortDescription": {"text": title},
        "fullDescription": {"text": title},
        "help": {"text": fix, "markdown": f"**{title}**\n\n{fix}"},
        "defaultConfiguration": {"level": LEVEL[f["severity"]]},
        "properties": {
            "tags": tags,
            "security-severity": SECURITY_SEVERITY[f["severity"]],
            "severity": f["severity"],
            "category": f["category"],
        },
    }


def _result(f: dict[str, Any], idx: int, apk: str, lang: str) -> dict[str, Any]:
    locations = []
    for e in f["evidence"][:20]:
        inner = e.get("file") or "AndroidManifest.xml"
        phys: dict[str, Any] = {"artifactLocation": {"uri": f"{apk}/{inner}"}}
        if e.get("line"):
            phys["region"] = {"startLine": int(e["line"])}
        loc: dict[str, Any] = {"physicalLocation": phys}
        logical = ".".join(p for p in (e.get("class"), e.get("method")) if p)
        if logical:
            loc["logicalLocations"] = [
                {"fullyQualifiedName": logical, "kind": "function" if e.get("method") else "type"}
            ]
        if e.get("value"):
            loc["message"] = {"text": str(e["value"])}
        locations.append(loc)
    text = pick(f["title"], lang)
    values = [str(e["value"]) for e in f["evidence"][:3] if e.get("value")]
    if values:
        text += ": " + "; ".join(values)
    res: dict[str, Any] = {
        "ruleId": f["rule_id"],
        "ruleIndex": idx,
        "level": LEVEL[f["severity"]],
        "message": {"text": text},
        "locations": locations,
        "properties": {"cost": f["cost"], "evidenceCount": len(f["evidence"])},
    }
    if f["suppressed"]:
        res["suppressions"] = [{"kind": "external", "justification": f["suppression_reason"] or ""}]
    return res
