"""Channel adapters are found through the ``botkit.adapters`` entry-point group, never by module name."""
from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from botkit.adapters.base import Adapter
from botkit.core.errors import ConfigError

GROUP = "botkit.adapters"


@cache
def available() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def adapter_class(channel: str, settings: dict[str, Any] | None = None) -> type[Adapter]:
    """The adapter class for a channel name. A channel may name another registered adapter with
    ``"adapter": "<name>"`` in its settings or by its own ``provider`` (see the channel docs)."""
    found = available()
    base = (settings or {}).get("adapter") or channel
    if not isinstance(base, str):
        raise ConfigError(f"channels.{channel}.adapter", f"must be the name of a registered channel, not {base!r}")
    name = base
    provider = (settings or {}).get("provider")
    if provider and f"{base}.{provider}" in found:
        name = f"{base}.{provider}"
    entry = found.get(name)
    if entry is None:
        known = ", ".join(sorted(n for n in found if "." not in n)) or "none (is botkit installed with pip install -e .?)"
        raise ConfigError(f"channels.{channel}", f"no adapter is registered for this channel; known: {known}")
    try:
        adapter: type[Adapter] = entry.load()
    except ImportError as exc:
        raise ConfigError(f"channels.{channel}", f"its adapter cannot be loaded: {exc}") from None
    return adapter
