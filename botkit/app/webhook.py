"""One webhook, transport-free: verify, parse, handle, respond (botkit.shell.server speaks HTTP)."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from botkit.adapters.base import MALFORMED, Adapter
from botkit.core.errors import RequestRejected, StoreUnavailable
from botkit.core.events import Event
from botkit.core.requests import Reply, Request
from botkit.engine.dispatcher import Inband, Outcome

log = logging.getLogger("botkit.adapters")

Dispatch = Callable[[list[Event], Inband], Awaitable[list[Outcome]]]


async def receive(channel: Adapter, request: Request, dispatch: Dispatch) -> Reply:
    """401/403 when verification fails and nothing else runs; 400 for a body that is not the
    platform's; 503 when the session store cannot take the events, so the platform redelivers."""
    try:
        await channel.verify(request)
        events = channel.parse(request)
    except StoreUnavailable as exc:
        log.error("%s webhook: session store unavailable (%s); answering 503", channel.name, exc)
        return channel.reject(RequestRejected("session store unavailable", 503))
    except RequestRejected as exc:
        log.info("%s webhook rejected (%d): %s", channel.name, exc.status, exc.reason)
        return channel.reject(exc)
    except MALFORMED as exc:  # a verified body of the wrong shape that parse did not foresee
        log.warning("%s webhook rejected (400): malformed body (%s: %s)", channel.name, type(exc).__name__, exc)
        return channel.reject(RequestRejected("malformed body", 400))
    for event in events:
        if event.id is not None and not isinstance(event.id, str):
            log.info("%s webhook rejected (400): an event id that is not a string", channel.name)
            return channel.reject(RequestRejected("event id is not a string", 400))
        event.channel = channel.name
    inband: Inband = []
    try:
        outcomes = await dispatch(events, inband)
    except StoreUnavailable as exc:
        log.error("%s webhook: session store unavailable (%s); answering 503 so the platform redelivers",
                  channel.name, exc)
        return channel.reject(RequestRejected("session store unavailable", 503))
    return channel.respond(events, request, inband, outcomes)
