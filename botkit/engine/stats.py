"""``botkit sessions stats``: the journal's entries (storage/journal.py) added up per channel."""
from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from botkit.core.keys import is_conversation
from botkit.core.session import Session
from botkit.storage.base import SessionStore


def summarize(entries: Iterable[Mapping[str, Any]], active: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Per channel: live sessions now (``active``), sessions started and ended, messages in and out,
    the median duration of the sessions that ended (seconds; None when none did), milestones by name."""
    channels: dict[str, dict[str, Any]] = {}
    durations: dict[str, list[float]] = {}

    def of(name: str) -> dict[str, Any]:
        return channels.setdefault(name, {"active": 0, "started": 0, "ended": 0, "messages_in": 0,
                                          "messages_out": 0, "median_duration_seconds": None, "milestones": {}})

    for entry in entries:
        channel, kind = str(entry.get("channel")), entry.get("kind")
        row = of(channel)
        if kind == "start":
            row["started"] += 1
        elif kind == "end":
            row["ended"] += 1
            durations.setdefault(channel, []).append(float(entry.get("value") or 0.0))
        elif kind in ("in", "out"):
            row["messages_" + kind] += int(entry.get("value") or 0)
        elif kind == "milestone":
            name = str(entry.get("name"))
            row["milestones"][name] = row["milestones"].get(name, 0) + 1
    for channel, count in active.items():
        of(channel)["active"] = count
    for channel, found in durations.items():
        channels[channel]["median_duration_seconds"] = round(statistics.median(found), 3)
    return channels


async def active_sessions(store: SessionStore, now: float) -> dict[str, int]:
    """Live sessions per channel (the channel their last event came through), read from every record:
    for the CLI, not for hot paths."""
    counts: dict[str, int] = {}
    for key in await store.keys():
        if not is_conversation(key):
            continue
        record = await store.load(key)
        if record is None:
            continue
        session = Session.from_record(record)
        if session.is_expired(now) or session.ended:
            continue
        channel = session.channel or session.platform
        counts[channel] = counts.get(channel, 0) + 1
    return counts
