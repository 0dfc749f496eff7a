"""Reads without a lease (the web chat's token check, ``bot.load_session``, the desk): PostgreSQL alone
against PostgreSQL with a Redis cache in front, interleaved, on one process.

    python -m bench.cache_reads [--sessions 200] [--rounds 5] [--concurrency 16]

Prints one JSON object: loads per second and p50/p99 in ms for each store, per round, and their medians.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

import orjson

from bench.scenarios import POSTGRES_DSN, REDIS_URL


async def measure(store: Any, keys: list[str], concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    queue = list(keys)

    async def reader() -> None:
        while queue:
            key = queue.pop()
            started = time.perf_counter()
            assert await store.load(key) is not None
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(reader() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {"loads_per_s": round(len(keys) / elapsed), "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3)}


async def main(sessions: int, rounds: int, concurrency: int) -> dict[str, Any]:
    from botkit.core.session import Session
    from botkit.storage.cached import CachedStore
    from botkit.storage.postgres import PostgresStore

    table, prefix = f"botkit_bench_cache_{uuid.uuid4().hex[:8]}", f"botkit-bench-cache-{uuid.uuid4().hex[:8]}:"
    plain = PostgresStore({"dsn": POSTGRES_DSN, "table": table}, clock=time.time)
    cached = CachedStore(PostgresStore({"dsn": POSTGRES_DSN, "table": table}, clock=time.time),
                         {"url": REDIS_URL, "prefix": prefix}, clock=time.time)
    await plain.open()
    await cached.open()
    try:
        keys = [f"telegram:{n}" for n in range(sessions)]
        for key in keys:
            session = Session.fresh(key, {"count": 3, "name": "a user", "cart": list(range(20))}, time.time())
            session.version = 1
            await cached.save(session.to_record())
        runs: dict[str, list[dict[str, float]]] = {"postgres": [], "postgres+redis-cache": []}
        for _ in range(rounds):
            runs["postgres"].append(await measure(plain, keys * 5, concurrency))
            runs["postgres+redis-cache"].append(await measure(cached, keys * 5, concurrency))
        medians = {name: {field: statistics.median(run[field] for run in found) for field in found[0]}
                   for name, found in runs.items()}
        return {"sessions": sessions, "loads_per_round": sessions * 5, "concurrency": concurrency,
                "rounds": runs, "median": medians, "cache_hits": cached.hits, "cache_misses": cached.misses}
    finally:
        await cached.close()
        await plain.close()
        import asyncpg
        import redis.asyncio as aioredis

        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(f'DROP TABLE IF EXISTS "{table}_history", "{table}", "{table}_counters" CASCADE')
        finally:
            await conn.close()
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            names = [name async for name in client.scan_iter(match=prefix + "*")]
            if names:
                await client.delete(*names)
        finally:
            await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(main(args.sessions, args.rounds, args.concurrency))).decode())
