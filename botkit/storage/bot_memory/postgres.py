"""Bot memory in PostgreSQL: the table ``<table>_bot_memory`` (``key``, ``value`` jsonb, ``updated_at``),
which a person can query: ``SELECT key, value FROM botkit_sessions_bot_memory``."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from botkit.storage.bot_memory.base import BotMemory
from botkit.storage.pg_keys import row_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS {m} (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""
GET = "SELECT jsonb_build_array(value) FROM {m} WHERE key = $1"
"""In an array, so that a stored JSON null is told from a missing key."""
SET = """
INSERT INTO {m} (key, value, updated_at) VALUES ($1, $2::jsonb -> 0, now())
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
"""
DELETE = "DELETE FROM {m} WHERE key = $1 RETURNING 1"

Call = Callable[..., Awaitable[Any]]
"""The session store's ``_call(method, query, *args)``: a pooled statement, retried on a dropped connection."""


class PostgresBotMemory(BotMemory):
    shared = True

    def __init__(self, call: Call, table: str, run_schema: Callable[[str], Awaitable[None]]) -> None:
        super().__init__()
        self.run_schema = run_schema
        schema, _, name = table.rpartition(".")
        quoted = f'"{schema}"."{name}_bot_memory"' if schema else f'"{name}_bot_memory"'
        self.call = call
        self.sql = {name: text.format(m=quoted) for name, text in
                    {"schema": SCHEMA, "get": GET, "set": SET, "delete": DELETE}.items()}

    async def open(self) -> None:
        await self.run_schema(self.sql["schema"])

    async def _get(self, key: str) -> bytes | None:
        found = await self.call("fetchval", self.sql["get"], row_key(key))
        return None if found is None else orjson.dumps(found[0])

    async def _set(self, key: str, data: bytes) -> None:
        await self.call("execute", self.sql["set"], row_key(key), [orjson.loads(data)])  # [None] is not SQL NULL

    async def _delete(self, key: str) -> bool:
        return bool(await self.call("fetchval", self.sql["delete"], row_key(key)))
