"""Human mode: a conversation handed to a human agent (``await context.handoff(reason)``).

The session's ``handoff`` part says a human holds it; while it does, the handoff middleware
(``botkit.engine.human_mode.handoff_middleware``) runs no handler for the conversation's events: they are
only kept in its history and shown to the agents. An agent (or the configured timeout) hands it back; the
handler then gets a ``handback`` event before the next message. What else happens on a handoff (the desk's
list, a platform's own handover) is the app's: ``HandoffHost``.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from botkit.core.session import HANDOFF, Session


@runtime_checkable
class HandoffHost(Protocol):
    """What the bot does when a conversation changes hands (``botkit.Bot`` provides it); each is called
    once the session's change is saved."""

    async def handed_off(self, session: Session) -> None: ...

    async def handed_back(self, session: Session, by: str) -> None: ...

    async def human_message(self, session: Session, entry: dict[str, Any]) -> None: ...


def begin(session: Session, reason: str | None, now: float) -> None:
    """Put ``session`` in human mode (again, if it was: the new reason and time count)."""
    part = session.part(HANDOFF)
    part.clear()
    part.update({"reason": reason, "since": now, "channel": session.channel})


def end(session: Session) -> dict[str, Any] | None:
    """Take ``session`` out of human mode; what the handoff was, or None if it was not in it."""
    return session.parts.pop(HANDOFF, None) or None


def expired(session: Session, now: float, timeout: float | None) -> bool:
    """Whether the handoff of ``session`` waited ``timeout`` seconds (None: it never times out) since it
    began or since its agent last claimed or answered it."""
    part = session.parts.get(HANDOFF)
    if not part or timeout is None:
        return False
    return float(part.get("active_at") or part.get("since") or now) + timeout <= now
