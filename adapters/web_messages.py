"""What the bot sends on the web channel, as small JSON objects the page (or any client) renders.

``{"type": "text", "text", "at"}``; ``{"type": "quick_replies", "text", "replies": [{"title", "payload"}], "at"}``;
``{"type": "buttons", "text", "buttons": [{"title", "payload"} | {"title", "url"}], "at"}``;
``{"type": "image", "url", "caption"?, "at"}``; ``{"type": "file", "url", "name"?, "at"}``;
``{"type": "card", "title", "subtitle"?, "image"?, "buttons", "at"}``; ``{"type": "cards", "cards": [card …], "at"}``;
``{"type": "location", "latitude", "longitude", "name"?, "address"?, "url" (a map), "text", "at"}``.
``at`` is the send time in seconds since the epoch.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from botkit.adapters.base import Sender
from botkit.core.messages import Button, Card, map_link

Message = dict[str, Any]


class WebSender(Sender):
    """Hands each message to ``deliver``: a list collecting the answer to a chat request, or the open
    pages of a session for a message the bot starts."""

    def __init__(self, deliver: Callable[[Message], Awaitable[None] | None], clock: Callable[[], float]) -> None:
        self.deliver = deliver
        self.clock = clock

    async def _send(self, message: Message) -> Message:
        message["at"] = self.clock()
        delivered = self.deliver(message)
        if delivered is not None:
            await delivered
        return message

    async def send_text(self, text: str, **options: Any) -> Message:
        """Platform options of other channels (``parse_mode``, …) are accepted and ignored."""
        return await self._send({"type": "text", "text": _text(text)})

    async def send_quick_replies(self, text: str, replies: Sequence[Button], **options: Any) -> Message:
        """The page shows them under the message until the user answers."""
        return await self._send({"type": "quick_replies", "text": _text(text), "replies": [_choice(r) for r in replies]})

    async def send_buttons(self, text: str, buttons: Sequence[Button], **options: Any) -> Message:
        """The page wraps buttons to its width."""
        return await self._send({"type": "buttons", "text": _text(text), "buttons": [_choice(b) for b in buttons]})

    async def send_image(self, url: str, caption: str | None = None, **options: Any) -> Message:
        message: Message = {"type": "image", "url": _text(url)}
        if caption is not None:
            message["caption"] = _text(caption)
        return await self._send(message)

    send_photo = send_image

    async def send_file(self, url: str, name: str | None = None, **options: Any) -> Message:
        message: Message = {"type": "file", "url": _text(url)}
        if name is not None:
            message["name"] = _text(name)
        return await self._send(message)

    async def send_card(self, card: Card, **options: Any) -> Message:
        return await self._send({"type": "card", **_card(card)})

    async def send_cards(self, cards: Sequence[Card], **options: Any) -> Message:
        return await self._send({"type": "cards", "cards": [_card(card) for card in cards]})

    async def send_location(self, latitude: float, longitude: float, name: str | None = None,
                            address: str | None = None, **options: Any) -> Message:
        message: Message = {"type": "location", "latitude": latitude, "longitude": longitude,
                            "url": map_link(latitude, longitude), "text": name or address or f"{latitude}, {longitude}"}
        if name is not None:
            message["name"] = _text(name)
        if address is not None:
            message["address"] = _text(address)
        return await self._send(message)

    async def send_typing(self, **options: Any) -> None:
        """The page shows its own indicator while an answer is on its way."""


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _choice(button: Button) -> dict[str, str]:
    if button.url is not None:
        return {"title": button.title, "url": button.url}
    return {"title": button.title, "payload": button.payload or ""}


def _card(card: Card) -> dict[str, Any]:
    shown: dict[str, Any] = {"title": card.title}
    if card.subtitle is not None:
        shown["subtitle"] = card.subtitle
    if card.image is not None:
        shown["image"] = card.image
    shown["buttons"] = [_choice(b) for b in card.button_list]
    return shown
