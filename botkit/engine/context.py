"""What a handler sees and may do for one event."""
from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from botkit.core.events import Event
from botkit.core.sending import Sender
from botkit.core.session import Session
from botkit.engine.policy import SessionPolicy
from botkit.engine.transcript import remember_milestone, remember_outbound

Clock = Callable[[], float]


class Outreach(Protocol):
    """What a handler may ask of the bot beyond its own conversation (``context.bot``)."""

    async def send_text(self, session_key: str, text: str, **options: Any) -> None: ...

    async def send(self, session_key: str, kind: str, *args: Any, **options: Any) -> None: ...


class Context:
    """Built by the dispatcher for each event. ``state`` is read-only: change it with ``set_state``
    (a shallow merge) or ``reset_state``, so that a handler that raises leaves no half-made change.

    Features add what they offer by subclassing (``botkit.flows.FlowContext`` adds ``step_to`` …);
    the app (``botkit.Bot``) picks the class."""

    def __init__(self, event: Event, session: Session, sender: Sender, *, policy: SessionPolicy,
                 clock: Clock, app: Callable[..., Awaitable[Any]] | None = None,
                 extra: Mapping[str, Any] | None = None, bot: Outreach | None = None) -> None:
        self.event = event
        self.session = session
        self.sender = sender
        self.policy = policy
        self.clock = clock
        self.app = app
        """The bot's handler (the app), for features that route through it."""
        self.extra: Mapping[str, Any] = MappingProxyType(dict(extra or {}))
        """The custom settings of bot.config.py (names the config file defines beyond botkit's own)."""
        self.bot = bot
        """Messages to other sessions: ``await context.bot.send_text(other_key, text)``."""
        self.after_save: list[Callable[[], Awaitable[Any]]] = []
        """Async callables run once the handler's changes are saved; not run when it raises."""
        self.expires_in: float | None = policy.expires_in
        """Minutes of inactivity after which this session expires once saved (``session.expires_in``;
        None: never). A channel's middleware may shorten it: the web chat's anonymous sessions."""
        self.ending = False
        """Set by ``end_session``: the session ends once this event is handled (engine/lifecycle.py)."""
        self.milestones: list[tuple[str, dict[str, Any]]] = []
        """What ``log_event`` recorded during this event, for the session stats."""

    @property
    def platform(self) -> str:
        return self.event.platform

    @property
    def channel(self) -> str | None:
        return self.event.channel or self.session.channel

    @property
    def state(self) -> Mapping[str, Any]:
        return MappingProxyType(self.session.state)

    def set_state(self, patch: Mapping[str, Any]) -> None:
        self.session.state = {**self.session.state, **patch}

    def reset_state(self) -> None:
        self.session.state = copy.deepcopy(dict(self.policy.initial_state))

    async def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The session's transcript, oldest first, both directions, this event's messages included:
        ``{"seq", "dir": "in"/"out", "type", "text"/"payload", "at"}``; the last ``limit`` entries when
        given. The stored part is read from the store on the first call; ``session.history`` then holds it."""
        return await self.session.load_history(limit)

    async def end_session(self) -> None:
        """End the session after this event: the end hook (``on_session_end``) runs with its state and
        history, and the next event starts a new session (``on_session_start``)."""
        self.ending = True

    def log_event(self, name: str, **data: Any) -> None:
        """Record a milestone (``"order_completed"``) in the session's log beside its history and in the
        session stats (``botkit sessions stats``); ``data`` must be JSON."""
        self.milestones.append((name, data))
        remember_milestone(self.session, self.policy, name, data, self.clock())

    async def send_text(self, text: str, **options: Any) -> Any:
        result = await self.sender.send_text(text, **options)
        remember_outbound(self.session, self.policy, "text", text, self.clock())
        return result

    async def send_typing(self, **options: Any) -> Any:
        """Show that the bot is writing (not recorded in the history); a no-op where there is no such thing."""
        return await self.sender.send_typing(**options)

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        """The channel's other sends (``send_image``, ``send_buttons``, …), recorded in the history like
        ``send_text``."""
        if not name.startswith("send_"):
            raise AttributeError(name)
        method = getattr(self.sender, name, None)
        if method is None:
            raise AttributeError(f"the {self.channel or self.platform} channel has no {name}()")

        async def send(*args: Any, **kwargs: Any) -> Any:
            result = await method(*args, **kwargs)
            text = args[0] if args and isinstance(args[0], str) else kwargs.get("text")
            remember_outbound(self.session, self.policy, name[5:], text, self.clock())
            return result

        return send

    # Bottender's names, for users coming from it.
    setState = set_state
    resetState = reset_state
    sendText = send_text
