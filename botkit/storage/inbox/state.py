"""The inbox's bookkeeping as plain data: the memory inbox is this state in a process; the file inbox
replays the same operations from its journal, so both follow one set of rules."""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from botkit.storage.inbox.base import Claim, Entry, InboxStats


class InboxState:
    def __init__(self) -> None:
        self.queues: dict[str, deque[Entry]] = {}
        self.ready: dict[str, float] = {}
        """Session key → when it may be claimed (a leased one: when its lease ends)."""
        self.owners: dict[str, str] = {}
        self.seq = 0

    def put(self, entry: Entry) -> None:
        self.seq = max(self.seq, int(entry.id))
        self.queues.setdefault(entry.key, deque()).append(entry)
        self.ready.setdefault(entry.key, 0.0)

    def claimable(self, now: float, limit: int) -> list[str]:
        found: list[str] = []
        for key, ready_at in list(self.ready.items()):
            if len(found) >= limit:
                break
            if ready_at > now:
                continue
            if not self.queues.get(key):
                del self.ready[key]
                continue
            found.append(key)
        return found

    def claim(self, key: str, owner: str, lease_until: float) -> Claim:
        self.ready[key] = lease_until
        self.owners[key] = owner
        return Claim(key, list(self.queues.get(key, ())))

    def ack(self, key: str, entry_id: str) -> None:
        queue = self.queues.get(key)
        if queue and queue[0].id == entry_id:
            queue.popleft()
            if not queue:
                del self.queues[key]

    def extend(self, owner: str, keys: Sequence[str], lease_until: float) -> None:
        for key in keys:
            if self.owners.get(key) == owner and key in self.ready:
                self.ready[key] = lease_until

    def release(self, owner: str, key: str, ready_at: float) -> bool:
        """End the lease; True when the session is ready again (entries are waiting)."""
        if self.owners.get(key) != owner:
            return False
        del self.owners[key]
        if self.queues.get(key):
            self.ready[key] = ready_at
            return True
        self.ready.pop(key, None)
        return False

    def stats(self) -> InboxStats:
        heads = [queue[0].enqueued_at for queue in self.queues.values() if queue]
        return InboxStats(sum(len(queue) for queue in self.queues.values()), min(heads, default=None))

    def entries(self) -> list[Entry]:
        return [entry for queue in self.queues.values() for entry in queue]

    def leases(self) -> list[tuple[str, str, float]]:
        return [(key, owner, self.ready.get(key, 0.0)) for key, owner in self.owners.items()]


def entry_of(data: dict[str, Any]) -> Entry:
    return Entry(str(data["id"]), data["k"], data["e"], float(data["at"]), data.get("or"))


def entry_data(entry: Entry) -> dict[str, Any]:
    return {"o": "put", "id": entry.id, "k": entry.key, "e": entry.event, "at": entry.enqueued_at, "or": entry.origin}
