"""Bot memory in Redis: one hash, ``<prefix>bot_memory``, a field a key (``HGETALL`` shows them all)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botkit.storage.bot_memory.base import BotMemory


class RedisBotMemory(BotMemory):
    shared = True

    def __init__(self, client: Callable[[], Any], prefix: str) -> None:
        super().__init__()
        self.client = client
        """The session store's client (it opens before this is used)."""
        self.hash = f"{prefix}bot_memory"

    async def _get(self, key: str) -> bytes | None:
        data: bytes | None = await self.client().hget(self.hash, key)
        return data

    async def _set(self, key: str, data: bytes) -> None:
        await self.client().hset(self.hash, key, data)

    async def _delete(self, key: str) -> bool:
        return bool(await self.client().hdel(self.hash, key))
