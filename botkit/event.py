"""The normalised event every adapter produces and every handler reads."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TEXT = "text"
PAYLOAD = "payload"
UNKNOWN = "unknown"


@dataclass(slots=True)
class Event:
    """One thing that happened on a platform, in a shape that is the same for every channel.

    ``type`` is one of ``text``, ``payload``, ``image``, ``audio``, ``video``, ``file``, ``location``,
    ``sticker``, ``follow``, ``unfollow``, ``join``, ``leave``, ``edited``, ``delivery``, ``read``, ``echo``,
    ``status``, ``referral``, ``optin``, ``beacon``, ``account_link``, ``unsend``, ``reaction``, ``invoke``, ``typing``, ``installation``,
    ``deleted``, ``scheduled`` or ``unknown``
    (see docs/channels.md for which channel sends which). ``data`` holds the type's details (``url``, ``latitude``, …);
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
