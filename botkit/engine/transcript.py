"""The session's transcript: what came in and what went out, kept for the handler and the history API."""
from __future__ import annotations

from typing import Any

from botkit.core.events import Event
from botkit.core.session import Session
from botkit.engine.policy import SessionPolicy


def remember_inbound(session: Session, policy: SessionPolicy, event: Event, now: float) -> None:
    if policy.history:
        entry: dict[str, Any] = {"dir": "in", "type": str(event.type), "at": now}
        if event.text is not None:
            entry["text"] = event.text
        elif event.payload is not None:
            entry["payload"] = event.payload
        session.remember(entry, policy.history)


def remember_outbound(session: Session, policy: SessionPolicy, kind: str, text: str | None, now: float) -> None:
    if policy.history:
        entry: dict[str, Any] = {"dir": "out", "type": kind, "at": now}
        if text is not None:
            entry["text"] = text
        session.remember(entry, policy.history)
