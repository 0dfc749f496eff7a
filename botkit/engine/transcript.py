"""The session's transcript: what came in and what went out, for the handler and the history API.

An event's entries are collected on the session (``Session.remember``) and handed to the store with the
save (``appended``), which appends them to the session's history log: a save never re-encodes the
transcript. The log is read only when asked for (``context.history()``, the history API).
"""
from __future__ import annotations

from functools import partial
from typing import Any

from botkit.core.events import Event
from botkit.core.session import Session
from botkit.engine.policy import SessionPolicy
from botkit.storage.base import NOTHING, Appended, SessionStore


def attach(session: Session, store: SessionStore, limit: int) -> Session:
    """Let ``session`` read its history from ``store`` on demand, keeping ``limit`` entries."""
    session.log.reader = partial(store.history, session.key)
    session.log.limit = limit
    return session


def appended(session: Session) -> Appended:
    """What the save of ``session`` adds to its history log."""
    log = session.log
    if not log.pending and not log.restart:
        return NOTHING
    return Appended(log.pending[-log.limit:] if log.limit > 0 else (), log.limit, log.restart)


def remember_inbound(session: Session, policy: SessionPolicy, event: Event, now: float) -> None:
    if policy.history:
        entry: dict[str, Any] = {"dir": "in", "type": str(event.type), "at": now}
        if event.text is not None:
            entry["text"] = event.text
        elif event.payload is not None:
            entry["payload"] = event.payload
        session.remember(entry)


def remember_outbound(session: Session, policy: SessionPolicy, kind: str, text: str | None, now: float) -> None:
    if policy.history:
        entry: dict[str, Any] = {"dir": "out", "type": kind, "at": now}
        if text is not None:
            entry["text"] = text
        session.remember(entry)


def remember_milestone(session: Session, policy: SessionPolicy, name: str, data: dict[str, Any], now: float) -> None:
    """A milestone (``context.log_event``) in the session's log: ``{"dir": "log", "type": "milestone",
    "text": name, "payload": data}``; chat pages and the message counts skip ``dir`` "log"."""
    if policy.history:
        entry: dict[str, Any] = {"dir": "log", "type": "milestone", "text": name, "at": now}
        if data:
            entry["payload"] = data
        session.remember(entry)
