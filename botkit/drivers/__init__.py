"""Session drivers, named as in ``session.driver``; each is imported only when chosen."""
from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import Lease, SessionStore

DRIVERS: dict[str, str] = {
    "memory": "botkit.drivers.memory:MemoryStore",
    "file": "botkit.drivers.file:FileStore",
    "redis": "botkit.drivers.redis:RedisStore",
    "mongo": "botkit.drivers.mongo:MongoStore",
    "postgres": "botkit.drivers.postgres:PostgresStore",
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
    return getattr(module, attr)


__all__ = ["DRIVERS", "Lease", "SessionStore", "driver_class"]
