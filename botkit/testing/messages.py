"""What the bot sent, the same on every channel: a ``Message`` with its ``kind``, ``text``, ``buttons`` …,
read back from the platform call (or the web chat's answer) that carried it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("text", "buttons", "quick_replies", "image", "card", "cards", "file", "audio", "video", "sticker",
         "location", "template", "other")
"""Every ``Message.kind``."""


@dataclass(frozen=True, slots=True)
class Button:
    """A button or quick reply as the user sees it. Pressing it sends ``payload`` to the bot, or says
    ``text`` as the user's own message (reply keyboards, LINE message actions, Teams imBack), or opens
    ``url`` (nothing reaches the bot)."""

    title: str
    payload: str | None = None
    url: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Card:
    title: str | None = None
    subtitle: str | None = None
    image: str | None = None
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """One message the bot sent.

    ``kind`` is one of ``KINDS``: ``text``; ``buttons`` and ``quick_replies`` (``text`` with ``buttons``);
    ``image``, ``file``, ``audio``, ``video`` (``url``, and ``text`` for a caption); ``card`` and ``cards``
    (``cards``); ``sticker``, ``location``, ``template`` (a platform template botkit does not read, e.g. a
    Twilio Content API SID); ``other``. ``raw`` is what went to the platform (the message object of the
    call, or the web chat's message); ``to`` the platform's address of the conversation; ``user`` the
    tester's user it went to (None when the bot wrote to a conversation no tester user has).
    """

    kind: str
    text: str | None = None
    buttons: tuple[Button, ...] = ()
    url: str | None = None
    cards: tuple[Card, ...] = ()
    channel: str = ""
    to: str = ""
    user: str | None = None
    id: str | None = None
    at: float = 0.0
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def titles(self) -> list[str]:
        """The titles of the message's buttons (and of its cards' buttons), in order."""
        return [button.title for button in self.all_buttons]

    @property
    def all_buttons(self) -> list[Button]:
        return [*self.buttons, *(button for card in self.cards for button in card.buttons)]

    def __str__(self) -> str:
        shown = self.text if self.text is not None else self.url or ", ".join(card.title or "" for card in self.cards)
        return f"[{self.kind}] {shown}" + (f" ({' | '.join(self.titles)})" if self.titles else "")
