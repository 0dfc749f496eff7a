"""The session envelope: one record per session key, JSON-serialisable, with sliding expiry.

The record holds what every session has (key, version, timestamps, expiry, the user's state) and
*parts*, each owned by one feature: ``flow`` (slug, previous slug, back-to point), ``dedupe`` (the ids of
the events handled within the dedupe window, and when), ``channel`` (its name, the conversation's address,
the channel's own data) and ``history`` (the transcript's counters). The transcript itself is not in the
record: the store keeps it beside the record as an append-only log (docs/sessions.md), read only when
asked for.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from botkit.core.errors import BotkitError
from botkit.core.keys import SessionKey

HANDLED_IDS_KEPT = 500
"""At most this many handled event ids are kept, however recent: past it the oldest are forgotten first."""
DEDUPE_WINDOW = 48 * 3600.0
"""Seconds a handled event id is kept (``session.dedupe_window``)."""
FLOW, DEDUPE, CHANNEL, HISTORY = "flow", "dedupe", "channel", "history"
HANDOFF = "handoff"
"""The part of a conversation a human holds (``context.handoff``): ``reason``, ``since``, ``agent``."""
LIFE = "life"
"""The session's lifecycle part: ``ended`` (when its end ran: the record is a tombstone until a new
session replaces it) and ``start_pending`` (its start hook waits for the first event from the user)."""
LEGACY_BACK_TO = "_back_to"
"""Where releases before the envelope kept the flows' back-to point: in the user's state."""

HistoryReader = Callable[[int], Awaitable[list[dict[str, Any]]]]
"""Reads the last ``n`` entries of a session's stored log."""


class HistoryNotLoaded(BotkitError, LookupError):
    """``session.history`` was read before the stored transcript was: ``await context.history()``."""


@dataclass(slots=True)
class HistoryLog:
    """A session's transcript as this process knows it: the stored entries once read, and the entries of
    this event, which the next save appends to the store's log."""

    pending: list[dict[str, Any]] = field(default_factory=list)
    restart: bool = False
    """True when the stored log is not this session's (a new or expired session, a cleared history,
    a record from before the envelope): nothing is read from it and the next save drops it."""
    stored: list[dict[str, Any]] | None = None
    reader: HistoryReader | None = None
    limit: int = 50
    """Entries kept (``session.history`` in bot.config.py)."""


