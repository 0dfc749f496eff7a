"""Steps kept in Redis: a sorted set of step ids scored by due time, and a hash of the steps.

Claiming is one Lua script, so with N processes polling each due step is leased to exactly one of them;
the steps live in Redis, so they outlive every process. A claimer that dies leaves its lease to run out.
"""
from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from botkit.storage.steps.base import StepStore
from botkit.storage.steps.step import Step

CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local claimed = {}
for _, id in ipairs(ids) do
  local step = redis.call('HGET', KEYS[2], id)
  if step then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
    table.insert(claimed, step)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
local earliest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {claimed, earliest[2] or false}
"""

DONE = """
local gone = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local step = redis.call('HGET', KEYS[2], id)
  if step then
    redis.call('SREM', ARGV[1] .. cjson.decode(step)['key'], id)
    gone = gone + redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREM', KEYS[1], id)
end
return gone
"""
"""Forgets steps (ARGV[2:]) and their entries in their session's index (ARGV[1] is the index keys' stem:
it holds the ``{steps}`` hash tag, so in a Redis Cluster every key here is in the one slot)."""

ADD = """
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""


class RedisStepStore(StepStore):
    shared = True
    durable = True

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", prefix: str = "botkit:", *, cluster: bool = False,
                 **client_options: Any) -> None:
        self.url = url
        self.cluster = cluster
        # One hash tag for both keys: a Redis Cluster keeps them in one slot, as the scripts need.
        self.due_key = f"{prefix}{{steps}}:due"
        self.steps_key = f"{prefix}{{steps}}"
        self.session_stem = f"{prefix}{{steps}}:session:"
        """``<stem><session key>``: a set of the session's step ids, so one session's steps are found at once."""
        self.client_options = client_options
        self.client: Any = None

    async def open(self) -> None:
        options = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0, **self.client_options}
        self.client = (RedisCluster if self.cluster else aioredis.Redis).from_url(self.url, **options)
        self._claim = self.client.register_script(CLAIM)
        self._add = self.client.register_script(ADD)
        self._done = self.client.register_script(DONE)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    @property
    def _redis(self) -> Any:
        if self.client is None:
            raise RuntimeError("the Redis step store is not open; start the bot first")
        return self.client

    async def add(self, step: Step) -> bool:
        keys = [self.due_key, self.steps_key, self.session_stem + step.key]
        added = await self._add(keys=keys, args=[step.id, step.due, step.dumps()], client=self._redis)
        return bool(added)

    async def claim(self, now: float, lease_until: float, limit: int) -> tuple[list[Step], float | None]:
        keys = [self.due_key, self.steps_key]
        claimed, earliest = await self._claim(keys=keys, args=[now, lease_until, limit], client=self._redis)
        return [Step.loads(data) for data in claimed], float(earliest) if earliest else None

    async def done(self, step_id: str) -> None:
        await self.cancel([step_id])

    async def cancel(self, step_ids: list[str]) -> int:
        if not step_ids:
            return 0
        gone = await self._done(keys=[self.due_key, self.steps_key], args=[self.session_stem, *step_ids], client=self._redis)
        return int(gone)

    async def pending(self, key: str | None = None) -> list[tuple[float, Step]]:
        if key is None:
            return await self.steps()
        ids = sorted(await self._redis.smembers(self.session_stem + key))
        if not ids:
            return []
        data = await self._redis.hmget(self.steps_key, ids)
        dues = await self._redis.zmscore(self.due_key, ids)
        found = [(float(due), Step.loads(step)) for step, due in zip(data, dues, strict=True)
                 if step is not None and due is not None]
        return sorted(found, key=lambda pair: pair[0])

    async def retry(self, step_id: str, due: float) -> None:
        await self._redis.zadd(self.due_key, {step_id: due}, xx=True)

    async def steps(self) -> list[tuple[float, Step]]:
        dues = await self._redis.zrange(self.due_key, 0, -1, withscores=True)
        if not dues:
            return []
        data = await self._redis.hmget(self.steps_key, [step_id for step_id, _ in dues])
        return [(due, Step.loads(found)) for (_, due), found in zip(dues, data, strict=True) if found is not None]

    async def count_due_after(self, when: float) -> int:
        return int(await self._redis.zcount(self.due_key, f"({when}", "+inf"))

    async def count_due_by(self, when: float) -> int:
        return int(await self._redis.zcount(self.due_key, "-inf", when))
