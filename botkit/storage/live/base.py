"""One bus interface: ``publish(topic, data)``; ``subscribe(topic, callback)`` in this process."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

log = logging.getLogger("botkit.storage.live")

Listener = Callable[[Any], None]


class Bus:
    """Delivers to this process's listeners; shared buses also send through the store so every process's
    ``_deliver`` runs. Messages are small JSON values; a lost one is a late reply, never lost data."""

    shared = False

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    async def open(self) -> None:
        """Connect and start listening."""

    async def close(self) -> None:
        """Stop listening."""

    def subscribe(self, topic: str, listener: Listener) -> None:
        self._listeners.setdefault(topic, []).append(listener)

    def unsubscribe(self, topic: str, listener: Listener) -> None:
        found = self._listeners.get(topic)
        if found and listener in found:
            found.remove(listener)
            if not found:
                del self._listeners[topic]

    def listening(self, topic: str) -> bool:
        return topic in self._listeners

    def listeners(self, topic: str) -> list[Listener]:
        return list(self._listeners.get(topic, ()))

    async def publish(self, topic: str, data: Any) -> None:
        self._deliver(topic, data)

    def _deliver(self, topic: str, data: Any) -> None:
        for listener in list(self._listeners.get(topic, ())):
            try:
                listener(data)
            except Exception:
                log.exception("a listener of %s failed", topic)

    def _received(self, raw: bytes | str) -> None:
        """A message from the store: ``{"t": topic, "d": data}``."""
        try:
            message = orjson.loads(raw)
            self._deliver(str(message["t"]), message["d"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("a malformed message on the live bus was ignored")


class MemoryBus(Bus):
    """Every listener is in this process."""


def encode(topic: str, data: Any) -> bytes:
    return orjson.dumps({"t": topic, "d": data})
