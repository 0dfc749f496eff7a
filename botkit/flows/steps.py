"""Scheduled steps (``step_to_in``/``step_to_at``): checking the time, scheduling once saved, running.

Step ids come from the session key and the event id, so a platform's redelivery of an event does not
schedule twice.
"""
from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from botkit.core.errors import BotkitError, SkipSave, StoreUnavailable
from botkit.core.events import Event
from botkit.core.keys import shown
from botkit.core.session import Session
from botkit.engine.context import Context
from botkit.engine.dispatcher import Outcome
from botkit.flows.router import move
from botkit.storage.steps.step import Step

log = logging.getLogger("botkit.scheduler")


@dataclass(slots=True)
class PendingStep:
    slug: str
    due: float
    unless_moved: bool
    scheduled: bool = False


def seconds(delay: float | timedelta) -> float:
    if isinstance(delay, timedelta):
        return delay.total_seconds()
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay):
        raise TypeError(f"step_to_in takes a delay in seconds (a number) or a timedelta, not {delay!r}")
    return float(delay)


def timestamp(when: datetime) -> float:
    if not isinstance(when, datetime):
        raise TypeError(f"step_to_at takes a datetime, not {type(when).__name__} {when!r}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(
            f"step_to_at needs an aware datetime, and {when.isoformat()} is naive (no tzinfo): it could be any "
            "time zone. Pass e.g. datetime.now(timezone.utc) + timedelta(days=1), or "
            "datetime(2030, 1, 1, 9, tzinfo=ZoneInfo('Europe/Paris'))."
        )
    return when.timestamp()


async def schedule_pending(session: Session, event: Event, pending: list[PendingStep],
                           schedule: Callable[[Step], Awaitable[None]], now: float) -> None:
    """Schedule the steps a handler asked for and that are not scheduled yet."""
    for ordinal, step_wanted in enumerate(pending):
        if step_wanted.scheduled:
            continue
        step = Step(
            id=_step_id(session.id, event.id, ordinal),
            key=session.id,
            slug=step_wanted.slug,
            due=step_wanted.due,
            scheduled_at=now,
            session_created_at=session.created_at,
            from_slug=session.slug,
            unless_moved=step_wanted.unless_moved,
        )
        await schedule(step)
        step_wanted.scheduled = True


def _step_id(session_key: str, event_id: str | None, ordinal: int) -> str:
    if event_id is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{session_key}\n{event_id}\n{ordinal}".encode()).hexdigest()[:32]


class Runner(Protocol):
    """Runs a handler on a session as if an event had come (``botkit.Bot.run``)."""

    def __call__(self, session_key: str, handler: Callable[[Any], Awaitable[Any]], *, event_type: str = ...,
                 data: Mapping[str, Any] | None = ..., event_id: str | None = ...) -> Awaitable[Outcome]: ...


def step_handler(step: Step) -> Callable[[Context], Awaitable[None]]:
    """Move the step's session to its slug and run the app there (the event is a ``scheduled`` one).

    Dropped, with nothing saved, when the session it was scheduled in is gone (expired, deleted: a fresh
    session has another ``created_at``), or, for ``unless_moved`` steps, when the session moved on.
    """

    async def handler(context: Context) -> None:
        session = context.session
        if session.created_at != step.session_created_at:
            raise SkipSave(f"step to {step.slug} for {step.key} dropped: the session it was scheduled in has expired")
        if step.unless_moved and session.slug != step.from_slug:
            raise SkipSave(f"step to {step.slug} for {step.key} dropped: the session moved on from {step.from_slug} to {session.slug}")
        move(session, step.slug)
        if context.app is not None:
            await context.app(context)

    return handler


async def run_step(run: Runner, step: Step) -> None:
    """Run a due step on its session now (``step_handler``), as a ``scheduled`` event."""
    handler = step_handler(step)
    data = {"slug": step.slug, "due_at": step.due, "scheduled_at": step.scheduled_at}
    try:
        await run(step.key, handler, event_type="scheduled", event_id=step.id, data=data)
    except StoreUnavailable:
        raise
    except BotkitError as exc:  # no channel reaches the session (its channel was turned off, say)
        log.warning("step to %s for %s dropped: %s", step.slug, shown(step.key), exc)
