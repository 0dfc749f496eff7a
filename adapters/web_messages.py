"""What the bot sends on the web channel, as small JSON objects the page (or any client) renders.

``{"type": "text", "text", "at"}``; ``{"type": "quick_replies", "text", "replies": [{"title", "payload"}], "at"}``;
``{"type": "buttons", "text", "buttons": [{"title", "payload"} | {"title", "url"}], "at"}``;
``{"type": "image", "url", "caption"?, "at"}``. ``at`` is the send time in seconds since the epoch.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from botkit.adapters.base import Sender

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

    async def send_quick_replies(self, text: str, replies: list[Any], **options: Any) -> Message:
        """``replies``: strings (title and payload alike), ``(title, payload)`` pairs or
        ``{"title", "payload"}`` dicts. The page shows them under the message until the user answers."""
        return await self._send({"type": "quick_replies", "text": _text(text), "replies": [_choice(r, links=False) for r in replies]})

    async def send_buttons(self, text: str, buttons: list[Any], **options: Any) -> Message:
        """``buttons``: ``(title, payload)`` pairs or ``{"title", "payload"|"url"}`` dicts; a list of them
        is a row (rows are flattened: the page wraps buttons to its width)."""
        flat = [b for item in buttons for b in (item if isinstance(item, list) else [item])]
        return await self._send({"type": "buttons", "text": _text(text), "buttons": [_choice(b, links=True) for b in flat]})

    async def send_image(self, url: str, caption: str | None = None, **options: Any) -> Message:
        message: Message = {"type": "image", "url": _text(url)}
        if caption is not None:
            message["caption"] = _text(caption)
        return await self._send(message)

    send_photo = send_image

    async def send_typing(self, **options: Any) -> None:
        """The page shows its own indicator while an answer is on its way."""


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _choice(item: Any, *, links: bool) -> dict[str, str]:
    if isinstance(item, str):
        return {"title": item, "payload": item}
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return {"title": _text(item[0]), "payload": _text(item[1])}
    if isinstance(item, dict) and isinstance(item.get("title"), str):
        if links and isinstance(item.get("url"), str):
            return {"title": item["title"], "url": item["url"]}
        if isinstance(item.get("payload"), str):
            return {"title": item["title"], "payload": item["payload"]}
    wanted = '{"title", "payload"|"url"}' if links else '{"title", "payload"}'
    raise ValueError(f"a button must be a (title, payload) pair or a {wanted} dict, not {item!r}")
