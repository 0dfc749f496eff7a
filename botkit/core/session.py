"""The session record: one per session key, JSON-serialisable, with sliding expiry."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import orjson

from botkit.core.keys import SessionKey

HANDLED_IDS_KEPT = 32


@dataclass(slots=True)
class Session:
    """A conversation's memory. ``version`` rises by one on every save; a save that finds another
    version in the store is refused, so two writers can never silently overwrite each other."""

    id: str
    platform: str
    state: dict[str, Any]
    created_at: float
    last_activity: float
    slug: str | None = None
    previous_slug: str | None = None
    expires_at: float | None = None
    message_count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0
    handled: list[str] = field(default_factory=list)
    address: dict[str, Any] | None = None
    channel: str | None = None
    """The channel the session's last event came through: pushes and scheduled steps go back through it."""

    @classmethod
    def fresh(cls, key: str, initial_state: dict[str, Any], now: float, version: int = 0) -> Session:
        """A new session from ``initial_state``; ``version`` continues an expired record's so that the
        conditional save still matches what the store holds."""
        platform = SessionKey(key).platform
        return cls(
            id=key,
            platform=platform,
            state=copy.deepcopy(initial_state),
            created_at=now,
            last_activity=now,
            version=version,
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Session:
        return cls(
            id=record["id"],
            platform=record.get("platform") or SessionKey(record["id"]).platform,
            state=record.get("state") or {},
            created_at=record["created_at"],
            last_activity=record["last_activity"],
            slug=record.get("slug"),
            previous_slug=record.get("previous_slug"),
            expires_at=record.get("expires_at"),
            message_count=record.get("message_count", 0),
            history=record.get("history") or [],
            version=record.get("version", 0),
            handled=record.get("handled") or [],
            address=record.get("address"),
            channel=record.get("channel"),
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platform": self.platform,
            "state": self.state,
            "slug": self.slug,
            "previous_slug": self.previous_slug,
            "created_at": self.created_at,
            "last_activity": self.last_activity,
            "expires_at": self.expires_at,
            "message_count": self.message_count,
            "history": self.history,
            "version": self.version,
            "handled": self.handled,
            "address": self.address,
            "channel": self.channel,
        }

    def is_expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def touch(self, now: float, expires_in_minutes: float | None) -> None:
        """Slide the expiry: a session lives ``expires_in`` minutes after its last activity."""
        self.last_activity = now
        self.expires_at = None if expires_in_minutes is None else now + expires_in_minutes * 60.0

    def remember(self, entry: dict[str, Any], limit: int) -> None:
        history = self.history
        history.append(entry)
        if len(history) > limit:
            del history[: len(history) - limit]

    def has_handled(self, event_id: str) -> bool:
        return event_id in self.handled

    def mark_handled(self, event_id: str) -> None:
        handled = self.handled
        handled.append(event_id)
        if len(handled) > HANDLED_IDS_KEPT:
            del handled[: len(handled) - HANDLED_IDS_KEPT]


def dumps(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def loads(data: bytes | str) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(data)
    return record
