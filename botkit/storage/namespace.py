"""A bot's own corner of a store that several bots share: each driver's setting that places its data,
derived from the bot's name (``support`` → Redis prefix ``botkit:support:``, PostgreSQL table
``botkit_sessions_support``, Mongo collection ``sessions_support``, file folder ``.session/support``).
Sessions, history, bot memory, counters, the inbox, the live bus and scheduled steps all live under it."""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from botkit.storage import driver_class

_UNDERSCORED = re.compile(r"[^A-Za-z0-9_]")

PLACES: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "redis": ("prefix", lambda prefix, name: f"{prefix}{name}:"),
    "postgres": ("table", lambda table, name: f"{table}_{_UNDERSCORED.sub('_', name)}"),
    "mongo": ("collection", lambda collection, name: f"{collection}_{name}"),
    "file": ("dirname", lambda dirname, name: str(PurePath(dirname) / name)),
}
"""driver → (the setting that places its data, how a bot's name changes it). The memory driver has no
entry: each bot's memory store is its own anyway."""


def namespaced(stores: Mapping[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """``session.stores`` with every driver's place moved under ``name``: the blocks the config has, and
    a block for each other driver too, so that a store another driver uses (a Redis cache in front of
    PostgreSQL) is namespaced as well."""
    moved: dict[str, dict[str, Any]] = {driver: dict(block or {}) for driver, block in stores.items()}
    for driver, (setting, move) in PLACES.items():
        block = moved.setdefault(driver, {})
        block[setting] = move(block.get(setting, driver_class(driver).defaults[setting]), name)
    return moved
