"""The middleware of human mode (botkit.engine.handoff)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from botkit.core.events import Event, EventType
from botkit.core.keys import shown
from botkit.engine import handoff
from botkit.engine.context import Context
from botkit.engine.handoff import HandoffHost
from botkit.engine.middleware import Handler, Middleware

log = logging.getLogger("botkit.engine.handoff")

HELD = frozenset({"scheduled"})
"""Bot-started event types held in human mode too (beside everything a channel delivers): a due scheduled step."""


def handoff_middleware(host: HandoffHost, clock: Callable[[], float], timeout: float | None) -> Middleware:
    """Human mode (botkit.engine.handoff): while a human holds the session, the handler does not run for
    the events its channel delivers (nor for a due scheduled step); a message is kept in the history (the
    dispatcher recorded it) and handed to ``host`` for the agents. Past ``timeout`` seconds the conversation
    goes back to the bot: the handler gets a ``handback`` event, then the event that came."""

    async def human_mode(context: Context, call_next: Handler) -> Any:
        session, event = context.session, context.event
        if not session.human or (event.channel is None and event.type not in HELD):
            return await call_next(context)  # what the bot's code or the desk starts: a send, the handback
        if not handoff.expired(session, clock(), timeout):
            if event.is_message:
                entries = session.log.pending
                entry = entries[-1] if entries else {"dir": "in", "type": str(event.type), "text": event.text, "at": clock()}
                context.after_save.append(partial(host.human_message, session, entry))
            log.info("%s event of %s kept for the human who holds it", event.type, shown(session.id))
            return None
        handoff.end(session)
        context.after_save.append(partial(host.handed_back, session, "timeout"))
        came = context.event
        context.event = Event(came.platform, EventType.HANDBACK, came.session_key, data={"by": "timeout"},
                              channel=came.channel, address=came.address)
        try:
            await call_next(context)
        finally:
            context.event = came
        return await call_next(context)

    return human_mode