@dataclass(slots=True)
class Session:
    """A conversation's memory. ``version`` rises by one on every save; a save that finds another
    version in the store is refused, so two writers can never silently overwrite each other.

    ``id``, ``platform``, ``slug``, ``previous_slug``, ``message_count``, ``handled``, ``address``,
    ``channel`` and ``history`` are views over the key and the parts."""

    key: str
    state: dict[str, Any]
    created_at: float
    last_activity: float
    expires_at: float | None = None
    version: int = 0
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: HistoryLog = field(default_factory=HistoryLog, repr=False, compare=False)
    new: bool = field(default=False, repr=False, compare=False)
    """True for a session this event starts (no record, or an expired one): not saved."""
    expired: Session | None = field(default=None, repr=False, compare=False)
    """The expired session this one replaces, when the store still held it: its end may not have run yet."""

    @classmethod
    def fresh(cls, key: str, initial_state: dict[str, Any], now: float, version: int = 0) -> Session:
        """A new session from ``initial_state``; ``version`` continues an expired record's so that the
        conditional save still matches what the store holds. Its history starts empty."""
        return cls(key=key, state=copy.deepcopy(initial_state), created_at=now, last_activity=now, version=version,
                   log=HistoryLog(restart=True), new=True)

    @property
    def ended(self) -> bool:
        """True when this record's end already ran (``context.end_session()`` or the expiry sweep)."""
        return bool(self._get(LIFE, "ended"))

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Session:
        if "parts" not in record:
            return _upgrade(record)
        return cls(
            key=record["key"],
            state=record.get("state") or {},
            created_at=record["created_at"],
            last_activity=record["last_activity"],
            expires_at=record.get("expires_at"),
            version=record.get("version", 0),
            parts=record["parts"],
        )

    def to_record(self) -> dict[str, Any]:
        """The envelope, ``version`` first (the Redis driver reads it without decoding); empty parts left out."""
        return {
            "version": self.version,
            "key": self.key,
            "created_at": self.created_at,
            "last_activity": self.last_activity,
            "expires_at": self.expires_at,
            "state": self.state,
            "parts": {name: part for name, part in self.parts.items() if part},
        }

    # -- parts ----------------------------------------------------------------------------------------

    def part(self, name: str) -> dict[str, Any]:
        """The feature ``name``'s part, created empty when missing (an empty part is not saved)."""
        found = self.parts.get(name)
        if found is None:
            found = self.parts[name] = {}
        return found

    def _get(self, part: str, name: str) -> Any:
        found = self.parts.get(part)
        return None if found is None else found.get(name)

    def _put(self, part: str, name: str, value: Any) -> None:
        if value is None:
            self.part(part).pop(name, None)
        else:
            self.part(part)[name] = value

    @property
    def id(self) -> str:
        return self.key

    @property
    def platform(self) -> str:
        return SessionKey(self.key).platform

    @property
    def slug(self) -> str | None:
        value: str | None = self._get(FLOW, "slug")
        return value

    @slug.setter
    def slug(self, value: str | None) -> None:
        self._put(FLOW, "slug", value)

    @property
    def previous_slug(self) -> str | None:
        value: str | None = self._get(FLOW, "previous_slug")
        return value

    @previous_slug.setter
    def previous_slug(self, value: str | None) -> None:
        self._put(FLOW, "previous_slug", value)

    @property
    def channel(self) -> str | None:
        """The channel the session's last event came through: pushes and scheduled steps go back through it."""
        value: str | None = self._get(CHANNEL, "name")
        return value

    @channel.setter
    def channel(self, value: str | None) -> None:
        self._put(CHANNEL, "name", value)

    @property
    def address(self) -> dict[str, Any] | None:
        """What the channel needs to reach the conversation later."""
        value: dict[str, Any] | None = self._get(CHANNEL, "address")
        return value

    @address.setter
    def address(self, value: dict[str, Any] | None) -> None:
        self._put(CHANNEL, "address", value)

    @property
    def channel_data(self) -> dict[str, Any]:
        """The channel's own data about the conversation, saved with the session."""
        data: dict[str, Any] = self.part(CHANNEL).setdefault("data", {})
        return data

    @property
    def message_count(self) -> int:
        return int(self._get(HISTORY, "message_count") or 0)

    @message_count.setter
    def message_count(self, value: int) -> None:
        self._put(HISTORY, "message_count", value or None)

    @property
    def human(self) -> bool:
        """True while a human holds the conversation (``context.handoff``): the handler does not run."""
        return bool(self.parts.get(HANDOFF))

    @property
    def handoff(self) -> dict[str, Any] | None:
        """The handoff in progress: ``{"reason", "since", "agent"}`` (``agent`` once one claimed it), or None."""
        found = self.parts.get(HANDOFF)
        return dict(found) if found else None

    @property
    def handled(self) -> list[str]:
        ids: list[str] = self.part(DEDUPE).setdefault("handled", [])
        return ids

    # -- expiry and dedupe ----------------------------------------------------------------------------

    def is_expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def touch(self, now: float, expires_in_minutes: float | None) -> None:
        """Slide the expiry: a session lives ``expires_in`` minutes after its last activity."""
        self.last_activity = now
        self.expires_at = None if expires_in_minutes is None else now + expires_in_minutes * 60.0

    def has_handled(self, event_id: str) -> bool:
        handled = self._get(DEDUPE, "handled")
        return handled is not None and event_id in handled

    def mark_handled(self, event_id: str, now: float | None = None, window: float | None = DEDUPE_WINDOW) -> None:
        """Remember ``event_id`` as handled at ``now`` (default: the last activity), forgetting the ids
        handled more than ``window`` seconds before (None: none) and, past ``HANDLED_IDS_KEPT``, the oldest.

        The part holds ``handled`` (the ids, oldest first, as records before the window held them) and
        ``at`` (when each was handled, whole epoch seconds, rounded up). Ids without their times (a
        record of an earlier release) count as handled at the session's last activity."""
        part = self.part(DEDUPE)
        handled: list[str] = part.setdefault("handled", [])
        at = part.get("at")
        if not isinstance(at, list) or len(at) != len(handled):
            at = [math.ceil(self.last_activity)] * len(handled)
        when = self.last_activity if now is None else now
        if window is not None and at and at[0] < when - window:
            kept = [(kept_id, t) for kept_id, t in zip(handled, at, strict=True) if t >= when - window]
            handled[:] = [kept_id for kept_id, _ in kept]
            at = [t for _, t in kept]
        handled.append(event_id)
        at.append(math.ceil(when))
        if len(handled) > HANDLED_IDS_KEPT:
            del handled[: len(handled) - HANDLED_IDS_KEPT]
            del at[: len(at) - HANDLED_IDS_KEPT]
        part["at"] = at

    # -- history --------------------------------------------------------------------------------------

    @property
    def history(self) -> list[dict[str, Any]]:
        """The transcript, oldest first, at most ``session.history`` entries: the stored log, once read
        (``await context.history()`` or ``await session.load_history()`` read it), then this event's
        entries. A copy: change the transcript by sending, or with ``clear_history``."""
        log = self.log
        if log.limit <= 0:
            return []
        if log.restart:
            known = log.pending
        elif log.stored is not None:
            known = log.stored + log.pending
        else:
            raise HistoryNotLoaded(
                f"the history of {self.key} is kept beside the session and read on demand: "
                "use `await context.history()` (docs/sessions.md)")
        return known[-log.limit:]

    async def load_history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The transcript (``history``), reading the stored log first if it was not read yet; the last
        ``limit`` entries when given."""
        log = self.log
        if not log.restart and log.stored is None and log.limit > 0:
            if log.reader is None:
                raise HistoryNotLoaded(f"{self.key} was built without its store; load it through the bot")
            log.stored = await log.reader(log.limit)
        entries = self.history
        return entries if limit is None else entries[-limit:] if limit > 0 else []

    def remember(self, entry: dict[str, Any]) -> None:
        """Add ``entry`` to the transcript: numbered (``seq``), kept for the next save to append."""
        if self.log.limit <= 0:
            return
        part = self.part(HISTORY)
        seq = part["seq"] = int(part.get("seq", 0)) + 1
        pending = self.log.pending
        pending.append({"seq": seq, **entry})
        if len(pending) > self.log.limit:
            del pending[: len(pending) - self.log.limit]

    def clear_history(self) -> None:
        """Start the transcript afresh: the next save drops the stored log."""
        log = self.log
        log.restart, log.stored = True, None
        log.pending.clear()
        self.part(HISTORY).pop("seq", None)


def _upgrade(record: dict[str, Any]) -> Session:
    """A record of the releases before the envelope (flat fields, the transcript inline, the back-to
    point in the state): the same session in the envelope. Its transcript becomes the entries the next
    save writes to the store's log."""
    state = dict(record.get("state") or {})
    back_to = state.pop(LEGACY_BACK_TO, None)
    session = Session(
        key=record["id"],
        state=state,
        created_at=record["created_at"],
        last_activity=record["last_activity"],
        expires_at=record.get("expires_at"),
        version=record.get("version", 0),
        log=HistoryLog(restart=True),
    )
    session.slug = record.get("slug")
    session.previous_slug = record.get("previous_slug")
    session._put(FLOW, "back_to", back_to)
    session.message_count = record.get("message_count") or 0
    if record.get("handled"):
        session.part(DEDUPE)["handled"] = list(record["handled"])
    session.address = record.get("address")
    session.channel = record.get("channel")
    entries = record.get("history") or []
    session.log.pending = [{"seq": seq, **entry} for seq, entry in enumerate(entries, 1)]
    if entries:
        session.part(HISTORY)["seq"] = len(entries)
    return session


def key_of(record: dict[str, Any]) -> str:
    """The session key of a stored record, in the envelope or from before it."""
    key: str = record["key"] if "key" in record else record["id"]
    return key


def dumps(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def loads(data: bytes | str) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(data)
    return record
