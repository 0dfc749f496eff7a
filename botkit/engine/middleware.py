"""Middleware: code that runs around the handler for every event, ``async def mw(context, call_next)``
(the shape of Bolt's and Starlette's), able to stop an event, time it or enrich the context."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from botkit.engine.context import Context
from botkit.engine.transcript import remember_inbound

Handler = Callable[[Context], Awaitable[Any]]
Middleware = Callable[[Context, Handler], Awaitable[Any]]


def chain(middleware: Sequence[Middleware], handler: Handler) -> Handler:
    """``handler`` wrapped by ``middleware``, the first outermost."""
    wrapped = handler
    for layer in reversed(middleware):
        wrapped = _wrap(layer, wrapped)
    return wrapped


def _wrap(layer: Middleware, inner: Handler) -> Handler:
    async def call(context: Context) -> Any:
        return await layer(context, inner)

    return call


async def record_inbound(context: Context, call_next: Handler) -> Any:
    """The transcript's inbound half: what the user said goes into the session's history, also when a
    later middleware stops the event. The first of every dispatcher's chain."""
    if context.event.is_message:
        remember_inbound(context.session, context.policy, context.event, context.clock())
    return await call_next(context)
