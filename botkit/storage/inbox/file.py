"""The file driver's inbox: an append-only journal beside the sessions (``.inbox.journal``), every line
one operation (put, claim, extend, release, ack), fsynced after a put before the webhook answers.

Processes sharing the folder (``--workers``) take an exclusive ``flock`` for each operation, first
replay the lines others appended since they last looked, then append theirs: every process follows the
same bookkeeping (``InboxState``). Once the journal is large, it is rewritten as a snapshot of what is
still waiting (a new file renamed over it); a process that finds another file there reads it anew."""
from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from botkit.storage.atomic import write_atomically
from botkit.storage.inbox.base import Claim, Entry, Inbox, InboxStats
from botkit.storage.inbox.state import InboxState, entry_data, entry_of

T = TypeVar("T")
JOURNAL = ".inbox.journal"
COMPACT_AT = 4 * 1024 * 1024
"""Bytes of journal after which it is rewritten as a snapshot."""
POLL = 0.2
"""Seconds between looks at the journal while idle: other processes' puts are seen this late at most."""


class FileInbox(Inbox):
    shared = True
    durable = True

    poll = POLL

    def __init__(self, dirname: str | os.PathLike[str], *, fsync: bool = True) -> None:
        super().__init__()
        self.dirname = Path(dirname)
        self.path = self.dirname / JOURNAL
        self.fsync = fsync
        self._state = InboxState()
        self._offset = 0
        self._inode: int | None = None
        self._thread_lock = threading.Lock()

    async def open(self) -> None:
        await asyncio.to_thread(self.dirname.mkdir, parents=True, exist_ok=True)

    # -- the journal -----------------------------------------------------------------------------------

    def _locked(self, change: Callable[[InboxState], tuple[T, list[dict[str, Any]]]], *, sync: bool = False) -> T:
        """Under the lock: catch up with the journal, run ``change``, append the operations it returns."""
        with self._thread_lock:
            fd = os.open(self.dirname / (JOURNAL + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._catch_up()
                result, operations = change(self._state)
                if operations:
                    self._append(operations, sync)
                    if self._offset > COMPACT_AT:
                        self._compact()
                return result
            finally:
                os.close(fd)

    def _catch_up(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._state, self._offset, self._inode = InboxState(), 0, None
            return
        if stat.st_ino != self._inode or stat.st_size < self._offset:
            self._state, self._offset, self._inode = InboxState(), 0, stat.st_ino
        if stat.st_size == self._offset:
            return
        with open(self.path, "rb") as journal:
            journal.seek(self._offset)
            data = journal.read()
        complete = data.rfind(b"\n") + 1  # a line cut short by a crash is ignored (and overwritten below)
        for line in data[:complete].splitlines():
            if line:
                _apply(self._state, orjson.loads(line))
        self._offset += complete

    def _append(self, operations: list[dict[str, Any]], sync: bool) -> None:
        data = b"".join(orjson.dumps(operation) + b"\n" for operation in operations)
        with open(self.path, "r+b" if self.path.exists() else "wb") as journal:
            journal.seek(self._offset)
            journal.write(data)
            journal.truncate()
            if sync and self.fsync:
                journal.flush()
                os.fsync(journal.fileno())
        self._offset += len(data)
        self._inode = os.stat(self.path).st_ino

    def _compact(self) -> None:
        state = self._state
        lines = [entry_data(entry) for entry in state.entries()]
        lines += [{"o": "claim", "k": key, "ow": owner, "until": until} for key, owner, until in state.leases()]
        data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        write_atomically(self.path, data, fsync=self.fsync)
        self._offset, self._inode = len(data), os.stat(self.path).st_ino

    async def _run(self, change: Callable[[InboxState], tuple[T, list[dict[str, Any]]]], *, sync: bool = False) -> T:
        return await asyncio.to_thread(self._locked, change, sync=sync)

    # -- the interface ---------------------------------------------------------------------------------

    async def put(self, items: Sequence[tuple[str, dict[str, Any]]], now: float, origin: str | None = None) -> list[str]:
        def change(state: InboxState) -> tuple[list[str], list[dict[str, Any]]]:
            operations = []
            for n, (key, event) in enumerate(items, start=1):
                entry = Entry(str(state.seq + n), key, event, now, origin)
                operations.append(entry_data(entry))
            for operation in operations:
                _apply(state, operation)
            return [operation["id"] for operation in operations], operations

        ids = await self._run(change, sync=True)
        self.notify()
        return ids

    async def claim(self, owner: str, now: float, lease_until: float, limit: int) -> list[Claim]:
        def change(state: InboxState) -> tuple[list[Claim], list[dict[str, Any]]]:
            keys = state.claimable(now, limit)
            return ([state.claim(key, owner, lease_until) for key in keys],
                    [{"o": "claim", "k": key, "ow": owner, "until": lease_until} for key in keys])

        return await self._run(change)

    async def ack(self, key: str, entry_id: str) -> None:
        def change(state: InboxState) -> tuple[None, list[dict[str, Any]]]:
            state.ack(key, entry_id)
            return None, [{"o": "ack", "k": key, "id": entry_id}]

        await self._run(change)

    async def extend(self, owner: str, keys: Sequence[str], lease_until: float) -> None:
        def change(state: InboxState) -> tuple[None, list[dict[str, Any]]]:
            state.extend(owner, keys, lease_until)
            return None, [{"o": "ext", "ks": list(keys), "ow": owner, "until": lease_until}]

        await self._run(change)

    async def release(self, owner: str, claim: Claim, ready_at: float) -> None:
        def change(state: InboxState) -> tuple[bool, list[dict[str, Any]]]:
            again = state.release(owner, claim.key, ready_at)
            return again, [{"o": "rel", "k": claim.key, "ow": owner, "ready": ready_at}]

        if await self._run(change):
            self.notify()

    async def stats(self) -> InboxStats:
        return await self._run(lambda state: (state.stats(), []))


def _apply(state: InboxState, operation: dict[str, Any]) -> None:
    kind = operation["o"]
    if kind == "put":
        state.put(entry_of(operation))
    elif kind == "claim":
        state.claim(operation["k"], operation["ow"], operation["until"])
    elif kind == "ack":
        state.ack(operation["k"], operation["id"])
    elif kind == "ext":
        state.extend(operation["ow"], operation["ks"], operation["until"])
    elif kind == "rel":
        state.release(operation["ow"], operation["k"], operation["ready"])
