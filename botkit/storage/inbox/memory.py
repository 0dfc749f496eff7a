"""The in-process inbox: for the memory driver, whose sessions live in one process too. Its entries are
lost with the process, like the memory driver's sessions (docs/inbox.md)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botkit.storage.inbox.base import Claim, Entry, Inbox, InboxStats
from botkit.storage.inbox.state import InboxState


class MemoryInbox(Inbox):
    def __init__(self) -> None:
        super().__init__()
        self._state = InboxState()

    async def put(self, items: Sequence[tuple[str, dict[str, Any]]], now: float, origin: str | None = None) -> list[str]:
        ids = []
        for key, event in items:
            entry = Entry(str(self._state.seq + 1), key, event, now, origin)
            self._state.put(entry)
            ids.append(entry.id)
        self.notify()
        return ids

    async def claim(self, owner: str, now: float, lease_until: float, limit: int) -> list[Claim]:
        return [self._state.claim(key, owner, lease_until) for key in self._state.claimable(now, limit)]

    async def ack(self, key: str, entry_id: str) -> None:
        self._state.ack(key, entry_id)

    async def extend(self, owner: str, keys: Sequence[str], lease_until: float) -> None:
        self._state.extend(owner, keys, lease_until)

    async def release(self, owner: str, claim: Claim, ready_at: float) -> None:
        if self._state.release(owner, claim.key, ready_at):
            self.notify()

    async def stats(self) -> InboxStats:
        return self._state.stats()
