"""Analyse one APK: bytes in, the indicator document out.

This is the only place that knows the order of the analysers; each of them is
pure and takes bytes. Problems with one part (say a corrupt native library or an
unreadable signature block) are recorded in ``errors`` and the rest of the
document is still produced; only an unreadable container or manifest stops the
analysis with an AnalysisError.
"""

from __future__ import annotations

import hashlib
from typing import Any

from medrisk.analysis import skeleton
from medrisk.analysis.arsc import ResourceTable
from medrisk.analysis.code import code_facts
from medrisk.analysis.container import open_container
from medrisk.analysis.container_facts import container_facts
from medrisk.analysis.errors import AnalysisError, LimitExceeded
from medrisk.analysis.libraries import is_library
from medrisk.analysis.limits import DEFAULT_LIMITS, Limits
from medrisk.analysis.manifest import manifest_facts
from medrisk.analysis.native import native_facts
from medrisk.analysis.netconfig import netconfig_facts
from medrisk.analysis.resources import layout_facts, resource_facts
from medrisk.analysis.signing import signing_facts
from medrisk.privacy.analyse import analyse_privacy
from medrisk.privacy.policy import decode, is_policy_candidate

MAX_POLICY_BYTES = 2 * 1024 * 1024


def analyse_apk(
    data: bytes,
    name: str = "",
    limits: Limits = DEFAULT_LIMITS,
    *,
    policy_text: str | None = None,
    policy_source: str | None = None,
    app_type: str | None = None,
) -> dict[str, Any]:
    """Return the indicator document (docs/indicators.md and docs/privacy.md) for an APK's bytes.

    ``policy_text`` is a privacy policy supplied by the user (it wins over one bundled in the
    package); ``app_type`` is a type of the necessary-information rules (privacy checks).
    """
    if len(data) > limits.max_file_bytes:
        raise AnalysisError("file_too_large", f"{len(data)} bytes exceeds the limit of {limits.max_file_bytes} bytes")
    doc = skeleton.default_document()
    errors: list[str] = []
    doc["file"] = {
        "name": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
    }
    container = open_container(data, limits)
    if not container.has("AndroidManifest.xml"):
        raise AnalysisError("no_manifest", "the archive has no AndroidManifest.xml: not an APK")
    arsc: ResourceTable | None = None
    if container.has("resources.arsc"):
        try:  # parsed once, shared by the manifest, network-config and resource analysers
            arsc = ResourceTable(container.read("resources.arsc"))
        except AnalysisError as exc:
            if isinstance(exc, LimitExceeded):
                raise
            errors.append(f"resources.arsc: {exc.message}")
    manifest = manifest_facts(container.read("AndroidManifest.xml"), arsc)
    doc["manifest"] = manifest.to_dict()
    cfacts = container_facts(container)
    doc["container"] = cfacts.to_dict()
    split = manifest.split
    if split:
        doc["container"]["is_split"] = True
        doc["container"]["split_name"] = split

    nsc_path = doc["manifest"].get("network_security_config")
    nsc_bytes = container.read(nsc_path) if nsc_path and container.has(nsc_path) else None
    doc["network_security_config"] = netconfig_facts(nsc_bytes, nsc_path, arsc).to_dict()
    doc["resources"] = resource_facts(arsc).to_dict()
    doc["resources"]["certificates"] = [a["path"] for a in doc["container"]["assets"] if a["kind"] == "certificate"]
    doc["resources"]["keystores"] = [a["path"] for a in doc["container"]["assets"] if a["kind"] == "keystore"]

    def read_entry(entry: str) -> bytes | None:
        return container.read(entry) if container.has(entry) else None

    doc["signing"] = signing_facts(data, read_entry, doc["manifest"].get("min_sdk")).to_dict()
    doc["native"] = native_facts(container).to_dict()

    dex_files = []
    for dex_name in doc["container"]["dex_files"]:
        entry = container.entry(dex_name)
        if entry is not None and entry.size > limits.max_dex_bytes:
            raise LimitExceeded(
                "dex_too_large", f"{dex_name} inflates to {entry.size} bytes, over the limit of {limits.max_dex_bytes}"
            )
        try:
            dex_files.append((dex_name, container.read(dex_name)))
        except AnalysisError as exc:
            errors.append(f"{dex_name}: {exc.message}")
    code, strings = code_facts(dex_files, limits)
    doc["code"] = code.to_dict()
    doc["strings"] = strings.to_dict()
    doc["code"]["errors"] = sorted(set(doc["code"].get("errors", []) + errors))
    package = doc["manifest"].get("package") or ""
    for call in doc["code"]["calls"]:
        call["library"] = is_library(call["location"]["class"], package)
    for comp in doc["manifest"]["components"]:  # a component whose class no DEX file defines
        comp["defined"] = comp["name"] in code.class_names or comp["type"] == "activity-alias"
    try:
        doc["resources"].update(
            layout_facts(container, arsc, doc["manifest"]["components"], doc["manifest"].get("package") or "")
        )
    except (AnalysisError, IndexError, ValueError) as exc:
        if isinstance(exc, LimitExceeded):
            raise
        errors.append(f"res: {exc}")

    asset_texts = {}
    for entry in container.names():
        if is_policy_candidate(entry):
            e = container.entry(entry)
            if e is not None and e.size <= MAX_POLICY_BYTES:
                try:
                    asset_texts[entry] = decode(container.read(entry))
                except AnalysisError as exc:
                    doc["code"]["errors"].append(f"{entry}: {exc.message}")
    doc.update(
        analyse_privacy(
            doc, policy_text=policy_text, policy_source=policy_source, app_type=app_type, asset_texts=asset_texts
        )
    )
    return doc
