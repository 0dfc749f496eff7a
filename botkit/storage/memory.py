"""In-process sessions: an LRU of serialised records (compact, and never aliased by a handler), each
with its history log beside it: a list of serialised entries, bounded to the history limit.

Each platform (the session key's prefix: ``telegram``, ``web``, …) keeps its own LRU; beyond ``max_size``
the least recently used session of the platform holding the most is dropped. So a flood through one channel
(anonymous web chat sessions, say) evicts that channel's sessions, never another channel's conversations,
as long as the other channel holds no more than its share. An evicted session leaves a small tombstone
(its version and the ids of the events it handled, for up to ``TOMBSTONES`` sessions): it loads as an expired
record, so a replay of an event it handled is still a duplicate and the next save continues its version."""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from botkit.core.errors import ConfigError, VersionConflict
from botkit.core.keys import SessionKey
from botkit.core.session import dumps, key_of, loads
from botkit.storage.base import NOTHING, Appended, SessionStore

log = logging.getLogger("botkit.drivers.memory")
DEFAULT_MAX_SIZE = 10_000
"""About 700 bytes an idle session (bench.idle_sessions): 10,000 sessions take some 7 MB."""
_eviction_logged = False
"""Whether this process has logged its first eviction (the warning is given once per process)."""
Entry = tuple[int, bytes]
TOMBSTONES = 1_000
"""Evicted sessions whose handled event ids are remembered."""


class MemoryStore(SessionStore):
    name = "memory"
    defaults = {"max_size": DEFAULT_MAX_SIZE}
    in_process = True

    def __init__(self, settings: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.max_size: int = self.settings["max_size"]
        self._platforms: dict[str, OrderedDict[str, Entry]] = {}
        """One LRU per platform (the key's prefix)."""
        self._size = 0
        self._tombstones: OrderedDict[str, bytes] = OrderedDict()
        self._logs: dict[str, list[bytes]] = {}
        """A list rather than a deque: an idle session's two entries cost 70 bytes of list, a deque 600."""

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> None:
        super().validate(settings)
        size = settings.get("max_size", DEFAULT_MAX_SIZE)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError("session.stores.memory.max_size", f"must be a positive whole number, not {size!r}")

    def _lru(self, key: str) -> OrderedDict[str, Entry] | None:
        return self._platforms.get(SessionKey(key).platform)

    async def load(self, key: str) -> dict[str, Any] | None:
        records = self._lru(key)
        entry = None if records is None else records.get(key)
        if records is None or entry is None:
            tombstone = self._tombstones.get(key)
            return None if tombstone is None else loads(tombstone)
        records.move_to_end(key)
        return loads(entry[1])

    async def save(self, record: dict[str, Any], appended: Appended = NOTHING) -> None:
        key = key_of(record)
        records = self._platforms.setdefault(SessionKey(key).platform, OrderedDict())
        current = records.get(key)
        version = record["version"]
        if current is not None and current[0] != version - 1:
            raise VersionConflict(f"session {key} changed since it was loaded")
        records[key] = (version, _compact(dumps(record)))
        records.move_to_end(key)
        self._tombstones.pop(key, None)
        if appended.changes:
            self._append(key, appended)
        if current is None:
            self._size += 1
            while self._size > self.max_size:
                self._evict()
                _evicted(self.max_size)

    def _evict(self) -> None:
        """Drop the least recently used session of the platform that holds the most."""
        platform, records = max(self._platforms.items(), key=lambda item: len(item[1]))
        evicted, (_, data) = records.popitem(last=False)
        self._logs.pop(evicted, None)
        self._bury(loads(data))
        self._size -= 1
        if not records:
            del self._platforms[platform]

    def _bury(self, record: dict[str, Any]) -> None:
        """Keep what dedupe needs of an evicted session: an expired record with its handled ids."""
        handled = (record.get("parts") or {}).get("dedupe")
        if not handled:
            return
        tombstone = {"version": record["version"], "key": key_of(record), "created_at": record["created_at"],
                     "last_activity": record["last_activity"], "expires_at": 0.0, "state": {},
                     "parts": {"dedupe": handled, "life": {"ended": record["last_activity"]}}}
        self._tombstones[key_of(record)] = _compact(dumps(tombstone))
        while len(self._tombstones) > TOMBSTONES:
            self._tombstones.popitem(last=False)

    def _append(self, key: str, appended: Appended) -> None:
        kept = None if appended.restart else self._logs.get(key)
        if kept is None:
            kept = self._logs[key] = []
        kept.extend([_compact(dumps(entry)) for entry in appended.entries])
        if len(kept) > appended.limit:
            del kept[: len(kept) - appended.limit]
        if not kept:
            del self._logs[key]

    async def history(self, key: str, limit: int | None = None) -> list[dict[str, Any]]:
        kept: Sequence[bytes] = self._logs.get(key, ())
        if limit is not None:
            kept = kept[-limit:] if limit > 0 else []
        return [loads(entry) for entry in kept]

    async def delete(self, key: str) -> bool:
        self._logs.pop(key, None)
        self._tombstones.pop(key, None)
        records = self._lru(key)
        if records is None or records.pop(key, None) is None:
            return False
        self._size -= 1
        if not records:
            del self._platforms[SessionKey(key).platform]
        return True

    async def keys(self) -> list[str]:
        return [key for records in self._platforms.values() for key in records]

    @property
    def size(self) -> int:
        return self._size


def _evicted(max_size: int) -> None:
    """A conversation was forgotten to make room: say so, the first time in this process."""
    global _eviction_logged
    if not _eviction_logged:
        _eviction_logged = True
        log.warning("memory session store full: the least recently used of %d sessions was forgotten (its "
                    "conversation starts again from initial_state); raise session.stores.memory.max_size, or use "
                    "a shared driver (file, redis, postgres). Logged once per process.", max_size)


def _compact(data: bytes) -> bytes:
    """A copy sized to the record: orjson's own bytes sit in a buffer of at least 4 KiB, ten times a
    small session's record (bench.idle_sessions: 4.3 KB per idle session without the copy)."""
    return bytes(memoryview(data))
