"""What one event costs the dispatcher (lease and load, the counting handler, the save) on sessions whose
history holds 0 or 50 entries, per driver: with the history beside the record, the two should match.

Each run prepares ``--sessions`` sessions (one event each on a bot that keeps no history, or 25 events
each on one that keeps 50 entries), then sends one more event to each, one at a time, and divides the
time taken (wall clock, and this process's CPU: steadier on a shared machine). Runs with 0 and 50
entries alternate, so that drift on the machine hits both. Replies go to a sender that does nothing.
Redis and PostgreSQL are those of the tests (127.0.0.1; a fresh prefix or table, removed afterwards);
a row whose server does not answer says so.

    python -m bench.history_save [--sessions 500] [--rounds 3]      # a table on stdout
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Mapping
from typing import Any

from botkit import Bot, Event
from botkit.adapters.base import Adapter, Route
from botkit.app.config import config_from_mapping
from botkit.storage import SessionStore, driver_class

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DRIVERS = ("memory", "redis", "postgres")
HISTORY = 50


class QuietSender:
    async def send_text(self, text: str, **options: Any) -> None:
        return None

    async def flush(self) -> None:
        return None


class BenchChannel(Adapter):
    """A channel with no route whose replies go nowhere."""

    platform = "bench"

    def __init__(self, host: Any) -> None:
        super().__init__("bench", {}, host)

    def routes(self) -> list[Route]:
        return []

    def sender(self, event: Event, inband: list[Any] | None = None) -> Any:
        return QuietSender()

    def push_sender(self, session_key: str, address: Mapping[str, Any] | None) -> Any:
        return QuietSender()


async def counter(context: Any) -> None:
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")


def settings_for(driver: str) -> dict[str, Any]:
    name = f"botkit_bench_h{uuid.uuid4().hex[:8]}"
    settings: dict[str, dict[str, Any]] = {
        "memory": {"max_size": 1_000_000}, "redis": {"url": REDIS_URL, "prefix": name + ":"},
        "postgres": {"dsn": POSTGRES_DSN, "table": name}}
    return settings[driver]


def bot_on(store: SessionStore, history: int) -> Bot:
    config = config_from_mapping({"app": counter, "initial_state": {"count": 0},
                                  "session": {"driver": store.name, "history": history}})
    bot = Bot(config, handler=counter, store=store, channels={})
    bot.add_channel(BenchChannel(bot))
    return bot


async def send(bot: Bot, key: str, seq: int) -> None:
    await bot.dispatcher.handle(Event("bench", "text", key, text=f"message {seq}", id=f"{key}:{seq}", channel="bench"))


async def one_run(driver: str, entries: int, sessions: int) -> tuple[float, float]:
    """Microseconds per event on sessions holding ``entries`` history entries: wall clock, CPU."""
    store = driver_class(driver)(settings_for(driver), clock=time.time)
    await store.open()
    try:
        preparing = bot_on(store, HISTORY if entries else 0)
        keys = [f"bench:{n}" for n in range(sessions)]
        for key in keys:
            for seq in range(max(1, entries // 2)):
                await send(preparing, key, seq)
        measured = bot_on(store, HISTORY)
        for n in range(50):
            await send(measured, f"bench:warm-up:{n}", 0)
        started, cpu = time.perf_counter(), time.process_time()
        for key in keys:
            await send(measured, key, 1000)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        for bot in (preparing, measured):
            await bot.http.close()
        return elapsed / sessions * 1e6, cpu / sessions * 1e6
    finally:
        await _drop(store)
        await store.close()


async def _drop(store: SessionStore) -> None:
    """Remove what the row wrote (its prefix or its tables)."""
    if store.name == "redis":
        client = store.client  # type: ignore[attr-defined]
        keys = [key async for key in client.scan_iter(match=store.settings["prefix"] + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    elif store.name == "postgres":
        table = store.settings["table"]
        async with store.pool.acquire() as conn:  # type: ignore[attr-defined]
            await conn.execute(f'DROP TABLE IF EXISTS "{table}_history", "{table}", "{table}_counters"')


async def measure(sessions: int, rounds: int) -> list[tuple[str, str]]:
    lines = []
    for driver in DRIVERS:
        count = sessions * 4 if driver == "memory" else sessions
        runs: dict[int, list[tuple[float, float]]] = {0: [], HISTORY: []}
        try:
            for _ in range(rounds):
                for entries in runs:
                    runs[entries].append(await one_run(driver, entries, count))
        except Exception as exc:
            lines.append((driver, f"not measured: {type(exc).__name__}: {exc}"))
            continue
        wall = {entries: statistics.median(run[0] for run in found) for entries, found in runs.items()}
        cpu = {entries: statistics.median(run[1] for run in found) for entries, found in runs.items()}
        lines.append((driver, f"{wall[0]:9.0f} {wall[HISTORY]:9.0f} {wall[HISTORY] / wall[0]:7.2f}   "
                              f"{cpu[0]:9.0f} {cpu[HISTORY]:9.0f} {cpu[HISTORY] / cpu[0]:7.2f}"))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history_save")
    parser.add_argument("--sessions", type=int, default=1000, help="sessions per run (four times as many on memory)")
    parser.add_argument("--rounds", type=int, default=5, help="runs per row; the median is shown")
    args = parser.parse_args(argv)
    lines = asyncio.run(measure(args.sessions, args.rounds))
    print(f"µs per event (dispatcher: lease and load, handler, save), median of {args.rounds} runs")
    print(f"{'':10} {'wall clock':^27}   {'CPU of this process':^27}")
    print(f"{'driver':10} {'0 entries':>9} {'50 ent.':>9} {'50 / 0':>7}   {'0 entries':>9} {'50 ent.':>9} {'50 / 0':>7}")
    for driver, figures in lines:
        print(f"{driver:10} {figures}")


if __name__ == "__main__":
    main()
