"""PostgreSQL with a Redis cache in front (``session = {"driver": "postgres", "cache": "redis"}``): reads
hit Redis first, a miss or a flushed Redis restores from the database, no stale cache entry wins a save,
and two `botkit start` workers count exactly while the cache is flushed under them.

"Flushing" here deletes every key under the test's own Redis prefix rather than running FLUSHALL: other
test runs (and other people's bots) share this Redis server, and FLUSHALL would wipe their data too. For
this bot it is the same thing: with the postgres driver, the cache entries are all it keeps in Redis."""
from __future__ import annotations

import asyncio
import textwrap

import orjson
import pytest
import redis.asyncio as aioredis

from botkit.core.errors import ConfigError
from tests.stores import (
    POSTGRES_DSN,
    REDIS_URL,
    bot_on,
    drop_postgres_table,
    drop_redis_prefix,
    postgres_redis_cache_store,
    text_event,
    unique,
)
from tests.support import BotProcess, make_config
from tests.test_telegram import HEADERS, SECRET, TOKEN, update


@pytest.fixture
async def store(tmp_path):
    async with postgres_redis_cache_store(tmp_path) as opened:
        yield opened


@pytest.fixture
async def raw():
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_a_save_writes_the_database_and_the_cache_and_reads_hit_the_cache(store, raw, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=10)
    await bot.dispatch([text_event(bot)])
    cached = orjson.loads(await raw.get(f"{store.redis.prefix}cache:test:1"))
    assert cached["state"] == {"count": 1} and cached == await store.database.load("test:1")
    hits = store.hits
    assert (await store.load("test:1"))["state"] == {"count": 1}
    assert store.hits == hits + 1


async def test_a_flushed_cache_restores_from_the_database(store, raw, tmp_path):
    bot = bot_on(store, tmp_path)
    for _ in range(3):
        await bot.dispatch([text_event(bot)])
    await drop_redis_prefix(REDIS_URL, store.redis.prefix)
    misses = store.misses
    assert (await store.load("test:1"))["state"] == {"count": 3}
    assert store.misses == misses + 1
    assert orjson.loads(await raw.get(f"{store.redis.prefix}cache:test:1"))["version"] == 3, "not put back"
    await bot.dispatch([text_event(bot)])
    assert bot.sent[-1] == "Count: 4"


async def test_a_stale_cache_entry_never_wins_a_save(store, raw, tmp_path):
    bot = bot_on(store, tmp_path)
    await bot.dispatch([text_event(bot)])
    stale = await raw.get(f"{store.redis.prefix}cache:test:1")
    await bot.dispatch([text_event(bot)])
    await raw.set(f"{store.redis.prefix}cache:test:1", stale)  # as if the cache missed the last save
    await bot.dispatch([text_event(bot)])
    assert bot.sent == ["Count: 1", "Count: 2", "Count: 3"], "the leased read is the database's"
    assert orjson.loads(await raw.get(f"{store.redis.prefix}cache:test:1"))["state"] == {"count": 3}


async def test_an_older_record_never_replaces_a_newer_one_in_the_cache(store, raw, tmp_path):
    bot = bot_on(store, tmp_path)
    await bot.dispatch([text_event(bot)])
    old = await store.database.load("test:1")
    await bot.dispatch([text_event(bot)])
    await store._cache(old)  # a refill after a miss that read the database before the last save
    assert orjson.loads(await raw.get(f"{store.redis.prefix}cache:test:1"))["state"] == {"count": 2}


@pytest.mark.parametrize(("session", "setting"), [
    ({"driver": "postgres", "cache": "memcached"}, "session.cache"),
    ({"driver": "redis", "cache": "redis"}, "session.cache"),
    ({"driver": "postgres", "cache": "redis", "stores": {"redis": {"url": "http://x"}}}, "session.stores.redis.url"),
])
def test_cache_mistakes_name_the_setting(session, setting):
    with pytest.raises(ConfigError) as caught:
        make_config(session=session)
    assert caught.value.setting == setting


def test_the_config_builds_a_cached_store():
    from botkit.app.bot import Bot
    from botkit.storage.cached import CachedStore

    config = make_config(session={"driver": "postgres", "cache": "redis",
                                  "stores": {"redis": {"url": REDIS_URL, "prefix": "x:"}}})
    bot = Bot(config, handler=lambda context: None, channels={})
    assert isinstance(bot.store, CachedStore) and bot.store.driver == "postgres"
    assert bot.store.redis.prefix == "x:"


# -- two workers, the cache flushed in the middle -----------------------------------------------------

COUNTER = '''
async def app(context):
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")
'''


async def test_workers_2_count_exactly_with_the_cache_flushed_in_the_middle(fake_api, tmp_path):
    import aiohttp

    table, prefix = unique("botkit_test_"), unique("botkit-test-") + ":"
    folder = tmp_path / "bot"
    folder.mkdir()
    (folder / "bot.py").write_text(COUNTER)
    config = folder / "bot.config.py"
    config.write_text(textwrap.dedent(f"""
        app = "bot:app"
        initial_state = {{"count": 0}}
        session = {{"driver": "postgres", "cache": "redis", "stores": {{
            "postgres": {{"dsn": {POSTGRES_DSN!r}, "table": {table!r}}},
            "redis": {{"url": {REDIS_URL!r}, "prefix": {prefix!r}}}}}}}
        channels = {{"telegram": {{"access_token": {TOKEN!r}, "secret_token": {SECRET!r}, "api_base": {fake_api.url!r}}}}}
        server = {{"shutdown_timeout": 5}}
    """))
    try:
        async with BotProcess(config, "--workers", "2") as bot:
            connector = aiohttp.TCPConnector(force_close=True)  # each request may reach either worker
            async with aiohttp.ClientSession(connector=connector) as http:

                async def post(n: int) -> int:
                    async with http.post(bot.url + "/webhooks/telegram", json=update(n, 7, f"m{n}"), headers=HEADERS) as answer:
                        return answer.status

                assert set(await asyncio.gather(*(post(n) for n in range(1, 21)))) == {200}
                await fake_api.wait_for(20, "sendMessage", timeout=20)
                await drop_redis_prefix(REDIS_URL, prefix)  # FLUSHALL, for this bot (see the module's doc)
                assert set(await asyncio.gather(*(post(n) for n in range(21, 41)))) == {200}
                await fake_api.wait_for(40, "sendMessage", timeout=20)
        counts = sorted(int(call.json["text"].split()[1]) for call in fake_api.calls_to("sendMessage"))
        assert counts == list(range(1, 41)), "a count was lost or doubled"
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            cached = orjson.loads(await client.get(f"{prefix}cache:telegram:7"))
        finally:
            await client.aclose()
        assert cached["state"] == {"count": 40} and cached["version"] == 40
    finally:
        await drop_postgres_table(POSTGRES_DSN, table)
        await drop_postgres_table(POSTGRES_DSN, table + "_inbox_ready")
        await drop_postgres_table(POSTGRES_DSN, table + "_inbox")
        await drop_redis_prefix(REDIS_URL, prefix)

