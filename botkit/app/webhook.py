"""One webhook, transport-free: verify, parse, handle, respond (botkit.shell.server speaks HTTP)."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from botkit.adapters.base import MALFORMED, Adapter
from botkit.core.errors import RequestRejected, StoreUnavailable
from botkit.core.events import Event
from botkit.core.requests import Reply, Request
from botkit.engine.dispatcher import Inband, Outcome
from botkit.observe import scope, tracing

log = logging.getLogger("botkit.adapters")

Dispatch = Callable[[list[Event], Inband], Awaitable[list[Outcome]]]


async def receive(channel: Adapter, request: Request, dispatch: Dispatch) -> Reply:
    """401/403 when verification fails and nothing else runs; 400 for a body that is not the
    platform's; 503 when the session store cannot take the events, so the platform redelivers."""
    scope.bind(channel.name)
    with tracing.span("webhook", {"botkit.channel": channel.name}) as span:
        reply = await _receive(channel, request, dispatch)
        tracing.set_attribute(span, "http.response.status_code", reply.status)
        return reply


async def _receive(channel: Adapter, request: Request, dispatch: Dispatch) -> Reply:
    try:
        with tracing.span("verify"):
            await channel.verify(request)
        with tracing.span("parse"):
            events = channel.parse(request)
    except StoreUnavailable as exc:
        log.error("%s webhook: session store unavailable (%s); answering 503", channel.name, exc)
        return channel.reject(RequestRejected("session store unavailable", 503))
    except RequestRejected as exc:
        log.info("%s webhook rejected (%d): %s", channel.name, exc.status, exc.reason)
        return channel.reject(exc)
    except MALFORMED as exc:  # a verified body of the wrong shape that parse did not foresee
        log.warning("%s webhook rejected (400): malformed body (%s)", channel.name, type(exc).__name__)
        log.debug("%s webhook: the malformed body's error: %s", channel.name, exc)  # it may quote the body
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
