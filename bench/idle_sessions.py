"""Bytes per idle session in the memory driver: fill a MemoryStore through the dispatcher, one message
per session, and weigh the process before and after (RSS), then again under tracemalloc.

Each session gets one text event and the counting bot's answer, so it holds ``{"count": 1}`` and two
history entries (the message and the reply), as an idle user's session does after saying hello once.

    python -m bench.idle_sessions [--sessions 100000]     # one JSON object on stdout
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tracemalloc
from typing import Any

import orjson

from bench.loop import install_uvloop
from bench.procs import status_kib
from botkit import Bot, Event
from botkit.app.config import config_from_mapping

FIRST_CHAT_ID = 100_000_000


class QuietSender:
    """Stands in for the platform: a send that costs nothing and keeps nothing."""

    async def send_text(self, text: str, **options: Any) -> None:
        return None


async def counter(context: Any) -> None:
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")


def make_bot(sessions: int) -> Bot:
    config = config_from_mapping({
        "app": counter,
        "initial_state": {"count": 0},
        "session": {"driver": "memory", "stores": {"memory": {"max_size": sessions}}},
    })
    return Bot(config, channels={})


async def fill(bot: Bot, sessions: int) -> None:
    sender = QuietSender()
    for n in range(sessions):
        chat = FIRST_CHAT_ID + n
        event = Event("telegram", "text", f"telegram:{chat}", user_id=str(chat), text="hello",
                      id=str(n + 1), meta={"sender": sender})
        await bot.dispatcher.handle(event)
        if n % 100 == 99:
            await asyncio.sleep(0)  # let the loop turn, as it does between webhooks, to free cancelled timers
    await asyncio.sleep(0.05)


def rss() -> int:
    gc.collect()
    return status_kib(os.getpid(), "VmRSS") * 1024


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def weigh(sessions: int, *, trace: bool) -> tuple[float, dict[str, Any]]:
    """Bytes the process grew by while ``sessions`` sessions were made, and one of their records."""
    bot = make_bot(sessions)
    await bot.start()
    await fill(bot, 1000)  # every code path and allocator arena warmed before the first weighing
    for key in await bot.store.keys():
        await bot.store.delete(key)
    if trace:
        tracemalloc.start()
    weight = traced if trace else rss
    before = weight()
    await fill(bot, sessions)
    grown = weight() - before
    if trace:
        tracemalloc.stop()
    assert bot.store.size == sessions
    sample = await bot.store.load(f"telegram:{FIRST_CHAT_ID}")
    await bot.stop()
    return grown / sessions, sample


async def measure(sessions: int) -> dict[str, Any]:
    by_rss, sample = await weigh(sessions, trace=False)
    by_tracemalloc, _ = await weigh(sessions, trace=True)
    return {
        "sessions": sessions,
        "bytes_per_session_rss": by_rss,
        "bytes_per_session_traced": by_tracemalloc,
        "record_bytes": len(orjson.dumps(sample)),
        "history_entries": len(sample["history"]),
        "record": sample,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_sessions")
    parser.add_argument("--sessions", type=int, default=100_000)
    args = parser.parse_args(argv)
    install_uvloop()  # as the server: its timers are freed when cancelled, asyncio's linger in the heap
    result = asyncio.run(measure(args.sessions))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")


if __name__ == "__main__":
    main()
