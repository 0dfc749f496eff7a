"""Sessions in PostgreSQL (asyncpg): one row per session key, the record as ``jsonb``; the history in
``<table>_history``, one row per entry, written by the same statement as the record.

The lease is data in the row (``lease_token``, ``lease_until``), not an advisory lock: taking it is one
upsert, saving is one conditional upsert that also clears it, and no pooled connection is held while a
handler runs (an advisory lock lives in a session, so it would pin one connection per session in flight
and die with that connection). Lease times are the database's ``now()``, so the workers' clocks do not
matter; session expiry compares ``expires_at`` with the bot's clock, like every driver.

A row whose ``expires_at`` has passed counts as missing: reads skip it, a save overwrites it, and a
sweep (at start-up, then every ``sweep_every`` seconds) deletes it. ``begin`` on a new key inserts a
row holding only the lease, already expired, so the same rules cover it. History rows reference their
session's row (``ON DELETE CASCADE``): deleting or sweeping a session deletes its history.

What PostgreSQL cannot hold is stored so that it can: a key longer than ``LONGEST_KEY`` bytes (a btree
index entry holds at most some 2,700) or holding U+0000 goes in the ``key`` column as ``sha256:<hex>``
(``row_key``; the record keeps the real key, as the file driver hashes long file names), and a string
holding U+0000 (which neither jsonb nor text can hold) is stored escaped, read back exactly (``NUL_ESCAPE``).
An error about the data itself (asyncpg's DataError family: an untranslatable character, a value out of
range; ProgramLimitExceededError: a row or an index entry too big) is ``StoreRefused``: trying again
would fail the same way, so the dispatcher does not ask the platform to.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
import orjson

from botkit.core.errors import ConfigError, StoreRefused, StoreUnavailable
from botkit.core.session import key_of
from botkit.storage.base import Appended
from botkit.storage.bot_memory import BotMemory
from botkit.storage.inbox import Inbox
from botkit.storage.live import Bus
from botkit.storage.pg_keys import HASHED, row_key
from botkit.storage.shared import LEASE_LOST, SAVED, STALE, SharedStore

log = logging.getLogger("botkit.drivers.postgres")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,51}$")
RETRIED = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.InterfaceError,
    ConnectionError,
)
"""What a pooled connection dropped by the server (a restart, a failover) raises on its next use."""
REFUSED = (asyncpg.exceptions.DataError, asyncpg.exceptions.ProgramLimitExceededError)
"""What PostgreSQL (or asyncpg, encoding an argument) raises for data it will never take: StoreRefused."""
ATTEMPTS = 3

NUL_ESCAPE = "\ufdd0"
"""jsonb and text cannot hold U+0000. In a string that holds it (or this escape), U+0000 is stored as
U+FDD0 "0" and U+FDD0 as U+FDD0 U+FDD0: U+FDD0 is a noncharacter, which Unicode keeps for a program's
internal use, so text a user types does not hold it; if it does, it round-trips all the same."""
_NUL_ESCAPE_BYTES = NUL_ESCAPE.encode()
_ESCAPED = re.compile(NUL_ESCAPE + "(.)", re.DOTALL)

SCHEMA = """
CREATE TABLE IF NOT EXISTS {t} (
    key text PRIMARY KEY,
    record jsonb,
    version bigint NOT NULL DEFAULT 0,
    expires_at timestamptz,
    lease_token text,
    lease_until timestamptz
);
CREATE INDEX IF NOT EXISTS {expiry_index} ON {t} (expires_at);
CREATE TABLE IF NOT EXISTS {c} (
    name text PRIMARY KEY,
    hits bigint NOT NULL,
    resets_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {h} (
    session_key text NOT NULL REFERENCES {t} (key) ON DELETE CASCADE,
    seq bigint NOT NULL,
    direction text NOT NULL,
    type text NOT NULL,
    text text,
    payload jsonb,
    at double precision NOT NULL,
    PRIMARY KEY (session_key, seq)
);
"""

LIVE = "(s.expires_at IS NULL OR s.expires_at > to_timestamp({now}))"

TAKE = """
INSERT INTO {t} AS s (key, version, expires_at, lease_token, lease_until)
VALUES ($1, 0, to_timestamp($4), $2, now() + make_interval(secs => $3))
ON CONFLICT (key) DO UPDATE SET lease_token = EXCLUDED.lease_token, lease_until = EXCLUDED.lease_until
WHERE s.lease_token IS NULL OR s.lease_token = EXCLUDED.lease_token OR s.lease_until <= now()
RETURNING s.record
"""

WRITE = """
INSERT INTO {t} AS s (key, record, version, expires_at)
VALUES ($1, $2, $3, to_timestamp($4))
ON CONFLICT (key) DO UPDATE
SET record = EXCLUDED.record, version = EXCLUDED.version, expires_at = EXCLUDED.expires_at,
    lease_token = NULL, lease_until = NULL
WHERE (s.lease_token IS NULL OR s.lease_token = $5 OR s.lease_until <= now())
  AND (s.version = $3 - 1 OR NOT """ + LIVE.format(now="$6") + """)
RETURNING 1
"""

# The save and its history in one statement. The sub-statements of a WITH see one snapshot, so the
# rows they write must not overlap: new entries take the seqs above the stored ones (an entry already
# there is overwritten), and the DELETE only removes rows below the limit or, on a restart, outside the
# new seqs. $7: the entries, $8: the last new seq, $9: the limit, $10: restart, $11: the first new seq.
WRITE_WITH_HISTORY = "WITH saved AS (" + WRITE + """), added AS (
    INSERT INTO {h} AS h (session_key, seq, direction, type, text, payload, at)
    SELECT $1, e.seq, e.dir, e.type, e.text, e.payload, e.at
    FROM saved, jsonb_to_recordset($7::jsonb) AS e(seq bigint, dir text, type text, text text, payload jsonb, at float8)
    ON CONFLICT (session_key, seq) DO UPDATE SET direction = EXCLUDED.direction, type = EXCLUDED.type,
        text = EXCLUDED.text, payload = EXCLUDED.payload, at = EXCLUDED.at
), dropped AS (
    DELETE FROM {h} AS h USING saved
    WHERE h.session_key = $1
      AND (h.seq <= $8::bigint - $9::int OR ($10::boolean AND (h.seq < $11::bigint OR h.seq > $8::bigint)))
)
SELECT count(*) FROM saved
"""
HISTORY = """
SELECT seq, direction, type, text, payload, at FROM (
    SELECT * FROM {h} WHERE session_key = $1 ORDER BY seq DESC LIMIT $2
) AS last ORDER BY seq
"""

GIVE_BACK = "UPDATE {t} SET lease_token = NULL, lease_until = NULL WHERE key = $1 AND lease_token = $2 RETURNING 1"
EXTEND = "UPDATE {t} SET lease_until = now() + make_interval(secs => $3) WHERE key = $1 AND lease_token = $2 RETURNING 1"
LOAD = "SELECT s.record FROM {t} AS s WHERE s.key = $1 AND " + LIVE.format(now="$2")
KEYS = "SELECT s.key, s.record->>'key' AS real FROM {t} AS s WHERE " + LIVE.format(now="$1")
DELETE = "DELETE FROM {t} AS s WHERE s.key = $1 RETURNING " + LIVE.format(now="$2")
GONE = """expires_at <= to_timestamp($1)
  AND (expires_at <= to_timestamp($1 - $2) OR record IS NULL OR record->'parts'->'life' ? 'ended')"""
SWEEP = """
DELETE FROM {t} AS s
WHERE s.key IN (SELECT key FROM {t} WHERE """ + GONE + """ LIMIT 5000)
  AND """ + GONE.replace("expires_at", "s.expires_at").replace("record", "s.record") + """
  AND (s.lease_token IS NULL OR s.lease_until <= now())
