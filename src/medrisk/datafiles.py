"""Reading the YAML data files shipped with MedRisk (rules, risk model, SDK and API tables),
through a persistent cache of their parsed form.

A one-file scan used to spend most of its time before the first byte of the APK was read:
importing PyYAML, parsing the tables and the 172 rule files, validating the rules. All of
that depends only on the files' contents, so the parsed (and, for rules, validated) form is
kept on disk, keyed by a SHA-256 of everything it was derived from, and loaded with
``marshal`` (plain data: dicts, lists, strings, numbers; no code is run on load).

The cache lives in ``$MEDRISK_CACHE_DIR``, else ``$XDG_CACHE_HOME/medrisk``, else
``~/.cache/medrisk`` (``medrisk scan --cache-dir``); ``MEDRISK_NO_CACHE=1`` (or
``--no-cache``) turns it off. It is only an accelerator: a missing, unreadable,
unwritable, corrupt or foreign-owned cache file is ignored and the data is parsed from
the source as before. A changed source file changes the key, so stale entries are never
used (old ones are pruned).
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

CACHE_FORMAT = b"medrisk-cache-1\n"  # bump when a cached form changes shape
KEEP_PER_KIND = 8  # entries kept per kind (several rule folders or versions side by side)

_cache_dir: Path | bool = True  # True: from the environment; False: off; a Path: set explicitly


def __getattr__(name: str) -> Any:
    # PyYAML costs ~15 ms to import; callers name its error class lazily (``datafiles.YAMLError``)
    # so that a scan whose tables all come from the cache never imports it.
    if name == "YAMLError":
        import yaml

        return yaml.YAMLError
    raise AttributeError(name)


def _safe_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's C loader when available


def set_cache_dir(path: Path | str | None, *, enabled: bool = True) -> None:
    """Use ``path`` for the cache (None: the default location); ``enabled=False`` turns it off."""
    global _cache_dir
    _cache_dir = False if not enabled else (Path(path) if path else True)


def cache_dir() -> Path | None:
    """The cache folder in use, or None when caching is off."""
    if _cache_dir is False:
        return None
    if isinstance(_cache_dir, Path):
        return _cache_dir
    if os.environ.get("MEDRISK_NO_CACHE", "") not in ("", "0"):
        return None
    env = os.environ.get("MEDRISK_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "medrisk"


def digest(*parts: bytes | str) -> str:
    """A cache key: SHA-256 over the parts (length-prefixed, so the split is unambiguous)."""
    h = hashlib.sha256(CACHE_FORMAT + sys.version.encode())
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def cache_get(kind: str, key: str) -> Any | None:
    """The value stored under ``kind``/``key``, or None (absent, unreadable or not ours)."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / f"{kind}-{key[:40]}.bin"
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            # written by another user (or writable by others): do not trust it
            if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
                return None
            raw = fh.read()
    except OSError:
        return None
    head = CACHE_FORMAT + key.encode() + b"\n"
    if not raw.startswith(head):
        return None
    try:
        return marshal.loads(raw[len(head) :])  # noqa: S302 - our own file: owner and mode checked above
    except (EOFError, ValueError, TypeError):
        return None


def cache_put(kind: str, key: str, value: Any) -> None:
    """Store ``value`` (plain data) under ``kind``/``key``; silently does nothing if it cannot."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        payload = marshal.dumps(value)
    except ValueError:  # not plain data (a YAML date, say): not cached
        return
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{kind}-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(CACHE_FORMAT + key.encode() + b"\n" + payload)
            os.replace(tmp, folder / f"{kind}-{key[:40]}.bin")  # atomic: readers see old or new
        except BaseException:
            os.unlink(tmp)
            raise
        _prune(folder, kind)
    except OSError:
        return


def _prune(folder: Path, kind: str) -> None:
    entries = []
    for p in folder.glob(f"{kind}-*.bin"):
        try:
            entries.append((p.stat().st_mtime, p))
        except OSError:
            continue
    for _mtime, p in sorted(entries, reverse=True)[KEEP_PER_KIND:]:
        try:
            p.unlink()
        except OSError:
            pass


def load_yaml(text: str) -> Any:
    """Parse a YAML document (safe loader), from the cache when this exact text was seen before.

    Each call returns fresh objects (callers may modify them)."""
    key = digest("yaml", text)
    value = cache_get("yaml", key)
    if value is None:
        import yaml

        value = yaml.load(text, Loader=_safe_loader())  # noqa: S506 - a safe loader
        if value is not None:
            cache_put("yaml", key, value)
    return value
