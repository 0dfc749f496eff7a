"""The context with Stealth-style flow moves: ``step_to``, ``step_back``, scheduled steps."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import botkit.flows.steps as scheduled
from botkit.core.errors import BotkitError
from botkit.core.events import Event
from botkit.core.keys import shown
from botkit.core.sending import Sender
from botkit.core.session import FLOW, Session
from botkit.engine.context import Clock, Context, Outreach
from botkit.engine.policy import SessionPolicy
from botkit.flows.router import BACK_TO, Flows, move, target_slug
from botkit.flows.routes import Router
from botkit.flows.steps import PendingStep, schedule_pending, seconds, timestamp
from botkit.storage.bot_memory import BotMemory
from botkit.storage.steps.step import Step

log = logging.getLogger("botkit.flows")

Schedule = Callable[[Step], Awaitable[None]]


class ScheduledSteps(Protocol):
    """The bot's scheduled steps as a handler may see and cancel them (``botkit.engine.scheduler.Scheduler``)."""

    async def pending(self, key: str | None = None) -> list[tuple[float, Step]]: ...

    async def cancel(self, step_ids: list[str]) -> int: ...


class FlowContext(Context):
    """What a handler sees (``botkit.Context``): the engine's context plus the flow moves. Slugs are
    ``"flow->state"``; a flow alone means its first state, a state alone the current flow."""

    def __init__(self, event: Event, session: Session, sender: Sender, *, policy: SessionPolicy, clock: Clock,
                 app: Callable[..., Awaitable[Any]] | None = None, extra: Mapping[str, Any] | None = None,
                 bot: Outreach | None = None, schedule: Schedule | None = None,
                 steps: ScheduledSteps | None = None, bot_memory: BotMemory | None = None) -> None:
        super().__init__(event, session, sender, policy=policy, clock=clock, app=app, extra=extra, bot=bot,
                         bot_memory=bot_memory)
        self.schedule = schedule
        self.steps = steps
        self.flows: Flows | None = None
        """The Flows router running this context, if any (it sets this)."""
        self.pending_steps: list[PendingStep] = []

    async def step_to(self, flow: str | None = None, state: str | None = None) -> None:
        """Move the session to ``flow->state`` (keeping the previous slug) and run that state now."""
        flows = self._router("step_to")
        slug = flows.resolve(flow, state, self.session.slug)
        move(self.session, slug)
        await flows.run(self, slug)

    def update_session_to(self, flow: str | None = None, state: str | None = None) -> None:
        """Move the session to ``flow->state`` without running it: the next event goes there."""
        move(self.session, self._resolve(flow, state))

    async def step_back(self) -> None:
        """Go back to the ``set_back_to`` point (used once), else the previous slug, and run that state; to
        the entry when neither names a state any more (nothing to go back to, or a deploy renamed it)."""
        flows = self._router("step_back")
        session = self.session
        back: str | None = session.part(FLOW).pop(BACK_TO, None)
        if back is None:
            back = session.previous_slug
        if back is None or back not in flows:
            log.info("%s: nothing to step back to (%r); going to the entry %s", shown(session.id), back, flows.entry)
            back = flows.entry
        move(session, back)
        await flows.run(self, back)

    def set_back_to(self, flow: str | None = None, state: str | None = None) -> None:
        """Where the next ``step_back`` returns to (once), e.g. after a shared flow asked its question."""
        self.session.part(FLOW)[BACK_TO] = self._resolve(flow, state)

    async def step_to_in(self, delay: float | timedelta, flow: str | None = None, state: str | None = None,
                         *, unless_moved: bool = False) -> None:
        """After ``delay`` (seconds or a timedelta), move the session to ``flow->state`` and run it, with a
        ``scheduled`` event. ``unless_moved``: drop it if the session no longer stands where this handler
        left it. A step whose session expired first is dropped (docs/flows.md)."""
        self._step_later(self.clock() + seconds(delay), flow, state, unless_moved)

    async def step_to_at(self, when: datetime, flow: str | None = None, state: str | None = None,
                         *, unless_moved: bool = False) -> None:
        """``step_to_in`` at an aware datetime; a past one runs at once, a naive one is refused."""
        self._step_later(timestamp(when), flow, state, unless_moved)

    async def cancel_steps(self, flow: str | None = None, state: str | None = None) -> int:
        """Cancel this session's scheduled steps that have not run: every one, or those to ``flow->state``
        (a flow alone: to any of its states; a state alone: in the current flow). Returns how many. Like
        the handler's other changes it holds once the event is saved: a handler that raises cancels nothing."""
        mark = scheduled.cancel_mark(flow, state, self._routing(), self._resolve)
        count = 0
        for wanted in self.pending_steps:
            if not wanted.scheduled and scheduled.covers(mark, wanted.slug):
                wanted.scheduled = True  # asked for by this handler: never scheduled
                count += 1
        found: list[str] = []
        if self.steps is not None:
            found = [step.id for _, step in await self.steps.pending(self.session.id) if scheduled.covers(mark, step.slug)]
        scheduled.mark_cancelled(self.session, mark, self.clock())
        if found and self.steps is not None:
            steps = self.steps
            self.after_save.append(lambda: steps.cancel(found))
        return count + len(found)

    # -- helpers ------------------------------------------------------------------------------------

    def _routing(self) -> Flows | None:
        """The Flows routing this context: the one running it, or the bot's app when it is a Flows (or a
        Router with a Flows among its targets)."""
        if self.flows is not None:
            return self.flows
        if isinstance(self.app, Router):
            return self.app.flows
        return self.app if isinstance(self.app, Flows) else None

    def _router(self, what: str) -> Flows:
        flows = self._routing()
        if flows is None:
            raise BotkitError(f"{what} runs a state, so it needs the Flows router as the app (app = \"bot:flows\")")
        return flows

    def _resolve(self, flow: str | None, state: str | None) -> str:
        """The slug to go to; checked against the flows when there are any, so a typo fails where it is made."""
        flows = self._routing()
        if flows is None:
            return target_slug(flow, state, self.session.slug)
        return flows.resolve(flow, state, self.session.slug)

    def _step_later(self, due: float, flow: str | None, state: str | None, unless_moved: bool) -> None:
        """Remember the step; it is scheduled once the handler's changes are saved, with the slug the
        session then stands at. A handler that raises schedules nothing, as it saves nothing."""
        slug = self._resolve(flow, state)
        expires_in = self.policy.expires_in
        delay = due - self.clock()
        if expires_in is not None and delay > expires_in * 60:
            log.warning(
                "step to %s for %s is due in %.0fs, after session.expires_in (%g min): the session expires first "
                "unless the user writes again, and the step is then dropped (docs/flows.md)",
                slug, shown(self.session.id), delay, expires_in,
            )
        if self.schedule is None:
            raise BotkitError("scheduled steps need a scheduler; this bot runs without one")
        if not self.pending_steps:
            schedule = self.schedule
            self.after_save.append(lambda: schedule_pending(self.session, self.event, self.pending_steps,
                                                            schedule, self.clock()))
        self.pending_steps.append(PendingStep(slug, due, unless_moved))
