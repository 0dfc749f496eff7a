"""Bot memory in MongoDB: the collection ``<collection>_bot_memory``, one document a key
(``{"_id": key, "value": …, "updated_at": …}``)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from botkit.storage.bot_memory.base import BotMemory


class MongoBotMemory(BotMemory):
    shared = True

    def __init__(self, database: Callable[[], Any], collection: str) -> None:
        super().__init__()
        self.database = database
        self.name = collection + "_bot_memory"

    async def _get(self, key: str) -> bytes | None:
        doc = await self.database()[self.name].find_one({"_id": key})
        return None if doc is None else orjson.dumps(doc["value"])

    async def _set(self, key: str, data: bytes) -> None:
        await self.database()[self.name].replace_one(
            {"_id": key}, {"_id": key, "value": orjson.loads(data), "updated_at": datetime.now(UTC)}, upsert=True)

    async def _delete(self, key: str) -> bool:
        result = await self.database()[self.name].delete_one({"_id": key})
        return bool(result.deleted_count)
