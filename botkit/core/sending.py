"""What the engine needs of a channel's sender: one conversation's outbound path, every message kind.

Each kind has a default here, the documented fallback for a channel that lacks it (docs/messages.md):
buttons and quick replies become a numbered list whose numbers (or titles) come back as the button's
``payload`` event, cards become text with their links, an image or a file a link, a location a map link,
and typing nothing. A channel overrides the kinds it renders natively. Buttons and cards arrive already
checked (``botkit.core.messages``): channels never see the shapes a handler wrote them in.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botkit.core import choices
from botkit.core.messages import Button, Card, cards_text, location_text, numbered
from botkit.core.session import Session


class Sender:
    """Sends to one conversation. A sender that batches (LINE's reply token takes five messages in one
    call) overrides ``flush``: the engine awaits it once the handler returns. Platform extras are other
    ``send_<name>`` methods of the channel's sender (``context.send_native(name, …)`` reaches them)."""

    session: Session | None = None
    """The conversation's session, set by the context before each send: where a numbered list's offer
    and a long payload are kept (``botkit.core.choices``)."""

    async def send_text(self, text: str, **options: Any) -> Any:
        raise NotImplementedError

    async def send_buttons(self, text: str, buttons: Sequence[Button], **options: Any) -> Any:
        listed = numbered(text, buttons, choices.next_number(self.session))
        choices.offer(self.session, listed.offered)
        return await self.send_text(listed.text, **options)

    async def send_quick_replies(self, text: str, replies: Sequence[Button], **options: Any) -> Any:
        return await self.send_buttons(text, replies, **options)

    async def send_image(self, url: str, caption: str | None = None, **options: Any) -> Any:
        return await self.send_text(f"{caption}\n{url}" if caption else url, **options)

    async def send_file(self, url: str, name: str | None = None, **options: Any) -> Any:
        return await self.send_text(f"{name}: {url}" if name else url, **options)

    async def send_card(self, card: Card, **options: Any) -> Any:
        return await self.send_cards([card], **options)

    async def send_cards(self, cards: Sequence[Card], **options: Any) -> Any:
        listed = cards_text(cards, choices.next_number(self.session))
        choices.offer(self.session, listed.offered)
        return await self.send_text(listed.text, **options)

    async def send_location(self, latitude: float, longitude: float, name: str | None = None,
                            address: str | None = None, **options: Any) -> Any:
        return await self.send_text(location_text(latitude, longitude, name, address), **options)

    async def send_typing(self, **options: Any) -> Any:
        """Show that the bot is writing; nothing where the platform has no such thing."""
        return None

    async def api(self, method: str, payload: Any = None, *, verb: str = "POST") -> Any:
        """A platform call the channel does not wrap (``context.api``), with its auth; channels that have
        an API override it."""
        raise NotImplementedError(f"{type(self).__name__} offers no platform API calls")

    def fit_payload(self, payload: str, max_bytes: int) -> str:
        """``payload``, or a token kept for it in the session when it is longer than the platform takes
        (the press comes back with the payload itself)."""
        if len(payload.encode()) <= max_bytes and not payload.startswith(choices.TOKEN_PREFIX):
            return payload
        return choices.keep(self.session, payload)

    async def flush(self) -> None:
        """Deliver what the sender holds back."""
        return None
