"""Channel adapters behind one interface, found by name.

Built in: ``fdroid`` (F-Droid repositories, index v2 and v1, signature verified), ``feed``
(the documented JSON feed, ``feed.schema.json``) and ``folder`` (a local or mounted folder of
APKs). A new adapter (an app store's API, say) is a class with ``kind``, ``fetch(state)`` and
optionally ``download``/``icon``, published without touching this package either as a Python
entry point in the group ``medrisk.channel_adapters`` or by giving ``module:Class`` as the
channel's kind.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from medrisk.channels.adapters.base import Adapter
from medrisk.channels.adapters.fdroid import FDroidAdapter
from medrisk.channels.adapters.feed import FeedAdapter
from medrisk.channels.adapters.folder import FolderAdapter
from medrisk.channels.model import ChannelError

BUILTIN: dict[str, type[Adapter]] = {a.kind: a for a in (FDroidAdapter, FeedAdapter, FolderAdapter)}
_REGISTERED: dict[str, type[Adapter]] = {}


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    """Register an adapter class by its ``kind`` (usable as a decorator)."""
    _REGISTERED[cls.kind] = cls
    return cls


def adapter_class(kind: str) -> type[Adapter]:
    if kind in _REGISTERED:
        return _REGISTERED[kind]
    if kind in BUILTIN:
        return BUILTIN[kind]
    for ep in entry_points(group="medrisk.channel_adapters"):
        if ep.name == kind:
            return ep.load()
    if ":" in kind:
        module, _, name = kind.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ChannelError(f"channel adapter {kind!r} cannot be loaded: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            raise ChannelError(f"{kind!r} is not a channel adapter (subclass medrisk.channels.adapters.Adapter)")
        return cls
    known = sorted(set(BUILTIN) | set(_REGISTERED))
    raise ChannelError(f"unknown channel kind {kind!r} (known: {', '.join(known)}, or module:Class)")


__all__ = ["Adapter", "BUILTIN", "adapter_class", "register_adapter"]
