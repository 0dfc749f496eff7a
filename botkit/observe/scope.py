"""What the log lines of the work at hand carry: its channel, session key and event id (contextvars, so
each webhook's and each inbox entry's task has its own)."""
from __future__ import annotations

from contextvars import ContextVar

channel: ContextVar[str | None] = ContextVar("botkit_channel", default=None)
session_key: ContextVar[str | None] = ContextVar("botkit_session_key", default=None)
event_id: ContextVar[str | None] = ContextVar("botkit_event_id", default=None)


def bind(channel_name: str | None, key: str | None = None, event: str | None = None) -> None:
    """The work from here on in this task is for this channel, session and event."""
    channel.set(channel_name)
    session_key.set(key)
    event_id.set(event)
