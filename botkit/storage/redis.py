"""Sessions in Redis (or Redis Cluster): the record is the JSON value of ``<prefix>session:<key>``, its
expiry the key's TTL, refreshed on every save; its history is the list ``<prefix>history:<key>``, one
JSON entry an item, with the same TTL.

Each step of the lease is one Lua script, so one round trip: ``begin`` takes ``<prefix>lease:<key>``
(a plain string holding the owner token, with a PX time to live) and reads the record; ``commit`` checks
the lease and the version, writes the record with its TTL, appends the event's history entries
(``RPUSH`` then ``LTRIM`` to the limit) and drops the lease. In Cluster mode the session key is wrapped
in a hash tag (``<prefix>session:{<key>}``) so that the record, its history and its lease live on the
same shard, which a script needs.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from botkit.core.errors import ConfigError, StoreUnavailable
from botkit.core.session import dumps, key_of, loads
from botkit.storage.base import Appended
from botkit.storage.bot_memory import BotMemory
from botkit.storage.inbox import Inbox
from botkit.storage.live import Bus
from botkit.storage.shared import LEASE_LOST, SAVED, STALE, SharedStore, expiry_ms
from botkit.storage.steps import StepStore

SCHEMES = ("redis://", "rediss://", "unix://")

TAKE = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {0} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {1, redis.call('GET', KEYS[1])}
"""

# The record is written with "version" first, so the script reads it without decoding the JSON.
# KEYS: record, lease, history, and (not in Cluster mode) the expiry index. ARGV: owner, version read,
# record, TTL (ms, 0: none), restart the history ('1'), history limit, the expiry's score in the index
# ('': not listed), then the history entries to append.
WRITE = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return -1 end
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^{"version":(%d+)'))
  if version == nil then version = tonumber(cjson.decode(current)['version']) or 0 end
  if version ~= tonumber(ARGV[2]) then
    if holder then redis.call('DEL', KEYS[2]) end
    return 0
  end
end
if ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
if ARGV[5] == '1' then redis.call('DEL', KEYS[3]) end
if #ARGV > 7 then
  for i = 8, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[6]), -1)
end
if KEYS[4] then
  if ARGV[7] == '' then redis.call('ZREM', KEYS[4], KEYS[1]) else redis.call('ZADD', KEYS[4], ARGV[7], KEYS[1]) end
end
if ARGV[4] == '0' then
  redis.call('PERSIST', KEYS[3])
