"""The session stats' journal: one small entry per thing counted, in the session store's engine.

An entry is ``{"at", "channel", "kind", "name"?, "value"?}``; ``kind`` is ``start``, ``end`` (``value``:
the session's duration in seconds), ``in``, ``out`` (``value``: how many) or ``milestone`` (``name``).
``botkit sessions stats`` reads the entries since a time and adds them up (botkit/engine/stats.py).
Where it lives: the memory driver's journal is this process's, its last ``MEMORY_KEPT`` entries (another
process, the CLI's, sees nothing); the file driver's is ``<dirname>/_stats.jsonl``; Redis keeps the list
``<prefix>stats`` (its last ``REDIS_KEPT`` entries); PostgreSQL the table ``<table>_stats``; MongoDB the
collection ``<collection>_stats``.
"""
from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from botkit.storage.base import SessionStore

REDIS_KEPT = 1_000_000


MEMORY_KEPT = 200_000


class Journal:
    """In this process (the memory driver's, its last ``MEMORY_KEPT`` entries; the base of the others)."""

    def __init__(self) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=MEMORY_KEPT)

    async def open(self) -> None:
        """Create what the journal needs (a table); called after the store opened."""

    async def add(self, entries: list[dict[str, Any]]) -> None:
        self.entries.extend(entries)

    async def read(self, since: float | None) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if since is None or entry["at"] >= since]


class FileJournal(Journal):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    async def add(self, entries: list[dict[str, Any]]) -> None:
        data = b"".join(orjson.dumps(entry) + b"\n" for entry in entries)

        def append() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as file:
                file.write(data)

        await asyncio.to_thread(append)

    async def read(self, since: float | None) -> list[dict[str, Any]]:
        def scan() -> list[dict[str, Any]]:
            if not self.path.exists():
                return []
            found = []
            for line in self.path.read_bytes().splitlines():
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:  # a line a crash cut short
                    continue
                if since is None or entry["at"] >= since:
                    found.append(entry)
            return found

        return await asyncio.to_thread(scan)


class RedisJournal(Journal):
    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store
        self.key = f"{store.prefix}stats"

    async def add(self, entries: list[dict[str, Any]]) -> None:
        async with self.store.client.pipeline(transaction=False) as pipe:
            pipe.rpush(self.key, *(orjson.dumps(entry) for entry in entries))
            pipe.ltrim(self.key, -REDIS_KEPT, -1)
            await pipe.execute()

    async def read(self, since: float | None) -> list[dict[str, Any]]:
        entries = [orjson.loads(item) for item in await self.store.client.lrange(self.key, 0, -1)]
        return [entry for entry in entries if since is None or entry["at"] >= since]


POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS {j} (
    at double precision NOT NULL,
    channel text,
    kind text NOT NULL,
    name text,
    value double precision
);
CREATE INDEX IF NOT EXISTS {index} ON {j} (at);
"""
POSTGRES_ADD = """
INSERT INTO {j} (at, channel, kind, name, value)
SELECT * FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::float8[])
"""
POSTGRES_READ = "SELECT at, channel, kind, name, value FROM {j} WHERE at >= $1"


class PostgresJournal(Journal):
    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store
        schema, _, table = store.settings["table"].rpartition(".")
        name = f'"{schema}"."{table}_stats"' if schema else f'"{table}_stats"'
        self.sql = {key: text.format(j=name, index=f'"{table}_stats_at"') for key, text in
                    {"schema": POSTGRES_SCHEMA, "add": POSTGRES_ADD, "read": POSTGRES_READ}.items()}

    async def open(self) -> None:
        """Create the table when missing, under the store's advisory lock (workers start together)."""
        if self.store.pool is None:
            return
        await self.store.run_schema(self.sql["schema"])

    async def add(self, entries: list[dict[str, Any]]) -> None:
        columns: list[list[Any]] = [[entry.get(name) for entry in entries]
                                    for name in ("at", "channel", "kind", "name", "value")]
        await self.store._call("execute", self.sql["add"], *columns)

    async def read(self, since: float | None) -> list[dict[str, Any]]:
        rows = await self.store._call("fetch", self.sql["read"], since if since is not None else float("-inf"))
        return [{name: row[name] for name in ("at", "channel", "kind", "name", "value") if row[name] is not None}
                for row in rows]


class MongoJournal(Journal):
    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store

    @property
    def collection(self) -> Any:
        settings = self.store.settings
        return self.store.client[settings["database"]][f"{settings['collection']}_stats"]

    async def add(self, entries: list[dict[str, Any]]) -> None:
        await self.collection.insert_many([dict(entry) for entry in entries])

    async def read(self, since: float | None) -> list[dict[str, Any]]:
        cursor = self.collection.find({} if since is None else {"at": {"$gte": since}}, projection={"_id": 0})
        return [dict(doc) async for doc in cursor]


def journal_for(store: SessionStore) -> Journal:
    """The journal in ``store``'s engine (a cached store's is its database's)."""
    inner = getattr(store, "database", None)
    if isinstance(inner, SessionStore):
        return journal_for(inner)
    if store.name == "file":
        return FileJournal(Path(store.settings["dirname"]) / "_stats.jsonl")
    if store.name == "redis":
        return RedisJournal(store)
    if store.name == "postgres":
        return PostgresJournal(store)
    if store.name == "mongo":
        return MongoJournal(store)
    return Journal()
