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
    store = cls(settings, clock=clock, lock_timeout=float(session["lock_timeout"]), timeout=float(session["timeout"]))
    if session.get("cache") is None:
        return store
    from botkit.storage.cached import CachedStore

    return CachedStore(store, dict(session["stores"].get("redis") or {}), clock=clock,
                       lock_timeout=float(session["lock_timeout"]), timeout=float(session["timeout"]))


CACHED_DRIVERS = ("postgres", "mongo")


def validate_cache(session: Mapping[str, Any]) -> None:
    """``session.cache``: None, or "redis" in front of a database driver (its settings: stores.redis)."""
    cache = session.get("cache")
    if cache is None:
        return
    if cache != "redis":
        raise ConfigError("session.cache", f'must be "redis" or None, not {cache!r}')
    if session["driver"] not in CACHED_DRIVERS:
        raise ConfigError("session.cache", f"a Redis cache goes in front of {' or '.join(CACHED_DRIVERS)}, "
                          f"not the {session['driver']} driver")
    driver_class("redis").validate(dict(session["stores"].get("redis") or {}))


__all__ = ["DRIVERS", "Lease", "SessionStore", "driver_class", "make_store", "validate_cache"]