else
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
if holder then redis.call('DEL', KEYS[2]) end
return 1
"""

DROP = """
local existed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
return existed
"""

GIVE_BACK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

COUNT = """
local hits = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {hits, left}
"""


class RedisStore(SharedStore):
    name = "redis"
    defaults = {
        "url": "redis://127.0.0.1:6379/0",
        "prefix": "botkit:",
        "cluster": False,
        "lease": 10.0,
        "max_connections": 64,
    }

    def __init__(self, settings: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.url: str = self.settings["url"]
        self.prefix: str = self.settings["prefix"]
        self.cluster: bool = self.settings["cluster"]
        self.client: Any = None
        self._lease_ms = str(int(self.lease * 1000))

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> None:
        super().validate(settings)
        url = settings.get("url", cls.defaults["url"])
        if not isinstance(url, str) or not url.startswith(SCHEMES):
            raise ConfigError("session.stores.redis.url", f"must be a redis://, rediss:// or unix:// URL, not {url!r}")
        prefix = settings.get("prefix", cls.defaults["prefix"])
        if not isinstance(prefix, str):
            raise ConfigError("session.stores.redis.prefix", f"must be a string such as \"botkit:\", not {prefix!r}")
        cluster = settings.get("cluster", False)
        if not isinstance(cluster, bool):
            raise ConfigError("session.stores.redis.cluster", f"must be True or False, not {cluster!r}")
        if cluster and ("{" in prefix or "}" in prefix):
            raise ConfigError("session.stores.redis.prefix", "must not hold { or } with cluster: True (hash tags)")
        if cluster and url.startswith("unix://"):
            raise ConfigError("session.stores.redis.url", "a Redis Cluster is reached over redis:// or rediss://")
        size = settings.get("max_connections", cls.defaults["max_connections"])
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError("session.stores.redis.max_connections", f"must be a positive whole number, not {size!r}")

    def inbox(self) -> Inbox:
        from botkit.storage.inbox.redis import RedisInbox

        return RedisInbox(self.url, self.prefix, cluster=self.cluster, timeout=self.timeout)

    def bus(self) -> Bus:
        from botkit.storage.live.redis import RedisBus

        return RedisBus(self.url, self.prefix, timeout=self.timeout)

    def bot_memory(self) -> BotMemory:
        from botkit.storage.bot_memory.redis import RedisBotMemory

        return RedisBotMemory(lambda: self.client, self.prefix)

    def step_store(self) -> tuple[StepStore, str | None]:
        from botkit.storage.steps.redis import RedisStepStore

        return RedisStepStore(self.url, self.prefix, cluster=self.cluster), None

    # -- connection -------------------------------------------------------------------------------

    async def open(self) -> None:
        options = {
            "max_connections": self.settings["max_connections"],
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            # one quick retry when a pooled connection turns out dead (Redis restarted); none on a
            # timeout, so that a hung server costs `timeout`, not a multiple of it
            "retry": Retry(ExponentialBackoff(cap=0.05, base=0.005), 1, supported_errors=(RedisConnectionError,)),
        }
        if self.cluster:
            self.client = RedisCluster.from_url(self.url, **options)
        else:
            pool = aioredis.BlockingConnectionPool.from_url(self.url, timeout=self.timeout, **options)
            self.client = aioredis.Redis(connection_pool=pool)
        client = self.client
        self._take_script = client.register_script(TAKE)
        self._write_script = client.register_script(WRITE)
        self._give_back_script = client.register_script(GIVE_BACK)
        self._extend_script = client.register_script(EXTEND)
        self._count_script = client.register_script(COUNT)
        self._drop_script = client.register_script(DROP)
        try:
            await self.ping()
        except Exception as exc:
            await self.close()
            raise StoreUnavailable(f"session store: cannot reach Redis at {_redacted(self.url)} ({exc})") from None

    async def close(self) -> None:
        await super().close()
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()

    async def ping(self) -> None:
        await self.client.ping()

    # -- keys -------------------------------------------------------------------------------------

    def _record_key(self, key: str) -> str:
        return f"{self.prefix}session:{{{key}}}" if self.cluster else f"{self.prefix}session:{key}"

    def _lease_key(self, key: str) -> str:
        return f"{self.prefix}lease:{{{key}}}" if self.cluster else f"{self.prefix}lease:{key}"

    def _history_key(self, key: str) -> str:
        return f"{self.prefix}history:{{{key}}}" if self.cluster else f"{self.prefix}history:{key}"

    # -- the lease --------------------------------------------------------------------------------

    async def _take(self, key: str) -> tuple[bool, dict[str, Any] | None]:
        reply = await self._take_script(keys=[self._record_key(key), self._lease_key(key)], args=[self.owner, self._lease_ms])
        if not reply[0]:
            return False, None
        return True, None if reply[1] is None else loads(reply[1])

    async def _write(self, record: dict[str, Any], owner: str | None, appended: Appended) -> int:
        key = key_of(record)
        data = dumps({"version": record["version"], **record})
        ttl = expiry_ms(record, self.clock())
        listed = _listed(record)
        if ttl and listed and self.keep_expired:
            ttl += int(self.keep_expired * 1000)
        entries = [dumps(entry) for entry in appended.entries] if appended.limit > 0 else []
        keys = [self._record_key(key), self._lease_key(key), self._history_key(key)]
        score = repr(record["expires_at"]) if listed else ""
        outcome = await self._write_script(
            keys=keys if self.cluster else [*keys, self._expiry_index],
            args=[owner or "", record["version"] - 1, data, ttl, "1" if appended.restart else "0", appended.limit,
                  score, *entries],
        )
        if self.cluster and int(outcome) == 1:
            await (self.client.zadd(self._expiry_index, {keys[0]: float(score)}) if score
                   else self.client.zrem(self._expiry_index, keys[0]))
        return {1: SAVED, 0: STALE, -1: LEASE_LOST}[int(outcome)]

    @property
    def _expiry_index(self) -> str:
        """A sorted set of the record keys that expire, by their expiry: the end sweep reads it."""
        return f"{self.prefix}expiring"

    async def expired(self, now: float, limit: int = 100) -> list[str]:
        names = await self.client.zrangebyscore(self._expiry_index, "-inf", now, start=0, num=limit)
        head = len(f"{self.prefix}session:") + (1 if self.cluster else 0)
        keys = []
        for name in names:
            key = name.decode()[head:]
            keys.append(key[:-1] if self.cluster else key)
        return keys

    async def unlist(self, key: str) -> None:
        await self.client.zrem(self._expiry_index, self._record_key(key))

    async def _give_back(self, key: str) -> None:
        await self._give_back_script(keys=[self._lease_key(key)], args=[self.owner])

    async def _extend(self, key: str) -> bool:
        return bool(await self._extend_script(keys=[self._lease_key(key)], args=[self.owner, self._lease_ms]))

    # -- the rest of the interface ----------------------------------------------------------------

    async def load(self, key: str) -> dict[str, Any] | None:
        data = await self.client.get(self._record_key(key))
        return None if data is None else loads(data)

    async def history(self, key: str, limit: int | None = None) -> list[dict[str, Any]]:
        if limit is not None and limit <= 0:
            return []
        items = await self.client.lrange(self._history_key(key), 0 if limit is None else -limit, -1)
        return [loads(item) for item in items]

    async def delete(self, key: str) -> bool:
        existed = bool(await self._drop_script(keys=[self._record_key(key), self._history_key(key)]))
        await self.unlist(key)
        return existed

    async def keys(self) -> list[str]:
        head = f"{self.prefix}session:".encode()
        found = []
        async for name in self.client.scan_iter(match=_glob_escape(head) + b"*", count=1000):
            key = name[len(head):].decode()
            if self.cluster and key.startswith("{") and key.endswith("}"):
                key = key[1:-1]
            found.append(key)
        return found

    async def incr(self, name: str, window: float) -> tuple[int, float]:
        hits, left_ms = await self._count_script(keys=[f"{self.prefix}rate:{name}"], args=[max(1, int(window * 1000))])
        return int(hits), int(left_ms) / 1000


def _listed(record: dict[str, Any]) -> bool:
    """Whether the record belongs in the expiry index: it expires and its end has not run."""
    return record.get("expires_at") is not None and not ((record.get("parts") or {}).get("life") or {}).get("ended")


def _glob_escape(text: bytes) -> bytes:
    """``text`` as a literal in a SCAN MATCH pattern."""
    out = bytearray()
    for byte in text:
        if byte in b"*?[]\\":
            out += b"\\"
        out.append(byte)
    return bytes(out)


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
