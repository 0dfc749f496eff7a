"""What a handler sees and may do for one event."""
from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from types import MappingProxyType
from typing import Any, Protocol

from botkit.core.events import Event
from botkit.core.messages import (
    ButtonLike,
    Buttons,
    Card,
    Cards,
    File,
    Image,
    Location,
    Message,
    QuickReplies,
    Text,
    Typing,
    as_buttons,
    as_card,
)
from botkit.core.sending import Sender
from botkit.core.session import Session
from botkit.engine import handoff
from botkit.engine.handoff import HandoffHost
from botkit.engine.policy import SessionPolicy
from botkit.engine.transcript import remember_milestone, remember_outbound
from botkit.storage.bot_memory import BotMemory, MemoryBotMemory

Clock = Callable[[], float]
COMMON_KINDS = frozenset({"text", "buttons", "quick_replies", "image", "file", "card", "cards", "location", "typing"})


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
                 extra: Mapping[str, Any] | None = None, bot: Outreach | None = None,
                 bot_memory: BotMemory | None = None) -> None:
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
        self.bot_memory: BotMemory = bot_memory if bot_memory is not None else MemoryBotMemory()
        """Values that outlive sessions, shared by every session (``await context.bot_memory.get(key)``);
        written at once, not rolled back when the handler raises."""
        self.after_save: list[Callable[[], Awaitable[Any]]] = []
        """Async callables run once the handler's changes are saved; not run when it raises."""
        self.expires_in: float | None = policy.expires_in
        """Minutes of inactivity after which this session expires once saved (``session.expires_in``;
        None: never). A channel's middleware may shorten it: the web chat's anonymous sessions."""
        self.match: re.Match[str] | None = None
        """The regex match of the route that took the event (``botkit.Router``), else None."""
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

    # -- sending: every kind on every channel (docs/messages.md) ------------------------------------

    def _out(self) -> Sender:
        self.sender.session = self.session  # where a numbered list's offer and a long payload are kept
        return self.sender

    def _sent(self, kind: str, text: str | None) -> None:
        remember_outbound(self.session, self.policy, kind, text, self.clock())

    async def send_text(self, text: str, **options: Any) -> Any:
        result = await self._out().send_text(text, **options)
        self._sent("text", text)
        return result

    async def send_buttons(self, text: str, buttons: Sequence[ButtonLike], **options: Any) -> Any:
        """``buttons``: ``(title, payload)`` pairs, ``{"title", "payload"}`` or ``{"title", "url"}`` dicts;
        a press comes back as a ``payload`` event."""
        result = await self._out().send_buttons(text, as_buttons(buttons), **options)
        self._sent("buttons", text)
        return result

    async def send_quick_replies(self, text: str, replies: Sequence[ButtonLike], **options: Any) -> Any:
        """``replies``: titles (the payload is the title) or buttons; a tap comes back as a ``payload`` event."""
        result = await self._out().send_quick_replies(text, as_buttons(replies), **options)
        self._sent("quick_replies", text)
        return result

    async def send_image(self, url: str, caption: str | None = None, **options: Any) -> Any:
        result = await self._out().send_image(url, caption, **options)
        self._sent("image", url)
        return result

    async def send_file(self, url: str, name: str | None = None, **options: Any) -> Any:
        result = await self._out().send_file(url, name, **options)
        self._sent("file", url)
        return result

    async def send_card(self, title: str, subtitle: str | None = None, image: str | None = None,
                        buttons: Sequence[ButtonLike] = (), **options: Any) -> Any:
        result = await self._out().send_card(as_card(Card(title, subtitle, image, buttons)), **options)
        self._sent("card", title)
        return result

    async def send_cards(self, cards: Sequence[Card | Mapping[str, Any]], **options: Any) -> Any:
        """A carousel: ``Card`` objects or ``{"title", "subtitle", "image", "buttons"}`` dicts."""
        checked = [as_card(card) for card in cards]
        if not checked:
            raise ValueError("send_cards needs at least one card")
        result = await self._out().send_cards(checked, **options)
        self._sent("cards", checked[0].title)
        return result

    async def send_location(self, latitude: float, longitude: float, name: str | None = None,
                            address: str | None = None, **options: Any) -> Any:
        result = await self._out().send_location(latitude, longitude, name, address, **options)
        self._sent("location", name)
        return result

    async def send_typing(self, **options: Any) -> Any:
        """Show that the bot is writing (not recorded in the history); a no-op where there is no such thing."""
        return await self._out().send_typing(**options)

    async def api(self, method: str, payload: Any = None, *, verb: str = "POST") -> Any:
        """A platform call botkit does not wrap, with the channel's auth, retries and redaction: a Bot API
        method on Telegram, a Graph path on Messenger and WhatsApp Cloud, a path on LINE, a resource of the
        account on Twilio, a connector path on Teams (docs/channels/). ``verb="GET"`` where it applies."""
        return await self._out().api(method, payload, verb=verb)

    async def send(self, message: Message, **options: Any) -> Any:
        """Send a message object (``botkit.Buttons("Size?", [("S", "S")])`` …): for code that builds messages."""
        match message:
            case Text(text):
                return await self.send_text(text, **options)
            case Buttons(text, buttons):
                return await self.send_buttons(text, buttons, **options)
            case QuickReplies(text, replies):
                return await self.send_quick_replies(text, replies, **options)
            case Image(url, caption):
                return await self.send_image(url, caption, **options)
            case File(url, name):
                return await self.send_file(url, name, **options)
            case Card(title, subtitle, image, buttons):
                return await self.send_card(title, subtitle, image, buttons, **options)
            case Cards(cards):
                return await self.send_cards(cards, **options)
            case Location(latitude, longitude, name, address):
                return await self.send_location(latitude, longitude, name, address, **options)
            case Typing():
                return await self.send_typing(**options)
        raise TypeError(f"not a message: {message!r}")

    async def send_native(self, kind: str, *args: Any, **options: Any) -> Any:
        """A kind by name (``"buttons"`` …), or a channel's own send beyond the common kinds:
        ``send_native("sticker", 446, 1988)`` on LINE calls its sender's ``send_sticker``."""
        common = getattr(Context, f"send_{kind}", None)
        if kind in COMMON_KINDS and common is not None:
            return await common(self, *args, **options)
        method = getattr(self._out(), f"send_{kind}", None)
        if method is None:
            raise AttributeError(f"the {self.channel or self.platform} channel has no send_{kind}()")
        result = await method(*args, **options)
        text = args[0] if args and isinstance(args[0], str) else options.get("text")
        self._sent(kind, text if isinstance(text, str) else None)
        return result

    async def handoff(self, reason: str | None = None) -> None:
        """Hand the conversation to a human (docs/handoff.md): from the next event on, the handler does
        not run until an agent, or the desk's timeout, hands it back (a ``handback`` event comes first)."""
        handoff.begin(self.session, reason, self.clock())
        if isinstance(self.bot, HandoffHost):
            self.after_save.append(partial(self.bot.handed_off, self.session))

    # Bottender's names, for users coming from it.
    setState = set_state
    resetState = reset_state
    sendText = send_text
