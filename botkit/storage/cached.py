"""A database store (PostgreSQL, MongoDB) with Redis in front: ``session = {"driver": "postgres",
"cache": "redis"}``, the cache's connection from ``session.stores.redis``.

The database stays the truth and keeps the lease: every save writes the database first (version- and
lease-checked, as without a cache), then the record to Redis; a read without a lease (``load``: the web
chat's token check on every request, the desk, ``botkit sessions show``, ``bot.load_session``) asks
Redis first and, on a miss (a new process, an evicted key, a flushed Redis), the database, putting what
it found back in Redis. The leased read (``begin``) is the same round trip that takes the lease in the
database, so it reads the record there: a record read under the lease is never stale, and a save can only
follow the version it read, so no stale cache entry can win a save.

Writes to Redis never go back in time: a record replaces the cached one only if its version is higher
(a slow refill after a miss cannot overwrite a newer save). When Redis cannot be written, the entry is
dropped if it can be; if Redis is away altogether the bot runs on the database alone (reads miss, saves
skip the cache) and a warning is logged once. Cache entries live until the session's expiry, at most
``CACHED_FOR`` seconds. The history log stays in the database (read only when a handler asks).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from botkit.core.session import dumps, key_of, loads
from botkit.storage.base import NOTHING, Appended, Lease, SessionStore
from botkit.storage.bot_memory import BotMemory
from botkit.storage.inbox import Inbox
from botkit.storage.live import Bus
from botkit.storage.redis import RedisStore
from botkit.storage.steps import StepStore

log = logging.getLogger("botkit.drivers.cache")

CACHED_FOR = 24 * 3600
"""Seconds a record stays in Redis at most (the session's expiry, if sooner)."""

# KEYS: the cache key. ARGV: the record (``version`` first), its version, TTL in ms.
PUT = """
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^{"version":(%d+)'))
  if version ~= nil and version >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""


class CachedStore(SessionStore):
    name = "cached"
    shared = True

    def __init__(self, database: SessionStore, redis_settings: Mapping[str, Any], *, clock: Callable[[], float],
                 lock_timeout: float = 30.0, timeout: float = 5.0) -> None:
        super().__init__({}, clock=clock, lock_timeout=lock_timeout, timeout=timeout)
        self.database = database
        self.driver = database.name
        """The database's driver name, as ``session.driver`` spells it."""
        self.redis = RedisStore(redis_settings, clock=clock, lock_timeout=lock_timeout, timeout=timeout)
        self.hits = 0
        self.misses = 0
        self._warned = False

    # the database's settings and parts

    @property
    def keep_expired(self) -> float:
        return self.database.keep_expired

    @keep_expired.setter
    def keep_expired(self, seconds: float) -> None:
        self.database.keep_expired = seconds

    def inbox(self) -> Inbox | None:
        return self.database.inbox()

    def bus(self) -> Bus:
        return self.database.bus()

    def step_store(self) -> tuple[StepStore, str | None]:
        return self.database.step_store()

    def bot_memory(self) -> BotMemory:
        return self.database.bot_memory()

    async def open(self) -> None:
        await self.database.open()
        try:
            await self.redis.open()
        except Exception:
            await self.database.close()
            raise
        self._put = self.redis.client.register_script(PUT)

    async def close(self) -> None:
        await self.redis.close()
        await self.database.close()

    async def ping(self) -> None:
        await self.database.ping()

    def _key(self, key: str) -> str:
        return f"{self.redis.prefix}cache:{{{key}}}" if self.redis.cluster else f"{self.redis.prefix}cache:{key}"

    # -- the lease: the database's ----------------------------------------------------------------

    async def begin(self, key: str) -> Lease:
        return await self.database.begin(key)

    async def commit(self, lease: Lease, record: dict[str, Any], appended: Appended = NOTHING) -> None:
        await self.database.commit(lease, record, appended)
        await self._cache(record)

    async def release(self, lease: Lease) -> None:
        await self.database.release(lease)

    async def save(self, record: dict[str, Any], appended: Appended = NOTHING) -> None:
        await self.database.save(record, appended)
        await self._cache(record)

    # -- reads: Redis first -------------------------------------------------------------------------

    async def load(self, key: str) -> dict[str, Any] | None:
        try:
            data = await self.redis.client.get(self._key(key))
        except Exception as exc:
            self._away(exc)
            data = None
        if data is not None:
            self.hits += 1
            return loads(data)
        self.misses += 1
        record = await self.database.load(key)
        if record is not None:
            await self._cache(record)
        return record

    async def _cache(self, record: dict[str, Any]) -> None:
        """Put ``record`` in Redis unless Redis holds a newer one; drop the entry if that fails."""
        key = self._key(key_of(record))
        expires_at = record.get("expires_at")
        ttl = CACHED_FOR * 1000 if expires_at is None else min(CACHED_FOR * 1000, int((expires_at - self.clock()) * 1000))
        try:
            if ttl <= 0:
                await self.redis.client.delete(key)
            else:
                await self._put(keys=[key], args=[dumps({"version": record["version"], **record}), record["version"], ttl])
            return
        except Exception as exc:
            self._away(exc)
        try:
            await self.redis.client.delete(key)
        except Exception:
            log.error("the cached copy of %s may be stale until its next save: Redis took neither the record nor "
                      "its removal", key_of(record))

    def _away(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning("the Redis cache is not answering (%s); reading and writing the database alone", exc)

    # -- the rest: the database's -------------------------------------------------------------------

    async def history(self, key: str, limit: int | None = None) -> list[dict[str, Any]]:
        return await self.database.history(key, limit)

    async def delete(self, key: str) -> bool:
        existed = await self.database.delete(key)
        try:
            await self.redis.client.delete(self._key(key))
        except Exception as exc:
            self._away(exc)
        return existed

    async def keys(self) -> list[str]:
        return await self.database.keys()

    async def expired(self, now: float, limit: int = 100) -> list[str]:
        return await self.database.expired(now, limit)

    async def unlist(self, key: str) -> None:
        await self.database.unlist(key)

    async def incr(self, name: str, window: float) -> tuple[int, float]:
        return await self.database.incr(name, window)
