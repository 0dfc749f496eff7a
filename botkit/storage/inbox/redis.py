"""The inbox in Redis: a list per session (``<prefix>{inbox}:q:<key>``), a sorted set of the sessions
ready to claim scored by when (a leased session: when its lease ends), an owner hash, and a sorted set
of every waiting entry by arrival (depth and the oldest age). Every step is one Lua script, so with
any number of processes a session is leased to one of them at a time. All keys share the ``{inbox}``
hash tag: on a Redis Cluster they live on one shard, as the scripts need. A put (and a release that
leaves entries) is announced on the live bus (``RedisBus``'s channel, in the same script), so idle
workers claim at once instead of at their next poll."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from botkit.core.session import loads
from botkit.storage.inbox.base import Claim, Entry, FinishOnSave, Inbox, InboxStats
from botkit.storage.shared import SharedStore

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

# PUT, then the items' sessions that are ready (score ≤ now) leased to the owner, as CLAIM does, each with
# the session store's lease taken as its TAKE does (when given its key prefixes), so that the first event's
# begin needs no round trip; the wake is published only when a session is left for the other workers.
# KEYS: as PUT, then owners, [record prefix, lease prefix]. ARGV: key, event pairs, then now, origin,
# owner, lease until, batch, [store owner, store lease ms].
PUT_CLAIM = """
local n = #ARGV - 5
if KEYS[7] then n = #ARGV - 7 end
local now, origin, owner, lease_until, batch = ARGV[n + 1], ARGV[n + 2], ARGV[n + 3], ARGV[n + 4], tonumber(ARGV[n + 5])
local ids, seen, claimed, left = {}, {}, {}, false
for i = 1, n, 2 do
  local key = ARGV[i]
  local id = redis.call('INCR', KEYS[1])
  local entry = cjson.encode({id = tostring(id), at = now, origin = origin, event = '@'})
  entry = string.gsub(entry, '"@"', function() return ARGV[i + 1] end, 1)
  redis.call('RPUSH', KEYS[2] .. key, entry)
  redis.call('ZADD', KEYS[3], 'NX', 0, key)
  redis.call('ZADD', KEYS[4], now, tostring(id))
  table.insert(ids, tostring(id))
end
for i = 1, n, 2 do
  local key = ARGV[i]
  if not seen[key] then
    seen[key] = true
    local score = redis.call('ZSCORE', KEYS[3], key)
    if score and tonumber(score) <= tonumber(now) then
      redis.call('ZADD', KEYS[3], 'XX', lease_until, key)
      redis.call('HSET', KEYS[6], key, owner)
      local taken, record = 0, false
      if KEYS[7] then  -- the session store's TAKE: its lease, and the record
        local holder = redis.call('GET', KEYS[8] .. key)
        if not holder or holder == ARGV[n + 6] then
          redis.call('SET', KEYS[8] .. key, ARGV[n + 6], 'PX', ARGV[n + 7])
          taken, record = 1, redis.call('GET', KEYS[7] .. key)
        end
      end
      table.insert(claimed, {key, redis.call('LRANGE', KEYS[2] .. key, 0, batch - 1), taken, record})
    else
      left = true
    end
  end
end
if left then redis.call('PUBLISH', KEYS[5], '{"t":"inbox","d":1}') end
return {ids, claimed}
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

# ACK, then RELEASE; 2 when entries wait (the session is ready again). KEYS: queue, pending, ready, owners,
# wake channel. ARGV: key, entry id, its "id" field, owner.
FINISH = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and string.find(head, ARGV[3], 1, true) then
  redis.call('LPOP', KEYS[1])
end
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[4] then return 0 end
redis.call('HDEL', KEYS[4], ARGV[1])
if redis.call('LLEN', KEYS[1]) > 0 then
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
  redis.call('PUBLISH', KEYS[5], '{"t":"inbox","d":1}')
  return 2
end
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""

@dataclass(frozen=True, slots=True)
class Priming:
    """The session store on the same Redis, whose lease a claim takes (``SharedStore.prime``)."""

    store: SharedStore
    record_prefix: str
    lease_prefix: str
    lease_ms: str


MAX_CONNECTIONS = 64
BATCH = 100
"""Entries of one session handed over by one claim; the rest come with the next."""


class RedisInbox(Inbox):
    shared = True
    durable = True

    def __init__(self, url: str, prefix: str = "botkit:", *, cluster: bool = False, timeout: float = 5.0,
                 priming: Priming | None = None) -> None:
        super().__init__()
        self.priming = priming
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
        self._put_claim = client.register_script(PUT_CLAIM)
        self._finish = client.register_script(FINISH)

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

    async def put_and_claim(self, items: Sequence[tuple[str, dict[str, Any]]], now: float, origin: str | None,
                            owner: str, lease_until: float) -> tuple[list[str], list[Claim]]:
        args: list[Any] = []
        for key, event in items:
            args += [key, orjson.dumps(event)]
        args += [repr(now), origin or "", owner, lease_until, BATCH]
        keys = [self.seq_key, self.queue_prefix, self.ready_key, self.pending_key, self.wake_channel, self.owners_key]
        priming = self.priming
        if priming is not None:
            keys += [priming.record_prefix, priming.lease_prefix]
            args += [priming.store.owner, priming.lease_ms]
        ids, found = await self._put_claim(keys=keys, args=args)
        claims = []
        for raw_key, entries, taken, record in found:
            key = _text(raw_key)
            if taken and priming is not None:
                priming.store.prime(key, None if record is None else loads(record))
            claims.append(Claim(key, [_entry(key, raw) for raw in entries]))
        return [_text(one) for one in ids], claims

    async def finish(self, owner: str, claim: Claim, entry_id: str) -> bool:
        outcome = await self._finish(keys=[self.queue_prefix + claim.key, self.pending_key, self.ready_key, self.owners_key,
                                           self.wake_channel], args=[claim.key, entry_id, f'"id":"{entry_id}"', owner])
        return int(outcome) == 2

    def finish_on_save(self, owner: str, claim: Claim, entry_id: str) -> FinishOnSave | None:
        if self.priming is None:
            return None
        return FinishOnSave(claim.key, [self.queue_prefix + claim.key, self.pending_key, self.ready_key, self.owners_key,
                                        self.wake_channel], [claim.key, entry_id, f'"id":"{entry_id}"', owner])

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
