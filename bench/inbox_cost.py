"""What the inbox costs an event against answering after the handler, in one process, per driver: Redis
calls per event (counted in redis-py: exact, whatever the machine does) and this process's CPU per event.

``Bot.accept`` runs the counting bot on ``--events`` events over 1,000 sessions, 64 at a time, first with
``server.ack_within`` None (the handler runs in the webhook's task), then 1.0 (through the inbox), in
alternation for ``--rounds``; the medians are printed. Replies go to a sender that does nothing. Redis
and PostgreSQL are those of the tests (127.0.0.1; a fresh prefix or table, removed afterwards).

    python -m bench.inbox_cost [--events 8000] [--rounds 3] [--drivers memory,redis]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import statistics
import time
from typing import Any

import redis.asyncio.client as redis_client

from bench.history_save import BenchChannel, _drop, counter, settings_for
from bench.loop import install_uvloop
from botkit import Bot, Event
from botkit.app.config import config_from_mapping
from botkit.storage import SessionStore, driver_class

SESSIONS = 1000
IN_FLIGHT = 64
calls: collections.Counter[str] = collections.Counter()


def count_redis_calls() -> None:
    """Count every command redis-py sends from this process (scripts by their first SHA digits)."""
    sent = redis_client.Redis.execute_command

    async def counting(self: Any, *args: Any, **options: Any) -> Any:
        calls["EVALSHA " + str(args[1])[:6] if args[0] == "EVALSHA" else str(args[0])] += 1
        return await sent(self, *args, **options)

    redis_client.Redis.execute_command = counting  # type: ignore[method-assign]


def bot_on(store: SessionStore, ack_within: float | None) -> Bot:
    config = config_from_mapping({"app": counter, "initial_state": {"count": 0}, "server": {"ack_within": ack_within},
                                  "session": {"driver": store.name}})
    bot = Bot(config, handler=counter, store=store, channels={})
    bot.add_channel(BenchChannel(bot))
    return bot


async def one_run(driver: str, ack_within: float | None, events: int) -> tuple[float, float]:
    """(store calls per event, CPU µs per event)."""
    store = driver_class(driver)(settings_for(driver), clock=time.time)
    bot = bot_on(store, ack_within)
    await bot.start()
    try:
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(n: int) -> None:
            async with gate:
                event = Event("bench", "text", f"bench:{n % SESSIONS}", text="hi", id=f"e{n}", channel="bench")
                await bot.accept([event], [])

        await asyncio.gather(*(one(n) for n in range(events // 4)))  # warm up
        await asyncio.sleep(0.2)
        calls.clear()
        cpu = time.process_time()
        await asyncio.gather(*(one(n) for n in range(events // 4, events // 4 + events)))
        cpu = time.process_time() - cpu
        await asyncio.sleep(0.2)  # the worker's last releases
        return sum(calls.values()) / events, cpu / events * 1e6
    finally:
        await _drop(store)
        await bot.stop()


async def measure(drivers: list[str], events: int, rounds: int) -> list[str]:
    lines = ["| driver | Redis calls per event, answer after | through the inbox | CPU µs per event, answer after "
             "| through the inbox | answer-after / inbox (CPU) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for driver in drivers:
        runs: dict[float | None, list[tuple[float, float]]] = {None: [], 1.0: []}
        try:
            for _ in range(rounds):
                for ack_within in runs:
                    runs[ack_within].append(await one_run(driver, ack_within, events))
        except Exception as exc:
            lines.append(f"| {driver} | not measured: {type(exc).__name__}: {exc} | | | | |")
            continue
        after, inbox = ([statistics.median(run[i] for run in runs[key]) for i in (0, 1)] for key in (None, 1.0))
        redis = driver == "redis"
        lines.append(f"| {driver} | {after[0]:.2f} | {inbox[0]:.2f} | {after[1]:.0f} | {inbox[1]:.0f} | "
                     f"{after[1] / inbox[1]:.0%} |" if redis else
                     f"| {driver} | – | – | {after[1]:.0f} | {inbox[1]:.0f} | {after[1] / inbox[1]:.0%} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inbox_cost")
    parser.add_argument("--events", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--drivers", default="memory,redis")
    args = parser.parse_args(argv)
    install_uvloop()
    gc.set_threshold(10_000, 10, 10)  # as botkit.server.tune_gc does
    count_redis_calls()
    print("\n".join(asyncio.run(measure(args.drivers.split(","), args.events, args.rounds))))


if __name__ == "__main__":
    main()
