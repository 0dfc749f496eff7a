"""`botkit sessions stats [--since MINUTES] [--json]`: what the store's journal and records say."""
from __future__ import annotations

import json
from typing import Any

from botkit.engine.stats import active_sessions, summarize
from botkit.storage.base import SessionStore
from botkit.storage.journal import journal_for


async def stats(store: SessionStore, now: float, since_minutes: float | None) -> dict[str, Any]:
    journal = journal_for(store)
    await journal.open()
    since = None if since_minutes is None else now - since_minutes * 60
    channels = summarize(await journal.read(since), await active_sessions(store, now))
    return {"driver": store.name, "since": since, "channels": dict(sorted(channels.items()))}


def shown(report: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(report, ensure_ascii=False)
    columns = ("active", "started", "ended", "messages_in", "messages_out", "median_duration_seconds")
    lines = ["channel".ljust(12) + "".join(name.replace("_seconds", " s").replace("_", " ").rjust(15) for name in columns)]
    for channel, row in report["channels"].items():
        lines.append(channel.ljust(12) + "".join(str("-" if row[name] is None else row[name]).rjust(15) for name in columns))
        for name, count in sorted(row["milestones"].items()):
            lines.append(f"  milestone {name}: {count}")
    if report["driver"] == "memory":
        lines.append("(memory driver: sessions and stats live in the bot's own process; this one sees none)")
    return "\n".join(lines)
