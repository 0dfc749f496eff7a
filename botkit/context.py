"""What a handler sees and may do for one event."""
from __future__ import annotations

import copy
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from . import flows as _flows
from .event import Event
from .scheduling import steps
from .session import Session

if TYPE_CHECKING:
    from .bot import Bot


class Context:
    """Built by the dispatcher for each event. ``state`` is read-only: change it with ``set_state``
    (a shallow merge) or ``reset_state``, so that a handler that raises leaves no half-made change."""

    def __init__(self, bot: "Bot", event: Event, session: Session, sender: Any) -> None:
        self.bot = bot
        self.event = event
        self.session = session
        self.sender = sender
        self.flows: _flows.Flows | None = None
        """The Flows router running this context, if any (it sets this)."""
        self.pending_steps: list[steps.PendingStep] = []
        self.after_save: list[Callable[[], Awaitable[Any]]] = []
        """Async callables run once the handler's changes are saved; not run when it raises."""

    @property
    def platform(self) -> str:
        return self.event.platform

    @property
    def state(self) -> Mapping[str, Any]:
        return MappingProxyType(self.session.state)

    def set_state(self, patch: Mapping[str, Any]) -> None:
        self.session.state = {**self.session.state, **patch}

    def reset_state(self) -> None:
        self.session.state = copy.deepcopy(self.bot.initial_state)

    async def send_text(self, text: str, **options: Any) -> Any:
        result = await self.sender.send_text(text, **options)
        self.bot.remember_outbound(self.session, "text", text)
        return result

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        """The platform's other sends (``send_image``, ``send_buttons``, ``send_typing``…), recorded in
        the history like ``send_text``."""
        if not name.startswith("send_"):
            raise AttributeError(name)
        method = getattr(self.sender, name, None)
        if method is None:
            raise AttributeError(f"the {self.event.channel or self.platform} channel has no {name}()")

        async def send(*args: Any, **kwargs: Any) -> Any:
            result = await method(*args, **kwargs)
            if name != "send_typing":
                text = args[0] if args and isinstance(args[0], str) else kwargs.get("text")
                self.bot.remember_outbound(self.session, name[5:], text)
            return result

        return send

    # Flows, Stealth style (botkit/flows.py): slugs are "flow->state"; a flow alone means its first state,
    # a state alone the current flow.

    async def step_to(self, flow: str | None = None, state: str | None = None) -> None:
        """Move the session to ``flow->state`` (keeping the previous slug) and run that state now."""
        await _flows.step_to(self, flow, state)

    def update_session_to(self, flow: str | None = None, state: str | None = None) -> None:
        """Move the session to ``flow->state`` without running it: the next event goes there."""
        _flows.update_session_to(self, flow, state)

    async def step_back(self) -> None:
        """Go back to the ``set_back_to`` point, else the previous slug, and run that state."""
        await _flows.step_back(self)

    def set_back_to(self, flow: str | None = None, state: str | None = None) -> None:
        """Where the next ``step_back`` returns to (once), e.g. after a shared flow asked its question."""
        _flows.set_back_to(self, flow, state)

    async def step_to_in(self, delay: float | timedelta, flow: str | None = None, state: str | None = None,
                         *, unless_moved: bool = False) -> None:
        """After ``delay`` (seconds or a timedelta), move the session to ``flow->state`` and run it, with a
        ``scheduled`` event. ``unless_moved``: drop it if the session no longer stands where this handler
        left it. A step whose session expired first is dropped (docs/flows.md)."""
        await steps.step_later(self, self.bot.clock() + steps.seconds(delay), flow, state, unless_moved)

    async def step_to_at(self, when: datetime, flow: str | None = None, state: str | None = None,
                         *, unless_moved: bool = False) -> None:
        """``step_to_in`` at an aware datetime; a past one runs at once, a naive one is refused."""
        await steps.step_later(self, steps.timestamp(when), flow, state, unless_moved)

    # Bottender's names, for users coming from it.
    setState = set_state
    resetState = reset_state
    sendText = send_text
