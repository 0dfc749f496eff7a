"""``step_to_in`` and ``step_to_at`` as a handler sees them: check the time, remember the step, schedule it.

A step is scheduled once the handler's changes are saved, with the slug the session then stands at; a
handler that raises schedules nothing, as it saves nothing. Step ids come from
the session key and the event id, so a platform's redelivery of an event does not schedule twice.
"""
from __future__ import annotations

import hashlib
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..flows import resolve
from .step import Step

if TYPE_CHECKING:
    from ..context import Context

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


async def step_later(context: "Context", due: float, flow: str | None, state: str | None, unless_moved: bool) -> None:
    slug = resolve(context, flow, state)
    bot = context.bot
    delay = due - bot.clock()
    if bot.expires_in is not None and delay > bot.expires_in * 60:
        log.warning(
            "step to %s for %s is due in %.0fs, after session.expires_in (%g min): the session expires first "
            "unless the user writes again, and the step is then dropped (docs/flows.md)",
            slug, context.session.id, delay, bot.expires_in,
        )
    if not context.pending_steps:
        context.after_save.append(lambda: flush(context))
    context.pending_steps.append(PendingStep(slug, due, unless_moved))


async def flush(context: "Context") -> None:
    """Schedule the steps the handler asked for and that are not scheduled yet."""
    session, event, bot = context.session, context.event, context.bot
    for ordinal, pending in enumerate(context.pending_steps):
        if pending.scheduled:
            continue
        step = Step(
            id=_step_id(session.id, event.id, ordinal),
            key=session.id,
            slug=pending.slug,
            due=pending.due,
            scheduled_at=bot.clock(),
            session_created_at=session.created_at,
            from_slug=session.slug,
            unless_moved=pending.unless_moved,
        )
        await bot.scheduler.add(step)
        pending.scheduled = True


def _step_id(session_key: str, event_id: str | None, ordinal: int) -> str:
    if event_id is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{session_key}\n{event_id}\n{ordinal}".encode()).hexdigest()[:32]
