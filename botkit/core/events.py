"""The normalised event every adapter produces and every handler reads."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botkit.core.keys import SessionKey


class EventType(StrEnum):
    """The normalised event types; a ``str``, so ``event.type == "text"`` reads as before."""

    TEXT = "text"
    PAYLOAD = "payload"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    FILE = "file"
    LOCATION = "location"
    STICKER = "sticker"
    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    JOIN = "join"
    LEAVE = "leave"
    EDITED = "edited"
    DELIVERY = "delivery"
    READ = "read"
    ECHO = "echo"
    STATUS = "status"
    REFERRAL = "referral"
    OPTIN = "optin"
    BEACON = "beacon"
    ACCOUNT_LINK = "account_link"
    UNSEND = "unsend"
    REACTION = "reaction"
    INVOKE = "invoke"
    TYPING = "typing"
    INSTALLATION = "installation"
    DELETED = "deleted"
    SCHEDULED = "scheduled"
    PUSH = "push"
    HANDBACK = "handback"
    """A human agent (or the handoff's timeout) gave the conversation back to the bot (docs/handoff.md)."""
    UNKNOWN = "unknown"


TEXT = EventType.TEXT
PAYLOAD = EventType.PAYLOAD
UNKNOWN = EventType.UNKNOWN


@dataclass(slots=True)
class Event:
    """One thing that happened on a platform, in a shape that is the same for every channel.

    ``type`` is an ``EventType`` value (a channel may also use its own string; docs/channels.md says
    which channel sends which). ``data`` holds the type's details (``url``, ``latitude``, …);
    ``meta`` holds what the adapter needs to answer (reply token, activity id) and is not for handlers;
    ``address`` is what the adapter needs to reach the conversation later, kept in the session.
    """

    platform: str
    type: str
    session_key: str
    user_id: str | None = None
    text: str | None = None
    payload: str | None = None
    id: str | None = None
    timestamp: float | None = None
    raw: Any = None
    data: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    address: dict[str, Any] | None = None
    channel: str | None = None
    """The configured channel the event came through (two channels may serve one platform)."""

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.session_key)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data, to wait in the inbox (``meta`` and ``raw`` must be JSON too)."""
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        return cls(**{name: data[name] for name in FIELDS if name in data})

    @property
    def is_text(self) -> bool:
        return self.type == TEXT

    @property
    def is_payload(self) -> bool:
        return self.type == PAYLOAD

    @property
    def is_message(self) -> bool:
        """True for what a user said or sent (text, payload, media), false for receipts and membership."""
        return self.type in MESSAGE_TYPES


MESSAGE_TYPES = frozenset({"text", "payload", "image", "audio", "video", "file", "location", "sticker"})
"""The types ``is_message`` is true for."""


FIELDS = ("platform", "type", "session_key", "user_id", "text", "payload", "id", "timestamp", "raw", "data", "meta",
          "address", "channel")
