"""The one interface every inbox implements, and the conformance suite's contract.

- ``put`` stores a webhook's events durably (all or none) and marks their sessions ready;
- ``claim`` leases up to ``limit`` ready sessions to one owner until ``lease_until`` and returns each
  with its waiting entries, oldest first; a leased session is not claimed by anyone else meanwhile;
- the owner handles the entries in order and ``ack``s each; ``extend`` keeps a long handler's lease;
- ``release`` ends the lease: the session is ready again (at ``ready_at``) if entries remain or came
  meanwhile, and forgotten otherwise;
- an owner that dies leaves its leases to run out; the next claimer gets the unacknowledged entries
  again (the engine's dedupe, saved with the session, makes a handled one a duplicate).
"""
from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    """Store-assigned; orders the entries of a session."""
    key: str
    event: dict[str, Any]
    enqueued_at: float
    origin: str | None = None
    """The process whose webhook may still wait for this entry (its in-band answer)."""


@dataclass(frozen=True, slots=True)
class Claim:
    key: str
    entries: list[Entry]
    token: Any = None
    """What the store needs at ``release`` to tell whether entries came after the claim."""


@dataclass(frozen=True, slots=True)
class InboxStats:
    depth: int
    """Entries waiting or being handled."""
    oldest: float | None
    """When the oldest of them was stored (None when empty)."""


class Inbox(abc.ABC):
    shared: ClassVar[bool] = False
    """True when several processes put and claim through it."""
    durable: ClassVar[bool] = False
    """True when entries outlive the process."""
    poll: ClassVar[float | None] = None
    """Seconds at most between looks when nothing wakes the claim loop (an inbox other processes write
    without telling: the file journal, MongoDB); None: as long as the caller is willing to wait."""
    wake_topic: ClassVar[str] = "inbox"
    """The live-bus topic a shared inbox's puts and releases are announced on (the Bot wires it)."""

    def __init__(self) -> None:
        self._woken = asyncio.Event()

    def notify(self) -> None:
        """Something may be ready to claim: wake this process's claim loop."""
        self._woken.set()

    async def open(self) -> None:
        """Connect; called once at start-up."""

    async def close(self) -> None:
        """Disconnect; called once at shutdown."""

    @abc.abstractmethod
    async def put(self, items: Sequence[tuple[str, dict[str, Any]]], now: float, origin: str | None = None) -> list[str]:
        """Store ``(session key, event)`` pairs, in order, all or none; returns their entry ids."""

    @abc.abstractmethod
    async def claim(self, owner: str, now: float, lease_until: float, limit: int) -> list[Claim]:
        """Lease up to ``limit`` sessions that are ready at ``now``, with their entries."""

    @abc.abstractmethod
    async def ack(self, key: str, entry_id: str) -> None:
        """Forget a handled entry."""

    @abc.abstractmethod
    async def extend(self, owner: str, keys: Sequence[str], lease_until: float) -> None:
        """Push the leases ``owner`` holds on ``keys`` to ``lease_until``."""

    @abc.abstractmethod
    async def release(self, owner: str, claim: Claim, ready_at: float) -> None:
        """End ``owner``'s lease on the claim's session: ready again at ``ready_at`` if entries remain."""

    @abc.abstractmethod
    async def stats(self) -> InboxStats:
        """Depth and the age of the oldest waiting entry."""

    async def wait(self, seconds: float) -> None:
        """Return when something may be ready (a put or a release here, or one announced on the live bus),
        or after ``seconds`` (at most ``poll``)."""
        try:
            async with asyncio.timeout(seconds if self.poll is None else min(seconds, self.poll)):
                await self._woken.wait()
        except TimeoutError:
            pass
        self._woken.clear()
