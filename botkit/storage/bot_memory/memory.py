"""Bot memory in this process: the memory driver's, and what a context built without a bot gets."""
from __future__ import annotations

from botkit.storage.bot_memory.base import BotMemory


class MemoryBotMemory(BotMemory):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, bytes] = {}

    async def _get(self, key: str) -> bytes | None:
        return self.values.get(key)

    async def _set(self, key: str, data: bytes) -> None:
        self.values[key] = data

    async def _delete(self, key: str) -> bool:
        return self.values.pop(key, None) is not None
