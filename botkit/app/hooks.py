"""The session hooks of bot.config.py (``on_session_start``, ``on_session_end``), imported like ``app``."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from botkit.app.config import Config, load_app
from botkit.core.errors import ConfigError


def load_hook(config: Config, name: str) -> Callable[..., Any] | None:
    """The async function the setting ``name`` names, or None when it is not set."""
    target = getattr(config, name)
    if target is None:
        return None
    try:
        return load_app(replace(config, app=target))
    except ConfigError as exc:
        raise ConfigError(name, exc.problem) from None
