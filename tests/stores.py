"""How the conformance suite makes each driver's store. A new driver adds one factory here.

A factory is an async context manager ``(tmp_path, clock) -> store``; it yields an opened store over a
fresh, empty namespace and may call ``pytest.skip`` with the reason when its server is not reachable.
``second`` gives another store over the same namespace, as a second process would have.

Redis and PostgreSQL are expected on 127.0.0.1 (``scripts/services.sh`` starts them); their tests are
skipped with the reason when the server does not answer, and fail instead when ``BOTKIT_REQUIRE_SERVICES=1``
(CI). MongoDB runs only where ``MONGODB_URL`` is set.
"""
from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from botkit.storage.file import FileStore
from botkit.storage.memory import MemoryStore

REDIS_URL = os.environ.get("BOTKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get("BOTKIT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
MONGODB_URL = os.environ.get("MONGODB_URL")


def unique(stem: str) -> str:
    """A namespace no other test (or test run) uses."""
    return f"{stem}{uuid.uuid4().hex[:10]}"


def unreachable(what: str, exc: BaseException) -> None:
    reason = f"{what} is not reachable ({type(exc).__name__}: {exc}); start it with scripts/services.sh"
    if os.environ.get("BOTKIT_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@contextlib.asynccontextmanager
async def memory_store(tmp_path: Path, clock: Callable[[], float] = time.time, **kw: Any) -> AsyncIterator[Any]:
    store = MemoryStore({"max_size": 10_000}, clock=clock, **kw)
    await store.open()
    store.second = None  # one process only
    yield store
    await store.close()


@contextlib.asynccontextmanager
async def file_store(tmp_path: Path, clock: Callable[[], float] = time.time, **kw: Any) -> AsyncIterator[Any]:
    settings = {"dirname": str(tmp_path / "sessions")}
    store = FileStore(settings, clock=clock, **kw)
    await store.open()
    store.second = lambda: FileStore(settings, clock=clock, **kw)
    yield store
    await store.close()


async def redis_keys(url: str, prefix: str) -> list[bytes]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        return [key async for key in client.scan_iter(match=prefix.encode() + b"*", count=1000)]
    finally:
        await client.aclose()


async def drop_redis_prefix(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix.encode() + b"*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def redis_store(tmp_path: Path, clock: Callable[[], float] = time.time, **kw: Any) -> AsyncIterator[Any]:
    from botkit.storage.redis import RedisStore

    settings = {"url": REDIS_URL, "prefix": unique("botkit-test-") + ":"}
    store = RedisStore(settings, clock=clock, **kw)
    try:
        await store.open()
    except Exception as exc:
        unreachable(f"Redis at {REDIS_URL}", exc)
    store.second = lambda: RedisStore(settings, clock=clock, **kw)
    try:
        yield store
    finally:
        await store.close()
        await drop_redis_prefix(REDIS_URL, settings["prefix"])


async def drop_postgres_table(dsn: str, table: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP TABLE IF EXISTS "{table}_history"; DROP TABLE IF EXISTS "{table}"; '
                           f'DROP TABLE IF EXISTS "{table}_counters"; DROP TABLE IF EXISTS "{table}_bot_memory"; '
                           f'DROP TABLE IF EXISTS "{table}_stats"')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def postgres_store(tmp_path: Path, clock: Callable[[], float] = time.time, **kw: Any) -> AsyncIterator[Any]:
    from botkit.storage.postgres import PostgresStore

    settings = {"dsn": POSTGRES_DSN, "table": unique("botkit_test_")}
    store = PostgresStore(settings, clock=clock, **kw)
    try:
        await store.open()
    except Exception as exc:
        unreachable(f"PostgreSQL at {POSTGRES_DSN}", exc)
    store.second = lambda: PostgresStore(settings, clock=clock, **kw)
    try:
        yield store
    finally:
        await store.close()
        await drop_postgres_table(POSTGRES_DSN, settings["table"])


@contextlib.asynccontextmanager
async def postgres_redis_cache_store(tmp_path: Path, clock: Callable[[], float] = time.time, **kw: Any) -> AsyncIterator[Any]:
    """PostgreSQL with a Redis cache in front (``session.cache = "redis"``), each of the test's own."""
    from botkit.storage.cached import CachedStore
    from botkit.storage.postgres import PostgresStore

    pg = {"dsn": POSTGRES_DSN, "table": unique("botkit_test_")}
    cache = {"url": REDIS_URL, "prefix": unique("botkit-test-") + ":"}

    def make() -> Any:
        return CachedStore(PostgresStore(pg, clock=clock, **kw), cache, clock=clock, **kw)

    store = make()
    try:
        await store.open()
    except Exception as exc:
        unreachable(f"PostgreSQL at {POSTGRES_DSN} or Redis at {REDIS_URL}", exc)
    store.second = make
    try:
        yield store
    finally:
        await store.close()
        await drop_postgres_table(POSTGRES_DSN, pg["table"])
        await drop_redis_prefix(REDIS_URL, cache["prefix"])


@contextlib.asynccontextmanager
async def mongo_store(tmp_path: Path, clock: Callable[[], float] = time.time, **kw: Any) -> AsyncIterator[Any]:
    if not MONGODB_URL:
        pytest.skip("MongoDB tests need a server: set MONGODB_URL (e.g. mongodb://127.0.0.1:27017)")
    from pymongo import AsyncMongoClient

    from botkit.storage.mongo import MongoStore

    settings = {"url": MONGODB_URL, "database": unique("botkit_test_"), "collection": "sessions"}
    store = MongoStore(settings, clock=clock, **kw)
    try:
        await store.open()
    except Exception as exc:
        unreachable(f"MongoDB at {MONGODB_URL}", exc)
    store.second = lambda: MongoStore(settings, clock=clock, **kw)
    try:
        yield store
    finally:
        await store.close()
        client: Any = AsyncMongoClient(MONGODB_URL)
        try:
            await client.drop_database(settings["database"])
        finally:
            await client.close()


OLD_RECORD = """{"version": 4, "id": "test:1", "platform": "test", "state": {"count": 4, "_back_to": "shop->thanks"},
 "slug": "email->get_email", "previous_slug": "shop->checkout", "created_at": 1700000000.0,
 "last_activity": 1700000100.0, "expires_at": null, "message_count": 4,
 "history": [{"dir": "in", "type": "text", "text": "hi", "at": 1700000000.0},
             {"dir": "out", "type": "text", "text": "Count: 4", "at": 1700000000.5},
             {"dir": "in", "type": "payload", "payload": "BUY", "at": 1700000100.0}],
 "handled": ["41"], "address": {"chat_id": 1}, "channel": "test"}"""
"""A record as the release before the envelope wrote it (flat fields, the transcript inline, the flows'
back-to point in the state; ``version`` first, as its Redis driver wrote it)."""


FACTORIES: dict[str, Callable[..., Any]] = {
    "memory": memory_store,
    "file": file_store,
    "redis": redis_store,
    "postgres": postgres_store,
    "mongo": mongo_store,
    "postgres+redis-cache": postgres_redis_cache_store,
}


# -- private Redis servers (outages, Unix sockets, Cluster) ------------------------------------------


def free_port(*, cluster_bus: bool = False) -> int:
    """A port nothing listens on; with ``cluster_bus``, port + 10000 (a Cluster node's bus) is free too."""
    import socket

    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if not cluster_bus:
            return port
        if port + 10000 < 65536:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


class PrivateRedis:
    """A redis-server of the test's own on a spare port, durable (every write fsynced to its AOF), so
    that it can be killed and started again with its data, as a crashed and restarted server."""

    def __init__(self, folder: Path, *args: str) -> None:
        import shutil

        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not on PATH; install the redis-server package")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port(cluster_bus="--cluster-enabled" in args)
        self.args = args
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> PrivateRedis:
        import asyncio
        import subprocess

        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                 "--appendfsync", "always", "--dir", str(self.folder), *self.args],
                stdout=log, stderr=subprocess.STDOUT,
            )
        for _ in range(200):
            if await self.answers():
                return self
            if self.process.poll() is not None:
                raise RuntimeError((self.folder / "redis.log").read_text())
            await asyncio.sleep(0.025)
        raise RuntimeError(f"redis-server on port {self.port} did not come up")

    async def answers(self) -> bool:
        import redis.asyncio as aioredis

        client = aioredis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5)
        try:
            return bool(await client.ping())
        except Exception:
            return False
        finally:
            await client.aclose()

    def kill(self) -> None:
        """Stop it hard (SIGKILL), as a crash or a pulled cable would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None


# -- a bot folder on disk, for `botkit` run as a subprocess ------------------------------------------

COUNTER_BOT = '''
async def app(context):
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")
'''


def bot_folder(folder: Path, **settings: Any) -> Path:
    """Write bot.py (the counter) and a bot.config.py defining ``settings``; return the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bot.py").write_text(COUNTER_BOT)
    from tests.support import with_test_defaults

    settings = with_test_defaults(dict(settings))
    settings.setdefault("initial_state", {"count": 0})
    lines = ['app = "bot:app"'] + [f"{name} = {value!r}" for name, value in settings.items()]
    config = folder / "bot.config.py"
    config.write_text("\n".join(lines) + "\n")
    return config


