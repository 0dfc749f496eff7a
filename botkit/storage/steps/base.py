"""The interface every step store implements: where scheduled steps wait until they are due.

A claimed step is *leased*, not removed: its due time moves to the end of the lease, so a process that
dies while running it leaves it to be claimed again once the lease runs out. ``done`` removes it.
"""
from __future__ import annotations

import abc
from typing import ClassVar

from botkit.storage.steps.step import Step


class StepStore(abc.ABC):
    shared: ClassVar[bool] = False
    """True when other processes add and claim steps in the same store (so the scheduler polls it)."""
    durable: ClassVar[bool] = False
    """True when steps survive a restart of the bot."""

    async def open(self) -> None:
        """Connect; called when the bot starts."""

    async def close(self) -> None:
        """Disconnect; called when the bot stops."""

    @abc.abstractmethod
    async def add(self, step: Step) -> bool:
        """Keep ``step`` until it is due; False (and nothing changed) if a step with its id is kept already,
        so an event handled twice schedules its steps once."""

    @abc.abstractmethod
    async def claim(self, now: float, lease_until: float, limit: int) -> tuple[list[Step], float | None]:
        """Lease up to ``limit`` steps due at ``now`` (each to one claimer only) until ``lease_until``;
        returns them and the earliest due time still kept, or None when nothing is kept."""

    @abc.abstractmethod
    async def done(self, step_id: str) -> None:
        """Forget a step that ran (or was dropped)."""

    @abc.abstractmethod
    async def retry(self, step_id: str, due: float) -> None:
        """Make a leased step due again at ``due``."""

    @abc.abstractmethod
    async def steps(self) -> list[tuple[float, Step]]:
        """Every kept step with its due time (leased ones at their lease's end), earliest first."""

    async def pending(self, key: str | None = None) -> list[tuple[float, Step]]:
        """The kept steps of session ``key`` (every session's when None), with their due times, earliest first."""
        return [(due, step) for due, step in await self.steps() if key is None or step.key == key]

    async def cancel(self, step_ids: list[str]) -> int:
        """Forget these steps, run or not; how many were still kept. (A driver does it in one go; this
        default, one ``done`` each, serves a new driver until it does.)"""
        kept = {step.id for _, step in await self.steps()}
        gone = [step_id for step_id in set(step_ids) if step_id in kept]
        for step_id in gone:
            await self.done(step_id)
        return len(gone)

    async def count_due_after(self, when: float) -> int:
        return sum(1 for due, _ in await self.steps() if due > when)

    async def count_due_by(self, when: float) -> int:
        """Steps due at ``when`` or before and not run yet (the metrics' ``botkit_scheduled_steps_due``)."""
        return sum(1 for due, _ in await self.steps() if due <= when)
