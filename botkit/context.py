"""What a handler sees and may do for one event."""
from __future__ import annotations

import copy
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from .event import Event
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

    # Bottender's names, for users coming from it.
    setState = set_state
    resetState = reset_state
    sendText = send_text