def run_cli(*args: str, timeout: float = 30) -> Any:
    """``botkit ARGS`` in a subprocess; the CompletedProcess (text stdout/stderr)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "botkit", *args], capture_output=True, text=True, timeout=timeout)


class Clock:
    """A clock a test can move: ``clock.now += 3600``."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def bot_on(store: Any, tmp_path: Path, handler: Callable[..., Any] | None = None, **session: Any) -> Any:
    """A bot without channels on ``store``; what the handler sends lands in ``bot.sent``."""

    from tests.support import counter, make_config, test_bot

    config = make_config(tmp_path, session={"driver": getattr(store, "driver", store.name), **session})
    bot = test_bot(config, handler=handler or counter, store=store, channels={}, clock=store.clock)
    bot.sent = []

    from botkit.core.sending import Sender

    class Collect(Sender):
        async def send_text(self, text: str, **options: Any) -> None:
            bot.sent.append(text)

    bot.collect = Collect()
    return bot


def text_event(bot: Any, key: str = "test:1", text: str = "hi", event_id: str | None = None) -> Any:
    """A user's text message to ``bot``'s session ``key``, answered through ``bot.collect``."""
    from botkit.core.events import Event

    return Event("test", "text", key, text=text, id=event_id, channel="test", meta={"sender": bot.collect})
