"""The message kinds every channel sends, as typed objects (``await context.send(Buttons(...))``), and the
one place where the shapes a handler may write a button in become a ``Button``.

A button is ``(title, payload)``, ``{"title", "payload"}``, ``{"title", "url"}`` or a ``Button``; a quick
reply may also be a bare title (its payload is the title). Channels receive ``Button`` and ``Card``
objects only, and render them natively or through the text fallback below.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class Button:
    """Pressing it sends ``payload`` to the bot (a ``payload`` event), or opens ``url``."""

    title: str
    payload: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title:
            raise ValueError(f"a button needs a non-empty title, not {self.title!r}")
        if (self.payload is None) == (self.url is None):
            raise ValueError(f"the button {self.title!r} needs exactly one of payload and url")
        for name in ("payload", "url"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"the button {self.title!r} has an empty or non-string {name}: {value!r}")

    @property
    def is_link(self) -> bool:
        return self.url is not None


ButtonLike: TypeAlias = "Button | tuple[str, str] | Mapping[str, str] | str"
"""What a handler may write a button or quick reply as."""


def as_button(item: ButtonLike | Any) -> Button:
    if isinstance(item, Button):
        return item
    if isinstance(item, str):
        return Button(item, payload=item)
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return Button(item[0], payload=item[1])
    if isinstance(item, Mapping) and "title" in item:
        if "url" in item:
            return Button(item["title"], url=item["url"])
        if "payload" in item:
            return Button(item["title"], payload=item["payload"])
    raise ValueError(f'a button is (title, payload), {{"title", "payload"}} or {{"title", "url"}}, not {item!r}')


def as_buttons(items: Sequence[ButtonLike] | Any) -> tuple[Button, ...]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise ValueError(f"buttons are a list, not {type(items).__name__}")
    flat: list[Any] = []
    for item in items:  # a list of buttons inside the list is a row (Telegram's keyboards); rows are flattened
        flat.extend(item if isinstance(item, list) and not _is_pair(item) else [item])
    return tuple(as_button(item) for item in flat)


MAX_CARD_BUTTONS = 3


def _is_pair(item: list[Any]) -> bool:
    """``["Yes", "YES"]``: a pair that went through JSON (``bot.send`` through the inbox), not a row."""
    return len(item) == 2 and all(isinstance(part, str) for part in item)


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Buttons:
    text: str
    buttons: Sequence[ButtonLike]


@dataclass(frozen=True, slots=True)
class QuickReplies:
    text: str
    replies: Sequence[ButtonLike]


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class File:
    url: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Card:
    """A card: a title, an optional subtitle and image, and up to three buttons on every channel."""

    title: str
    subtitle: str | None = None
    image: str | None = None
    buttons: Sequence[ButtonLike] = ()

    @property
    def button_list(self) -> tuple[Button, ...]:
        return as_buttons(self.buttons)


def as_card(item: Card | Mapping[str, Any]) -> Card:
    """A ``Card``, or the same as a dict (``{"title", "subtitle", "image", "buttons"}``), with its buttons checked."""
    card = item if isinstance(item, Card) else Card(
        title=item["title"], subtitle=item.get("subtitle"), image=item.get("image"), buttons=tuple(item.get("buttons") or ()))
    if not isinstance(card.title, str) or not card.title:
        raise ValueError(f"a card needs a non-empty title, not {card.title!r}")
    buttons = as_buttons(card.buttons)
    if len(buttons) > MAX_CARD_BUTTONS:
        raise ValueError(f"a card holds at most {MAX_CARD_BUTTONS} buttons (Messenger, LINE, WhatsApp), "
                         f"not {len(buttons)}: {card.title!r}")
    return Card(card.title, card.subtitle, card.image, buttons)


@dataclass(frozen=True, slots=True)
class Cards:
    """A carousel: cards side by side where the channel has carousels, one after another elsewhere."""

    cards: Sequence[Card | Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Typing:
    pass


Message: TypeAlias = "Text | Buttons | QuickReplies | Image | File | Card | Cards | Location | Typing"


# -- the text fallback: what a channel without a kind sends instead ------------------------------------

@dataclass(slots=True)
class Numbered:
    """A text listing buttons: postback buttons numbered (``offered``, in order), links written out."""

    text: str
    offered: list[Button] = field(default_factory=list)


def numbered(text: str | None, buttons: Sequence[Button], start: int = 1) -> Numbered:
    lines = [text] if text else []
    offered: list[Button] = []
    for button in buttons:
        if button.url is not None:
            lines.append(f"{button.title}: {button.url}")
        else:
            offered.append(button)
            lines.append(f"{start + len(offered) - 1}. {button.title}")
    return Numbered("\n".join(lines), offered)


def card_lines(card: Card) -> list[str]:
    return [line for line in (card.title, card.subtitle, card.image) if line]


def cards_text(cards: Sequence[Card], start: int = 1) -> Numbered:
    """Cards as one text: each card's title, subtitle and image link, then its buttons, numbered on
    across the cards so that every number names one button."""
    parts: list[str] = []
    offered: list[Button] = []
    for card in cards:
        listed = numbered("\n".join(card_lines(card)), card.button_list, start=start + len(offered))
        parts.append(listed.text)
        offered.extend(listed.offered)
    return Numbered("\n\n".join(parts), offered)


def map_link(latitude: float, longitude: float) -> str:
    return f"https://www.google.com/maps/search/?api=1&query={quote(f'{latitude},{longitude}')}"


def location_text(latitude: float, longitude: float, name: str | None, address: str | None) -> str:
    return "\n".join(line for line in (name, address, map_link(latitude, longitude)) if line)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut (platforms refuse longer titles)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "Button",
    "ButtonLike",
    "Buttons",
    "Card",
    "Cards",
    "File",
    "Image",
    "Location",
    "Message",
    "QuickReplies",
    "Text",
    "Typing",
    "as_button",
    "as_buttons",
    "as_card",
]
