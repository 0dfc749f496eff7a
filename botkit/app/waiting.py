"""Webhooks waiting for their events: the answer-first path's bookkeeping.

A webhook stores its events in the inbox, then waits up to ``ack_within`` for them to be handled, by
this process's worker or another's. Each stored entry gets a ``Waiter`` here; whoever handles the entry
resolves it with the outcome and what the handler sent in-band. A waiter the webhook gave up on is
``expired``: what its handler sends then goes out through the channel's push path instead.

Another process may finish an entry before this one has heard back from its put (the put's reply and the
other worker's notice race): such an early outcome is kept a moment (``EARLY_KEPT`` seconds) and handed to
the waiter when it is added."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from botkit.engine.dispatcher import Outcome

EARLY_KEPT = 30.0
"""Seconds an outcome that came before its waiter is kept."""
EARLY_MAX = 10_000


@dataclass(slots=True)
class Waiter:
    future: asyncio.Future[Outcome]
    inband: list[Any] = field(default_factory=list)
    expired: bool = False


class Waiters:
    def __init__(self) -> None:
        self._waiting: dict[str, Waiter] = {}
        self._early: dict[str, tuple[float, Outcome | BaseException, list[Any]]] = {}

    def add(self, entry_ids: list[str]) -> list[Waiter]:
        loop = asyncio.get_running_loop()
        waiters = [Waiter(loop.create_future()) for _ in entry_ids]
        self._waiting.update(zip(entry_ids, waiters, strict=True))
        for entry_id in entry_ids:
            early = self._early.pop(entry_id, None)
            if early is not None:
                self.resolve(entry_id, early[1], early[2])
        return waiters

    def early(self, entry_id: str, outcome: Outcome | BaseException, inband: list[Any] | None, now: float) -> None:
        """Keep the outcome of an entry whose waiter is not there yet (it may come in a moment)."""
        if len(self._early) >= EARLY_MAX or (self._early and next(iter(self._early.values()))[0] < now - EARLY_KEPT):
            for stale in [key for key, (at, _, _) in self._early.items() if at < now - EARLY_KEPT][:EARLY_MAX]:
                del self._early[stale]
            if len(self._early) >= EARLY_MAX:
                del self._early[next(iter(self._early))]
        self._early[entry_id] = (now, outcome, list(inband or []))

    def pending(self, entry_id: str) -> Waiter | None:
        """The waiter of ``entry_id``, answered or not, until its webhook answers."""
        return self._waiting.get(entry_id)

    def live(self, entry_id: str) -> Waiter | None:
        """The waiter of ``entry_id`` if its webhook still waits."""
        waiter = self._waiting.get(entry_id)
        return None if waiter is None or waiter.expired else waiter

    def resolve(self, entry_id: str, outcome: Outcome | BaseException, inband: list[Any] | None) -> bool:
        """Hand the webhook its entry's outcome; False when it no longer waits (it answered already)."""
        waiter = self.live(entry_id)
        if waiter is None or waiter.future.done():
            return False
        if inband:
            waiter.inband.extend(inband)
        if isinstance(outcome, BaseException):
            waiter.future.set_exception(outcome)
        else:
            waiter.future.set_result(outcome)
        return True

    def expire(self, entry_ids: list[str]) -> None:
        for entry_id in entry_ids:
            waiter = self._waiting.pop(entry_id, None)
            if waiter is not None:
                waiter.expired = True
                if waiter.future.done() and not waiter.future.cancelled():
                    waiter.future.exception()  # retrieved: no "never retrieved" warning

    def __len__(self) -> int:
        return len(self._waiting)
