"""Who a downloaded APK really is: package, version, label, signers, launcher icon (pure).

The channel's own description of a listing is not trusted: matching uses what the package
itself says. The icon is the application's ``android:icon`` resolved through resources.arsc;
when that is an adaptive-icon XML, the largest PNG/WebP with the same name in another
density is taken instead (the usual layout of launcher icons).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from medrisk.analysis.arsc import ResourceTable
from medrisk.analysis.axml import parse_axml
from medrisk.analysis.container import open_container
from medrisk.analysis.errors import AnalysisError
from medrisk.analysis.manifest import manifest_facts
from medrisk.analysis.signing import signing_facts

MAX_ICON_BYTES = 1 << 20
_DENSITY = {"ldpi": 1, "mdpi": 2, "tvdpi": 3, "hdpi": 4, "xhdpi": 5, "xxhdpi": 6, "xxxhdpi": 7}


@dataclass
class ApkIdentity:
    package: str
    version_name: str | None
    version_code: int | None
    label: str = ""
    signer_sha256: list[str] = field(default_factory=list)
    icon: bytes | None = None
    errors: list[str] = field(default_factory=list)


def _density(path: str) -> int:
    m = re.search(r"-(l|m|tv|h|xh|xxh|xxxh)dpi", path)
    return _DENSITY.get(m.group(1) + "dpi", 0) if m else 0


def apk_identity(data: bytes) -> ApkIdentity:
    """Raises AnalysisError (with a code and message) for what is not an APK."""
    c = open_container(data)
    if not c.has("AndroidManifest.xml"):
        raise AnalysisError("no_manifest", "the archive has no AndroidManifest.xml: not an APK")
    arsc: ResourceTable | None = None
    errors: list[str] = []
    if c.has("resources.arsc"):
        try:
            arsc = ResourceTable(c.read("resources.arsc"))
        except AnalysisError as exc:
            errors.append(f"resources.arsc: {exc.message}")
    raw_manifest = c.read("AndroidManifest.xml")
    m = manifest_facts(raw_manifest, arsc)
    sig = signing_facts(data, lambda n: c.read(n) if c.has(n) else None, m.min_sdk)
    ident = ApkIdentity(
        package=m.package or "",
        version_name=m.version_name,
        version_code=m.version_code,
        signer_sha256=sorted({cert.sha256 for cert in sig.certificates}),
        errors=errors + list(sig.errors),
    )
    try:
        app = parse_axml(raw_manifest).root.find("application")
    except AnalysisError:
        app = None
    if app is not None:
        ident.label = _text(app.get("label"), arsc)
        ident.icon = _icon(c, app.get("icon"), arsc)
    return ident


def _resolved(attr: object, arsc: ResourceTable | None) -> object:
    if attr is None:
        return None
    value = getattr(attr, "value", None)
    if arsc is not None and hasattr(value, "id"):
        try:
            return arsc.resolve(int(value.id))
        except (AnalysisError, ValueError, TypeError):
            return None
    return value


def _text(attr: object, arsc: ResourceTable | None) -> str:
    value = _resolved(attr, arsc)
    return value.strip()[:300] if isinstance(value, str) else ""


def _icon(c: object, attr: object, arsc: ResourceTable | None) -> bytes | None:
    path = _resolved(attr, arsc)
    names: list[str] = c.names()  # type: ignore[attr-defined]
    candidates: list[str] = []
    if isinstance(path, str) and path.startswith("res/"):
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        candidates = [n for n in names if n.startswith("res/") and n.rsplit("/", 1)[-1].rsplit(".", 1)[0] == stem]
    if not candidates:
        candidates = [n for n in names if re.fullmatch(r"res/(mipmap|drawable)[^/]*/(ic_launcher|icon)\.(png|webp)", n)]
    images = sorted((n for n in candidates if n.endswith((".png", ".webp"))), key=_density, reverse=True)
    for name in images:
        try:
            data = c.read(name, MAX_ICON_BYTES)  # type: ignore[attr-defined]
        except AnalysisError:
            continue
        if data:
            return data
    return None
