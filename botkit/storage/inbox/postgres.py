"""The inbox in PostgreSQL: a table of entries (``<table>_inbox``, one row per event, in arrival order)
and a table of the sessions ready to claim (``<table>_inbox_ready``). Claiming is one ``UPDATE … WHERE
session_key IN (SELECT … FOR UPDATE SKIP LOCKED)``, so any number of workers share the queue without
waiting on each other; a put ``NOTIFY``s the workers listening, which claim at once. ``gen`` counts the
puts of a session: a release deletes the ready row only if no put came since the claim (both lock the
row), so an entry can never be left without its ready row. A put is announced on the live bus's channel
(``NOTIFY``, in the same statement). Events are stored as JSON text, not jsonb:
jsonb refuses ``\\u0000``, which a user can type. Session keys go in as the session table stores them
(``row_key``: a key too long for a btree index entry, or holding U+0000, as its hash); a claim's key is
that, the entries' events carry the real one."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from botkit.storage.inbox.base import Claim, Entry, Inbox, InboxStats
from botkit.storage.pg_keys import row_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS {q} (
    id bigserial PRIMARY KEY,
    session_key text NOT NULL,
    event text NOT NULL,
    enqueued_at double precision NOT NULL,
    origin text
);
CREATE INDEX IF NOT EXISTS {q_index} ON {q} (session_key, id);
CREATE TABLE IF NOT EXISTS {r} (
    session_key text PRIMARY KEY,
    ready_at double precision NOT NULL,
    owner text,
    gen bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS {r_index} ON {r} (ready_at);
"""

PUT = """
WITH added AS (
    INSERT INTO {q} (session_key, event, enqueued_at, origin)
    SELECT k, e, $3, $4 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(k, e, n) ORDER BY n
    RETURNING id, session_key
), ready AS (
    INSERT INTO {r} AS r (session_key, ready_at) SELECT DISTINCT session_key, 0 FROM added
    ON CONFLICT (session_key) DO UPDATE SET gen = r.gen + 1
)
SELECT id, pg_notify($5, '{{"t":"inbox","d":1}}') FROM added ORDER BY id
"""

CLAIM = """
UPDATE {r} SET ready_at = $2, owner = $3
WHERE session_key IN (SELECT session_key FROM {r} WHERE ready_at <= $1 ORDER BY ready_at LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING session_key, gen
"""

ENTRIES = "SELECT id, session_key, event, enqueued_at, origin FROM {q} WHERE session_key = ANY($1::text[]) ORDER BY id"

RELEASE = """
WITH gone AS (
    DELETE FROM {r} WHERE session_key = $1 AND owner = $2 AND gen = $4
      AND NOT EXISTS (SELECT 1 FROM {q} WHERE session_key = $1)
    RETURNING 1
)
UPDATE {r} SET ready_at = $3, owner = NULL
WHERE session_key = $1 AND owner = $2 AND NOT EXISTS (SELECT 1 FROM gone)
"""


class PostgresInbox(Inbox):
    shared = True
    durable = True

    def __init__(self, pool: Callable[[], Any], table: str, *, dsn: str, timeout: float = 5.0) -> None:
        """``pool``: the session store's connection pool (there once the store is open); ``table``: the
        session table's setting, ``[schema.]name``: the inbox's tables are named after it."""
        super().__init__()
        self._pool = pool
        self.dsn = dsn
        self.timeout = timeout
        schema, _, name = table.rpartition(".")
        within = f'"{schema}".' if schema else ""
        self.q = f'{within}"{name}_inbox"'
        self.r = f'{within}"{name}_inbox_ready"'
        self.channel = f"{name}_live"
        """The live bus's channel (botkit.storage.live.postgres)."""
        self._names = {"q": self.q, "r": self.r, "q_index": f'"{name}_inbox_key"', "r_index": f'"{name}_inbox_ready_at"'}

    @property
    def pool(self) -> Any:
        return self._pool()

    async def open(self) -> None:
        async with self.pool.acquire(timeout=self.timeout) as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.channel)
            await conn.execute(SCHEMA.format(**self._names))

    async def put(self, items: Sequence[tuple[str, dict[str, Any]]], now: float, origin: str | None = None) -> list[str]:
        keys = [row_key(key) for key, _ in items]
        events = [orjson.dumps(event).decode() for _, event in items]
        rows = await self.pool.fetch(PUT.format(**self._names), keys, events, now, origin, self.channel, timeout=self.timeout)
        return [str(row["id"]) for row in rows]

    async def claim(self, owner: str, now: float, lease_until: float, limit: int) -> list[Claim]:
        async with self.pool.acquire(timeout=self.timeout) as conn:
            claimed = await conn.fetch(CLAIM.format(**self._names), now, lease_until, owner, limit, timeout=self.timeout)
            if not claimed:
                return []
            gens = {row["session_key"]: row["gen"] for row in claimed}
            rows = await conn.fetch(ENTRIES.format(**self._names), list(gens), timeout=self.timeout)
        entries: dict[str, list[Entry]] = {key: [] for key in gens}
        for row in rows:
            entries[row["session_key"]].append(Entry(str(row["id"]), row["session_key"], orjson.loads(row["event"]),
                                                      row["enqueued_at"], row["origin"]))
        return [Claim(key, found, gens[key]) for key, found in entries.items()]

    async def ack(self, key: str, entry_id: str) -> None:
        await self.pool.execute(f"DELETE FROM {self.q} WHERE id = $1", int(entry_id), timeout=self.timeout)

    async def extend(self, owner: str, keys: Sequence[str], lease_until: float) -> None:
        if keys:
            await self.pool.execute(f"UPDATE {self.r} SET ready_at = $3 WHERE session_key = ANY($1::text[]) AND owner = $2",
                                    list(keys), owner, lease_until, timeout=self.timeout)

    async def release(self, owner: str, claim: Claim, ready_at: float) -> None:
        await self.pool.execute(RELEASE.format(**self._names), claim.key, owner, ready_at, claim.token, timeout=self.timeout)

    async def stats(self) -> InboxStats:
        row = await self.pool.fetchrow(f"SELECT count(*) AS depth, min(enqueued_at) AS oldest FROM {self.q}", timeout=self.timeout)
        return InboxStats(int(row["depth"]), row["oldest"])
