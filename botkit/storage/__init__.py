"""Session drivers, named as in ``session.driver``; each is imported only when chosen."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from botkit.core.errors import ConfigError
from botkit.storage.base import Lease, SessionStore

DRIVERS: dict[str, str] = {
    "memory": "botkit.storage.memory:MemoryStore",
    "file": "botkit.storage.file:FileStore",
    "redis": "botkit.storage.redis:RedisStore",
    "mongo": "botkit.storage.mongo:MongoStore",
    "postgres": "botkit.storage.postgres:PostgresStore",
}


def driver_class(name: str) -> type[SessionStore]:
    target = DRIVERS.get(name)
    if target is None:
        raise ConfigError("session.driver", f"unknown driver {name!r}; use one of {', '.join(DRIVERS)}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("session.driver", f"driver {name!r} cannot be loaded ({exc}); reinstall botkit") from None
    store: type[SessionStore] = getattr(module, attr)
    return store


def make_store(session: Mapping[str, Any], resolve_path: Callable[[str], Path],
               clock: Callable[[], float]) -> SessionStore:
    """The store ``session`` (bot.config.py's block) names, with its settings; paths resolved against
    the config's folder."""
    name = session["driver"]
    cls = driver_class(name)
    settings = dict(session["stores"].get(name) or {})
    if "dirname" in cls.defaults:
        settings["dirname"] = str(resolve_path(settings.get("dirname", cls.defaults["dirname"])))
    return cls(settings, clock=clock, lock_timeout=float(session["lock_timeout"]), timeout=float(session["timeout"]))


__all__ = ["DRIVERS", "Lease", "SessionStore", "driver_class", "make_store"]
