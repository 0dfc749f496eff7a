"""The in-process inbox: for the memory and file drivers, whose sessions live in one process too. Its
entries are lost with the process, like the memory driver's sessions (docs/sessions.md)."""
from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Sequence
from typing import Any

from botkit.storage.inbox.base import Claim, Entry, Inbox, InboxStats


class MemoryInbox(Inbox):
    def __init__(self) -> None:
        self._queues: dict[str, deque[Entry]] = {}
        self._ready: dict[str, float] = {}
        """Session key → when it may be claimed (a leased one: when its lease ends)."""
        self._owners: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._woken = asyncio.Event()

    async def put(self, items: Sequence[tuple[str, dict[str, Any]]], now: float, origin: str | None = None) -> list[str]:
        ids = []
        for key, event in items:
            entry = Entry(str(next(self._ids)), key, event, now, origin)
            self._queues.setdefault(key, deque()).append(entry)
            self._ready.setdefault(key, 0.0)
            ids.append(entry.id)
        self._woken.set()
        return ids

    async def claim(self, owner: str, now: float, lease_until: float, limit: int) -> list[Claim]:
        claims: list[Claim] = []
        for key, ready_at in list(self._ready.items()):
            if len(claims) >= limit:
                break
            if ready_at > now:
                continue
            queue = self._queues.get(key)
            if not queue:
                del self._ready[key]
                continue
            self._ready[key] = lease_until
            self._owners[key] = owner
            claims.append(Claim(key, list(queue)))
        return claims

    async def ack(self, key: str, entry_id: str) -> None:
        queue = self._queues.get(key)
        if queue and queue[0].id == entry_id:
            queue.popleft()
            if not queue:
                del self._queues[key]

    async def extend(self, owner: str, keys: Sequence[str], lease_until: float) -> None:
        for key in keys:
            if self._owners.get(key) == owner and key in self._ready:
                self._ready[key] = lease_until

    async def release(self, owner: str, claim: Claim, ready_at: float) -> None:
        key = claim.key
        if self._owners.get(key) != owner:
            return
        del self._owners[key]
        if self._queues.get(key):
            self._ready[key] = ready_at
            self._woken.set()
        else:
            self._ready.pop(key, None)

    async def stats(self) -> InboxStats:
        heads = [queue[0].enqueued_at for queue in self._queues.values() if queue]
        return InboxStats(sum(len(queue) for queue in self._queues.values()), min(heads, default=None))

    async def wait(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._woken.wait()
        except TimeoutError:
            pass
        self._woken.clear()
