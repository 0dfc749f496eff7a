"""The conversations in human mode, as every process sees them: one small record in the session store
(``botkit:handoffs``), changed under the store's lease like any session, so that it works on every driver
and every worker reads the same list. The truth about each conversation (who holds it) stays in its own
session's ``handoff`` part; the index only says where to look."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from botkit.core.errors import VersionConflict
from botkit.core.keys import OWN, SessionKey
from botkit.storage.base import SessionStore

INDEX_KEY = SessionKey.of(OWN, "handoffs")
PART = "handoffs"
ATTEMPTS = 5


class HandoffIndex:
    def __init__(self, store: SessionStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self._lock = asyncio.Lock()

    async def entries(self) -> dict[str, dict[str, Any]]:
        """Session key → ``{"reason", "since", "channel"}`` of every conversation handed to a human."""
        record = await self.store.load(INDEX_KEY)
        found: dict[str, dict[str, Any]] = ((record or {}).get("parts") or {}).get(PART) or {}
        return found

    async def add(self, key: str, info: dict[str, Any]) -> None:
        await self._change(lambda entries: entries.__setitem__(key, info))

    async def remove(self, key: str) -> None:
        await self._change(lambda entries: entries.pop(key, None))

    async def _change(self, change: Callable[[dict[str, Any]], Any]) -> None:
        async with self._lock:
            for attempt in range(ATTEMPTS):
                lease = await self.store.begin(INDEX_KEY)
                now = self.clock()
                record = dict(lease.record or {"key": INDEX_KEY, "created_at": now, "state": {}, "parts": {}})
                parts = dict(record.get("parts") or {})
                entries = dict(parts.get(PART) or {})
                change(entries)
                parts[PART] = entries
                record.update(parts=parts, version=lease.version + 1, last_activity=now, expires_at=None)
                try:
                    await self.store.commit(lease, record)
                    return
                except VersionConflict:
                    if lease.token is not None:
                        await self.store.release(lease)
                    if attempt == ATTEMPTS - 1:
                        raise
