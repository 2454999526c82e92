"""A local or mounted folder of APKs (channels that deliver files).

Each ``*.apk`` is identified from its own bytes (package, version, label, signers); the
folder's state remembers name, size and modification time per file so an unchanged file is
not read again. A file that is not an APK is reported in the crawl's counts, not fatal.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from medrisk.analysis.errors import AnalysisError
from medrisk.channels.adapters.base import Adapter
from medrisk.channels.apkinfo import apk_identity
from medrisk.channels.model import ChannelError, FetchResult, Listing

MAX_APK_BYTES = 512 << 20


class FolderAdapter(Adapter):
    kind = "folder"

    def fetch(self, state: dict[str, Any]) -> FetchResult:
        root = Path(self.url)
        if not root.is_dir():
            raise ChannelError(f"{root}: not a folder (or not mounted)")
        files = sorted(p for p in root.rglob("*.apk") if p.is_file())
        known: dict[str, dict[str, Any]] = state.get("files", {})
        fresh: dict[str, dict[str, Any]] = {}
        bad: list[str] = []
        for p in files:
            st = p.stat()
            rel = str(p.relative_to(root))
            old = known.get(rel)
            if old and old["size"] == st.st_size and old["mtime"] == st.st_mtime_ns:
                fresh[rel] = old
                continue
            if st.st_size > MAX_APK_BYTES:
                bad.append(f"{rel}: larger than {MAX_APK_BYTES} bytes")
                continue
            data = p.read_bytes()
            try:
                ident = apk_identity(data)
            except AnalysisError as exc:
                bad.append(f"{rel}: {exc.message}")
                continue
            fresh[rel] = {
                "size": st.st_size,
                "mtime": st.st_mtime_ns,
                "sha256": hashlib.sha256(data).hexdigest(),
                "package": ident.package,
                "version_name": ident.version_name,
                "version_code": ident.version_code,
                "label": ident.label,
                "signers": ident.signer_sha256,
            }
        info = {"files": len(files), "unreadable": bad}
        new_state = {"files": fresh}
        if fresh == known and state:
            return FetchResult(None, new_state, {**info, "why": "no file changed"})
        listings = [
            Listing(
                package=f["package"],
                app_name=f["label"] or "",
                version_name=f["version_name"],
                version_code=f["version_code"],
                apk_url=str(root / rel),
                apk_sha256=f["sha256"],
                apk_size=f["size"],
                signer_sha256=list(f["signers"]),
            )
            for rel, f in sorted(fresh.items())
        ]
        return FetchResult(listings, new_state, info)

    def download(self, listing: Listing, dest: Path, max_bytes: int) -> str:
        src = Path(listing.apk_url or "")
        if not src.is_file():
            raise ChannelError(f"{src}: the file is gone")
        if src.stat().st_size > max_bytes:
            raise ChannelError(f"{src}: larger than the download limit of {max_bytes} bytes")
        shutil.copyfile(src, dest)
        digest = hashlib.sha256(dest.read_bytes()).hexdigest()
        if listing.apk_sha256 and digest != listing.apk_sha256:
            dest.unlink()
            raise ChannelError(f"{src}: changed since it was listed (SHA-256 differs)")
        return digest
