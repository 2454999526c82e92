"""CEL (Common Expression Language) compiler, imported without its interactive shell.

The ``cel`` package's ``__init__`` also imports its REPL (prompt_toolkit), which costs
about 90 ms per process, a third of a one-file scan's start-up. We load the compiled
extension module directly and fall back to the normal import if the layout changes.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from typing import Any


def _load() -> Any:
    spec = importlib.util.find_spec("cel")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = f"{folder}/cel{suffix}"
            try:
                loader = importlib.machinery.ExtensionFileLoader("cel.cel", path)
                mod_spec = importlib.util.spec_from_file_location("cel.cel", path, loader=loader)
                if mod_spec is None:
                    continue
                module = importlib.util.module_from_spec(mod_spec)
                loader.exec_module(module)
                sys.modules.setdefault("cel.cel", module)
                return module
            except (ImportError, OSError):
                continue
    import cel  # pragma: no cover - fallback

    return cel


_cel = _load()
compile = _cel.compile  # noqa: A001 - the CEL API's name
Context = _cel.Context
