"""``session.rate_limit`` on every channel: a middleware that counts each session's messages in a
one-minute window on a counter the store shares between processes (``SessionStore.incr``), and drops
those over the limit. A dropped message runs no handler and changes nothing in the session, but the
platform still gets its 200 (an error would make it redeliver, and a storm of redeliveries is what the
limit is against); ``session.rate_limit_notice`` is sent once a window, for the first message dropped."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from botkit.core.errors import SkipSave
from botkit.core.keys import shown
from botkit.engine.context import Context
from botkit.engine.middleware import Handler
from botkit.observe import metrics

log = logging.getLogger("botkit.engine.rate_limit")

WINDOW = 60.0
Counter = Callable[[str, float], Awaitable[tuple[int, float]]]
"""``incr(name, window)`` of the store: the hits in the current window and the seconds until it resets."""


class RateLimit:
    """The middleware; ``dropped`` counts the messages it dropped in this process."""

    def __init__(self, limit: int, count: Counter, notice: str | None = None) -> None:
        self.limit = limit
        self.count = count
        self.notice = notice
        self.dropped = 0

    async def __call__(self, context: Context, call_next: Handler) -> Any:
        if not context.event.is_message:
            return await call_next(context)
        key = context.session.id
        try:
            hits, resets_in = await self.count(f"session-rate:{key}", WINDOW)
        except Exception as exc:  # the limit fails open: a message is never lost to a counter
            log.warning("session.rate_limit: counting %s failed (%s: %s); the message is handled",
                        shown(key), type(exc).__name__, exc)
            return await call_next(context)
        if hits <= self.limit:
            return await call_next(context)
        self.dropped += 1
        metrics.count_as(context.event.meta, metrics.RATE_LIMITED)
        if hits == self.limit + 1:
            log.warning("%s is over session.rate_limit (%d messages a minute): its messages are dropped for %.0f s",
                        shown(key), self.limit, resets_in)
            if self.notice:
                try:
                    await context.send_text(self.notice)
                    await context.sender.flush()
                except Exception as exc:
                    log.warning("the rate-limit notice to %s was not sent: %s", shown(key), exc)
        raise SkipSave(f"dropped by session.rate_limit ({hits} messages this minute, {self.limit} allowed); "
                       "the handler did not run")