"""
EXPIRED = """
SELECT s.key, s.record->>'key' AS real FROM {t} AS s
WHERE s.expires_at <= to_timestamp($1) AND s.record IS NOT NULL AND NOT coalesce(s.record->'parts'->'life' ? 'ended', false)
ORDER BY s.expires_at LIMIT $2
"""
SWEEP_COUNTERS = "DELETE FROM {c} WHERE resets_at <= now()"
HELD = "SELECT lease_until > now() FROM {t} WHERE key = $1 AND lease_token IS NOT NULL"
SHAPE = """
SELECT key, record, version, expires_at, lease_token, lease_until FROM {t} LIMIT 0;
SELECT session_key, seq, direction, type, text, payload, at FROM {h} LIMIT 0
"""
COUNT = """
INSERT INTO {c} AS c (name, hits, resets_at) VALUES ($1, 1, now() + make_interval(secs => $2))
ON CONFLICT (name) DO UPDATE SET
    hits = CASE WHEN c.resets_at <= now() THEN 1 ELSE c.hits + 1 END,
    resets_at = CASE WHEN c.resets_at <= now() THEN EXCLUDED.resets_at ELSE c.resets_at END
RETURNING hits, extract(epoch FROM resets_at - now())::float8 AS left
"""


class PostgresStore(SharedStore):
    name = "postgres"
    defaults = {
        "dsn": "postgresql://postgres@127.0.0.1:5432/postgres",
        "table": "botkit_sessions",
        "lease": 10.0,
        "pool_size": 10,
        "sweep_every": 300.0,
    }

    def __init__(self, settings: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        schema, _, table = self.settings["table"].rpartition(".")

        def quote(name: str) -> str:
            return f'"{schema}"."{name}"' if schema else f'"{name}"'

        names = {"t": quote(table), "c": quote(table + "_counters"), "h": quote(table + "_history"),
                 "expiry_index": f'"{table}_expires_at"'}
        self._sql = {name: text.format(**names) for name, text in {
            "schema": SCHEMA, "take": TAKE, "write": WRITE, "write_with_history": WRITE_WITH_HISTORY,
            "history": HISTORY, "give_back": GIVE_BACK, "extend": EXTEND, "load": LOAD, "keys": KEYS,
            "delete": DELETE, "sweep": SWEEP, "expired": EXPIRED, "sweep_counters": SWEEP_COUNTERS, "count": COUNT, "held": HELD,
            "shape": SHAPE}.items()}
        self.pool: asyncpg.Pool | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def inbox(self) -> Inbox:
        from botkit.storage.inbox.postgres import PostgresInbox

        return PostgresInbox(lambda: self.pool, self.settings["table"], dsn=self.settings["dsn"], timeout=self.timeout)

    def bot_memory(self) -> BotMemory:
        from botkit.storage.bot_memory.postgres import PostgresBotMemory

        return PostgresBotMemory(self._call, self.settings["table"], self.run_schema)

    def bus(self) -> Bus:
        from botkit.storage.live.postgres import PostgresBus

        return PostgresBus(self.settings["dsn"], self.settings["table"].rpartition(".")[2], timeout=self.timeout)

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> None:
        super().validate(settings)
        dsn = settings.get("dsn", cls.defaults["dsn"])
        if not isinstance(dsn, str) or not dsn.startswith(("postgresql://", "postgres://")):
            raise ConfigError("session.stores.postgres.dsn", f"must be a postgresql:// URL, not {dsn!r}")
        table = settings.get("table", cls.defaults["table"])
        if not isinstance(table, str) or not all(_NAME.match(part) for part in table.split(".", 1)):
            raise ConfigError("session.stores.postgres.table",
                              f"must be a table name (letters, digits, _; at most 52 long; optionally schema.table), not {table!r}")
        size = settings.get("pool_size", cls.defaults["pool_size"])
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError("session.stores.postgres.pool_size", f"must be a positive whole number, not {size!r}")
        every = settings.get("sweep_every", cls.defaults["sweep_every"])
        if isinstance(every, bool) or not isinstance(every, (int, float)) or every <= 0:
            raise ConfigError("session.stores.postgres.sweep_every", f"must be seconds (a positive number), not {every!r}")

    # -- connection -------------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            self.pool = await asyncpg.create_pool(
                self.settings["dsn"],
                min_size=1,
                max_size=self.settings["pool_size"],
                timeout=self.timeout,
                command_timeout=self.timeout,
                init=_init_connection,
                reset=_keep_as_is,
                server_settings=None if "application_name" in self.settings["dsn"] else {"application_name": "botkit"},
            )
            await self._prepare_schema()
            await self.sweep()
        except ConfigError:
            await self.close()
            raise
        except Exception as exc:
            await self.close()
            raise StoreUnavailable(f"session store: cannot reach PostgreSQL ({type(exc).__name__}: {exc})") from None
        self._sweeper = asyncio.create_task(self._sweep_now_and_then())

    async def _prepare_schema(self) -> None:
        """Create the tables when missing; an advisory lock keeps workers starting together from racing
        on the catalog."""
        if self.pool is None:
            raise StoreUnavailable("the PostgreSQL session store is not open")
        async with self.pool.acquire(timeout=self.timeout) as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "botkit:" + self.settings["table"])
                try:
                    await conn.execute(self._sql["schema"])
                    await conn.execute(self._sql["shape"])
                except asyncpg.exceptions.SyntaxOrAccessError as exc:
                    raise ConfigError("session.stores.postgres.table",
                                      f"cannot use {self.settings['table']} ({exc}); name another table") from None

    async def run_schema(self, sql: str) -> None:
        """The DDL of a part kept beside the sessions (bot memory, the stats), under the advisory lock the
        sessions' own tables are created under: two workers creating one table at once would collide in
        the catalog (``CREATE TABLE IF NOT EXISTS`` is not safe against itself)."""
        if self.pool is None:
            raise StoreUnavailable("the PostgreSQL session store is not open")
        async with self.pool.acquire(timeout=self.timeout) as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "botkit:" + self.settings["table"])
            await conn.execute(sql)

    async def close(self) -> None:
        await super().close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self.pool is not None:
            pool, self.pool = self.pool, None
            try:
                await asyncio.wait_for(pool.close(), self.timeout)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                pool.terminate()

    async def ping(self) -> None:
        await self._call("fetchval", "SELECT 1")

    async def _call(self, method: str, query: str, *args: Any) -> Any:
        """Run one statement on a pooled connection, again on another if that one had been dropped.
        Data PostgreSQL refuses for good is StoreRefused, naming the error, never the data."""
        if self.pool is None:
            raise StoreUnavailable("the PostgreSQL session store is not open")
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self.pool.acquire(timeout=self.timeout) as conn:
                    return await getattr(conn, method)(query, *args)
            except REFUSED as exc:
                raise StoreRefused(f"PostgreSQL refused the data for good ({type(exc).__name__}, "
                                   f"SQLSTATE {getattr(exc, 'sqlstate', None)})") from None
            except RETRIED:
                if attempt == ATTEMPTS:
                    raise
                await asyncio.sleep(0)  # lets the pool see the other dropped connections close

    # -- expiry -----------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Delete expired rows and counters (free of any live lease); return how many sessions went."""
        removed = 0
        while True:
            status = await self._call("execute", self._sql["sweep"], self.clock(), float(self.keep_expired))
            count = int(status.rsplit(" ", 1)[1])
            removed += count
            if count < 5000:
                break
        await self._call("execute", self._sql["sweep_counters"])
        return removed

    async def _sweep_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(self.settings["sweep_every"])
            try:
                removed = await self.sweep()
            except Exception as exc:
                log.warning("sweeping expired sessions failed (will try again): %s", exc)
            else:
                if removed:
                    log.info("swept %d expired sessions", removed)

    # -- the lease --------------------------------------------------------------------------------

    async def _take(self, key: str) -> tuple[bool, dict[str, Any] | None]:
        row = await self._call("fetchrow", self._sql["take"], row_key(key), self.owner, self.lease, self.clock())
        return (False, None) if row is None else (True, row["record"])

    async def _write(self, record: dict[str, Any], owner: str | None, appended: Appended) -> int:
        key = row_key(key_of(record))
        args = [key, record, record["version"], record.get("expires_at"), owner, self.clock()]
        if appended.changes:
            entries, limit = list(appended.entries) if appended.limit > 0 else [], appended.limit
            last = entries[-1]["seq"] if entries else 0
            first = entries[0]["seq"] if entries else 1
            saved = await self._call("fetchval", self._sql["write_with_history"], *args,
                                     entries, last, limit, appended.restart, first)
        else:
            saved = await self._call("fetchval", self._sql["write"], *args)
        if saved:
            return SAVED
        if owner is not None and await self._call("fetchval", self._sql["give_back"], key, owner):
            return STALE
        return LEASE_LOST if owner is not None or await self._call("fetchval", self._sql["held"], key) else STALE

    async def _give_back(self, key: str) -> None:
        await self._call("fetchval", self._sql["give_back"], row_key(key), self.owner)

    async def _extend(self, key: str) -> bool:
        return bool(await self._call("fetchval", self._sql["extend"], row_key(key), self.owner, self.lease))

    # -- the rest of the interface ----------------------------------------------------------------

    async def load(self, key: str) -> dict[str, Any] | None:
        record: dict[str, Any] | None = await self._call("fetchval", self._sql["load"], row_key(key), self.clock())
        return record

    async def history(self, key: str, limit: int | None = None) -> list[dict[str, Any]]:
        if limit is not None and limit <= 0:
            return []
        return [_entry(row) for row in await self._call("fetch", self._sql["history"], row_key(key), limit)]

    async def delete(self, key: str) -> bool:
        return bool(await self._call("fetchval", self._sql["delete"], row_key(key), self.clock()))

    async def keys(self) -> list[str]:
        rows = await self._call("fetch", self._sql["keys"], self.clock())
        return [_unescape(row["real"]) if row["key"].startswith(HASHED) and row["real"] else row["key"] for row in rows]

    async def expired(self, now: float, limit: int = 100) -> list[str]:
        rows = await self._call("fetch", self._sql["expired"], now, limit)
        return [_unescape(row["real"]) if row["key"].startswith(HASHED) and row["real"] else row["key"] for row in rows]

    async def incr(self, name: str, window: float) -> tuple[int, float]:
        row = await self._call("fetchrow", self._sql["count"], row_key(name), float(window))
        return int(row["hits"]), max(0.0, float(row["left"]))


