"""The one interface every session store implements.

A store is asked for a *lease* on a session key (``begin``): the key's record, and, for stores shared
between processes, a lock so that no other process handles an event of that session meanwhile. The
lease ends with ``commit`` (a version-checked save) or ``release`` (nothing saved: the handler raised).
Stores that can do both halves in one round trip (Redis scripts, one SQL transaction) override
``begin``/``commit``; simple stores only implement ``load``/``save``.

Beside each record a store keeps the session's history: an append-only log of transcript entries,
``{"seq", "dir", "type", "text"?, "payload"?, "at"}``, oldest first. A save appends this event's entries
(``Appended``) in the same atomic step as the record where the store can, so that saving never re-encodes
the whole transcript; ``history`` reads the log, and only when a handler or the history API asks.
"""
from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from botkit.core.errors import ConfigError
from botkit.storage.bot_memory import BotMemory, MemoryBotMemory
from botkit.storage.inbox import Inbox, MemoryInbox
from botkit.storage.live import Bus, MemoryBus
from botkit.storage.steps import MemoryStepStore, StepStore


@dataclass(slots=True)
class Lease:
    key: str
    record: dict[str, Any] | None
    token: Any = None

    @property
    def version(self) -> int:
        return 0 if self.record is None else self.record.get("version", 0)


@dataclass(frozen=True, slots=True)
class Appended:
    """What a save adds to the session's history log: with ``restart``, the stored log is dropped first
    (a new session, a cleared history); then ``entries`` (each with a ``seq`` one above the last) are
    appended and the log keeps its last ``limit`` entries. There are never more than ``limit`` entries."""

    entries: Sequence[dict[str, Any]] = ()
    limit: int = 0
    restart: bool = False

    @property
    def changes(self) -> bool:
        return self.restart or bool(self.entries)


NOTHING = Appended()


class SessionStore(abc.ABC):
    """Base of the session drivers. ``settings`` is the driver's block of ``session.stores``."""

    name: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]] = {}
    shared: ClassVar[bool] = False
    """True when several processes can share the store (it then serialises them itself)."""
    in_process: ClassVar[bool] = False
    """True when no call waits on I/O: the dispatcher then arms no timeout around them."""

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        clock: Callable[[], float],
        lock_timeout: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self.settings = {**self.defaults, **settings}
        self.clock = clock
        self.lock_timeout = lock_timeout
        self.timeout = timeout
        """Seconds one store operation may take (connect and read timeouts of a networked store)."""

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> None:
        """Raise ConfigError naming ``session.stores.<name>.<setting>`` for a wrong setting."""
        for key in settings:
            if key not in cls.defaults:
                known = ", ".join(sorted(cls.defaults)) or "none"
                raise ConfigError(f"session.stores.{cls.name}.{key}", f"unknown setting; known: {known}")

    async def open(self) -> None:
        """Connect; called once at start-up."""

    async def close(self) -> None:
        """Disconnect; called once at shutdown."""

    async def begin(self, key: str) -> Lease:
        return Lease(key, await self.load(key))

    async def commit(self, lease: Lease, record: dict[str, Any], appended: Appended = NOTHING) -> None:
        """Save ``record`` and append to its history if the store still holds the version the lease read
        (or nothing), then end the lease. Raises VersionConflict otherwise."""
        await self.save(record, appended)

    async def release(self, lease: Lease) -> None:
        """End a lease without saving."""

    @abc.abstractmethod
    async def load(self, key: str) -> dict[str, Any] | None:
        """The stored record, expired or not (the dispatcher judges expiry), or None."""

    @abc.abstractmethod
    async def save(self, record: dict[str, Any], appended: Appended = NOTHING) -> None:
        """Store ``record`` and append to its history if the stored record is missing or has
        ``record['version'] - 1``; else raise VersionConflict and change nothing."""

    @abc.abstractmethod
    async def history(self, key: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The last ``limit`` entries of the session's history log, oldest first (None: all the log
        holds; the file driver trims only now and then). The log as stored: the caller judges whether
        the session is still live."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove a session and its history; True if there was a session."""

    @abc.abstractmethod
    async def keys(self) -> list[str]:
        """Every stored session key (for `botkit sessions list`; not for hot paths)."""

    keep_expired: float = 0.0
    """Seconds a store that drops expired records itself (a Redis TTL, the PostgreSQL sweep) keeps them
    past their expiry, so that their session's end can still run with them; the bot sets it."""

    async def expired(self, now: float, limit: int = 100) -> list[str]:
        """Keys of sessions expired by ``now`` whose end has not run (``ended`` unset), at most ``limit``.
        This default reads every record (memory, file); shared stores keep an index."""
        found: list[str] = []
        for key in await self.keys():
            record = await self.load(key)
            if record is not None and is_unended_expiry(record, now):
                found.append(key)
                if len(found) >= limit:
                    break
        return found

    async def unlist(self, key: str) -> None:
        """Drop ``key`` from the expiry index: it has nothing to end (any more)."""

    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    def inbox(self) -> Inbox | None:
        """Where webhooks' events wait for their handler, in this store's engine; None: this store has
        none, and webhooks answer once their events are handled (``server.ack_within`` is ignored)."""
        return None if self.shared else MemoryInbox()

    def bus(self) -> Bus:
        """The live bus of the processes sharing this store (this process alone by default)."""
        return MemoryBus()

    def bot_memory(self) -> BotMemory:
        """The bot's memory (values that outlive sessions) in this store's engine; in this process by default."""
        return MemoryBotMemory()

    def step_store(self) -> tuple[StepStore, str | None]:
        """Where this store's scheduled steps wait, and a caveat to log at start-up (if any). By default
        in this process: fine for a store that lives in one process, a loss for a shared one."""
        if not self.shared:
            return MemoryStepStore(), None
        return MemoryStepStore(), (
            f"scheduled steps are kept in this process with the {self.name} driver: a restart loses them, "
            "and each worker runs the steps its own handlers scheduled")

    async def incr(self, name: str, window: float) -> tuple[int, float]:
        """Count one hit on the counter ``name`` in a fixed window of ``window`` seconds: returns the hits
        in the current window and the seconds until it resets. Rate limits use it; a shared store
        overrides it so that every process counts together. This default counts in this process."""
        now = self.clock()
        counters = self.__dict__.setdefault("_counters", {})
        count, resets_at = counters.get(name, (0, 0.0))
        if resets_at <= now:
            count, resets_at = 0, now + window
            if len(counters) > 10_000:
                for stale in [k for k, (_, r) in counters.items() if r <= now]:
                    del counters[stale]
        counters[name] = (count + 1, resets_at)
        return count + 1, resets_at - now


def is_unended_expiry(record: Mapping[str, Any], now: float) -> bool:
    """Whether ``record`` has expired by ``now`` and its end has not run."""
    expires_at = record.get("expires_at")
    if expires_at is None or expires_at > now:
        return False
    life = (record.get("parts") or {}).get("life") or {}
    return not life.get("ended")
