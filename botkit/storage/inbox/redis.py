"""The inbox in Redis: a list per session (``<prefix>{inbox}:q:<key>``), a sorted set of the sessions
ready to claim scored by when (a leased session: when its lease ends), an owner hash, and a sorted set
of every waiting entry by arrival (depth and the oldest age). Every step is one Lua script, so with
any number of processes a session is leased to one of them at a time. All keys share the ``{inbox}``
hash tag: on a Redis Cluster they live on one shard, as the scripts need. A put (and a release that
leaves entries) is announced on the live bus (``RedisBus``'s channel, in the same script), so idle
workers claim at once instead of at their next poll."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from botkit.storage.inbox.base import Claim, Entry, Inbox, InboxStats

PUT = """
local ids = {}
for i = 1, #ARGV - 2, 2 do
  local key = ARGV[i]
  local id = redis.call('INCR', KEYS[1])
  local entry = cjson.encode({id = tostring(id), at = ARGV[#ARGV - 1], origin = ARGV[#ARGV], event = '@'})
  entry = string.gsub(entry, '"@"', function() return ARGV[i + 1] end, 1)
  redis.call('RPUSH', KEYS[2] .. key, entry)
  redis.call('ZADD', KEYS[3], 'NX', 0, key)
  redis.call('ZADD', KEYS[4], ARGV[#ARGV - 1], tostring(id))
  table.insert(ids, tostring(id))
end
redis.call('PUBLISH', KEYS[5], '{"t":"inbox","d":1}')
return ids
"""

CLAIM = """
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local claimed = {}
for _, key in ipairs(keys) do
  local entries = redis.call('LRANGE', KEYS[3] .. key, 0, tonumber(ARGV[4]) - 1)
  if #entries == 0 then
    redis.call('ZREM', KEYS[1], key)
    redis.call('HDEL', KEYS[2], key)
  else
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], key)
    redis.call('HSET', KEYS[2], key, ARGV[5])
    table.insert(claimed, {key, entries})
  end
end
return claimed
"""

ACK = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and string.find(head, ARGV[2], 1, true) then
  redis.call('LPOP', KEYS[1])
end
redis.call('ZREM', KEYS[2], ARGV[1])
"""

EXTEND = """
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[i])
  end
end
"""

RELEASE = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('LLEN', KEYS[3]) > 0 then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('PUBLISH', KEYS[4], '{"t":"inbox","d":1}')
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
"""

MAX_CONNECTIONS = 64
BATCH = 100
"""Entries of one session handed over by one claim; the rest come with the next."""


class RedisInbox(Inbox):
    shared = True
    durable = True

    def __init__(self, url: str, prefix: str = "botkit:", *, cluster: bool = False, timeout: float = 5.0) -> None:
        super().__init__()
        self.url = url
        self.cluster = cluster
        self.timeout = timeout
        base = f"{prefix}{{inbox}}"
        self.seq_key = f"{base}:seq"
        self.queue_prefix = f"{base}:q:"
        self.ready_key = f"{base}:ready"
        self.owners_key = f"{base}:owners"
        self.pending_key = f"{base}:pending"
        self.wake_channel = f"{prefix}live"
        """The live bus's channel (botkit.storage.live.redis)."""
        self.client: Any = None

    async def open(self) -> None:
        options: dict[str, Any] = {"socket_timeout": self.timeout, "socket_connect_timeout": self.timeout}
        if self.cluster:
            self.client = RedisCluster.from_url(self.url, **options)
        else:  # a burst waits for a free connection instead of failing (the default pool raises past its size)
            pool = aioredis.BlockingConnectionPool.from_url(self.url, max_connections=MAX_CONNECTIONS, timeout=self.timeout,
                                                            **options)
            self.client = aioredis.Redis(connection_pool=pool)
        client = self.client
        self._put = client.register_script(PUT)
        self._claim = client.register_script(CLAIM)
        self._ack = client.register_script(ACK)
        self._release = client.register_script(RELEASE)
        self._extend = client.register_script(EXTEND)

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()

    async def put(self, items: Sequence[tuple[str, dict[str, Any]]], now: float, origin: str | None = None) -> list[str]:
        args: list[Any] = []
        for key, event in items:
            args += [key, orjson.dumps(event)]
        args += [repr(now), origin or ""]
        keys = [self.seq_key, self.queue_prefix, self.ready_key, self.pending_key, self.wake_channel]
        ids = await self._put(keys=keys, args=args)
        return [_text(found) for found in ids]

    async def claim(self, owner: str, now: float, lease_until: float, limit: int) -> list[Claim]:
        found = await self._claim(keys=[self.ready_key, self.owners_key, self.queue_prefix],
                                  args=[now, lease_until, limit, BATCH, owner])
        return [Claim(_text(key), [_entry(_text(key), raw) for raw in entries]) for key, entries in found]

    async def ack(self, key: str, entry_id: str) -> None:
        await self._ack(keys=[self.queue_prefix + key, self.pending_key], args=[entry_id, f'"id":"{entry_id}"'])

    async def extend(self, owner: str, keys: Sequence[str], lease_until: float) -> None:
        if not keys:
            return
        await self._extend(keys=[self.ready_key, self.owners_key], args=[owner, lease_until, *keys])

    async def release(self, owner: str, claim: Claim, ready_at: float) -> None:
        await self._release(keys=[self.ready_key, self.owners_key, self.queue_prefix + claim.key, self.wake_channel],
                            args=[claim.key, owner, ready_at])

    async def stats(self) -> InboxStats:
        depth = int(await self.client.zcard(self.pending_key))
        oldest = await self.client.zrange(self.pending_key, 0, 0, withscores=True)
        return InboxStats(depth, float(oldest[0][1]) if oldest else None)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(key: str, raw: bytes | str) -> Entry:
    data = orjson.loads(raw)
    return Entry(str(data["id"]), key, data["event"], float(data["at"]), data.get("origin") or None)