def _escape(text: str) -> str:
    return text.replace(NUL_ESCAPE, NUL_ESCAPE * 2).replace("\x00", NUL_ESCAPE + "0")


def _unescape(text: str) -> str:
    if NUL_ESCAPE not in text:
        return text
    return _ESCAPED.sub(lambda found: "\x00" if found.group(1) == "0" else found.group(1), text)


def _each_string(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` (decoded JSON) with ``change`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {change(k) if isinstance(k, str) else k: _each_string(v, change) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_each_string(item, change) for item in value]
    return value


def _encode_jsonb(value: Any) -> bytes:
    data = orjson.dumps(value)
    if b"\\u0000" in data or _NUL_ESCAPE_BYTES in data:  # rare: look at the strings only then
        data = orjson.dumps(_each_string(value, _escape))
    return b"\x01" + data


def _decode_jsonb(data: bytes) -> Any:
    value = orjson.loads(data[1:])
    return _each_string(value, _unescape) if _NUL_ESCAPE_BYTES in data else value


def _entry(row: Mapping[str, Any]) -> dict[str, Any]:
    entry = {"seq": row["seq"], "dir": row["direction"], "type": row["type"], "at": row["at"]}
    if row["text"] is not None:
        entry["text"] = _unescape(row["text"])
    if row["payload"] is not None:
        entry["payload"] = row["payload"]
    return entry


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary", encoder=_encode_jsonb, decoder=_decode_jsonb)


async def _keep_as_is(conn: asyncpg.Connection) -> None:
    """Connections are returned to the pool as they are: botkit sets no session state, and asyncpg's
    default reset would cost a round trip per statement."""
