"""The Redis driver beyond the conformance suite: what a user sees in Redis (the key, its JSON, its
TTL), the CLI on a Redis store, a Unix socket, a Redis Cluster, and settings mistakes."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time

import orjson
import pytest
import redis.asyncio as aioredis

from botkit import ConfigError, StoreUnavailable
from botkit.engine.lifecycle import KEEP_EXPIRED
from botkit.storage.redis import RedisStore
from tests.stores import (
    OLD_RECORD,
    REDIS_URL,
    PrivateRedis,
    bot_folder,
    bot_on,
    free_port,
    redis_store,
    run_cli,
    text_event,
    unique,
)
from tests.support import make_config


@pytest.fixture
async def store(tmp_path):
    async with redis_store(tmp_path) as opened:
        yield opened


@pytest.fixture
async def raw():
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


KEPT = int(KEEP_EXPIRED * 1000)
"""An expiring record outlives its expiry by this (ms) in Redis, for the end sweep (engine/lifecycle.py)."""


async def test_the_record_is_json_under_prefix_session_key_with_the_expiry_as_ttl(store, raw, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=10)
    await bot.dispatch([text_event(bot)])
    name = f"{store.prefix}session:test:1"
    stored = orjson.loads(await raw.get(name))
    assert stored == await store.load("test:1")
    assert stored["state"] == {"count": 1} and stored["version"] == 1
    assert 590_000 + KEPT < await raw.pttl(name) <= 600_000 + KEPT
    assert await raw.zscore(f"{store.prefix}expiring", name) == stored["expires_at"], "not in the expiry index"
    assert await raw.exists(f"{store.prefix}lease:test:1") == 0, "the lease outlived the commit"


async def test_the_history_is_a_list_beside_the_record_with_its_ttl(store, raw, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=10, history=3)
    for text in ("a", "b"):
        await bot.dispatch([text_event(bot, text=text)])
    name = f"{store.prefix}history:test:1"
    items = [orjson.loads(item) for item in await raw.lrange(name, 0, -1)]
    assert [(item["seq"], item["dir"], item.get("text")) for item in items] == [
        (2, "out", "Count: 1"), (3, "in", "b"), (4, "out", "Count: 2")]
    assert 590_000 + KEPT < await raw.pttl(name) <= 600_000 + KEPT
    assert b"Count: 1" not in await raw.get(f"{store.prefix}session:test:1"), "the record holds the transcript"
    assert await store.delete("test:1") is True
    assert await raw.exists(name) == 0


async def test_a_record_of_the_previous_release_is_rewritten_as_an_envelope_with_its_history_beside(store, raw, tmp_path):
    old = orjson.dumps(orjson.loads(OLD_RECORD))  # byte for byte what that release's driver wrote
    await raw.set(f"{store.prefix}session:test:1", old)
    bot = bot_on(store, tmp_path)
    await bot.dispatch([text_event(bot, text="more", event_id="42")])
    stored = await raw.get(f"{store.prefix}session:test:1")
    assert stored.startswith(b'{"version":5,"key":"test:1",')
    record = orjson.loads(stored)
    assert record["state"] == {"count": 5} and record["parts"]["flow"]["back_to"] == "shop->thanks"
    items = [orjson.loads(item) for item in await raw.lrange(f"{store.prefix}history:test:1", 0, -1)]
    assert [item.get("text", item.get("payload")) for item in items] == ["hi", "Count: 4", "BUY", "more", "Count: 5"]


async def test_every_save_refreshes_the_ttl(store, raw, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=10)
    name = f"{store.prefix}session:test:1"
    await bot.dispatch([text_event(bot)])
    await raw.pexpire(name, 5_000)
    await bot.dispatch([text_event(bot)])
    assert await raw.pttl(name) > 590_000 + KEPT


async def test_a_session_that_never_expires_has_no_ttl(store, raw, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=None)
    await bot.dispatch([text_event(bot)])
    assert await raw.pttl(f"{store.prefix}session:test:1") == -1


async def test_an_expired_session_is_gone_from_redis_once_ended_and_starts_afresh(store, raw, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=1 / 60)
    await bot.dispatch([text_event(bot)])
    await bot.dispatch([text_event(bot)])
    await asyncio.sleep(1.2)
    assert await raw.exists(f"{store.prefix}session:test:1") == 1, "gone before its end could run"
    assert await bot.lifecycle.sweep() == 1
    assert await raw.pttl(f"{store.prefix}session:test:1") in (-2, 0, 1), "the ended record lingers"
    await asyncio.sleep(0.01)  # its 1 ms to live
    assert await raw.zcard(f"{store.prefix}expiring") == 0
    assert await store.keys() == []
    await bot.dispatch([text_event(bot)])
    assert bot.sent == ["Count: 1", "Count: 2", "Count: 1"]


async def test_sessions_list_show_delete_on_redis(store, tmp_path):
    config = bot_folder(tmp_path / "bot", session={
        "driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": store.prefix}}})
    bot = bot_on(store, tmp_path)
    for key in ("test:1", "test:2", "line:Uabc"):
        await bot.dispatch([text_event(bot, key)])

    listed = run_cli("sessions", "--config", str(config), "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["line:Uabc", "test:1", "test:2"]
    shown = run_cli("sessions", "--config", str(config), "show", "test:2")
    assert shown.returncode == 0 and json.loads(shown.stdout)["record"]["state"] == {"count": 1}
    assert [entry.get("text") for entry in json.loads(shown.stdout)["history"]] == ["hi", "Count: 1"]
    deleted = run_cli("sessions", "--config", str(config), "delete", "test:2")
    assert deleted.returncode == 0 and "deleted test:2" in deleted.stdout
    assert await store.load("test:2") is None
    missing = run_cli("sessions", "--config", str(config), "show", "test:2")
    assert missing.returncode == 1 and "no session test:2" in missing.stderr


async def test_a_unix_socket_url_works(tmp_path):
    socket_path = tmp_path / "r.sock"
    server = await PrivateRedis(tmp_path / "redis", "--unixsocket", str(socket_path), "--unixsocketperm", "700").start()
    try:
        store = RedisStore({"url": f"unix://{socket_path}?db=0", "prefix": "t:"}, clock=time.time)
        await store.open()
        try:
            bot = bot_on(store, tmp_path)
            await asyncio.gather(*(bot.dispatch([text_event(bot)]) for _ in range(20)))
            assert (await store.load("test:1"))["state"] == {"count": 20}
        finally:
            await store.close()
    finally:
        server.kill()


async def test_an_unreachable_redis_fails_fast_with_store_unavailable():
    store = RedisStore({"url": f"redis://127.0.0.1:{free_port()}/0"}, clock=time.time, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot reach Redis"):
        await store.open()
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("stores, setting", [
    ({"redis": {"url": "http://127.0.0.1:6379"}}, "session.stores.redis.url"),
    ({"redis": {"prefix": 7}}, "session.stores.redis.prefix"),
    ({"redis": {"lease": 0}}, "session.stores.redis.lease"),
    ({"redis": {"cluster": "yes"}}, "session.stores.redis.cluster"),
    ({"redis": {"max_connections": 0}}, "session.stores.redis.max_connections"),
    ({"redis": {"hots": "x"}}, "session.stores.redis.hots"),
])
def test_a_wrong_setting_is_named(stores, setting):
    with pytest.raises(ConfigError) as caught:
        make_config(session={"driver": "redis", "stores": stores})
    assert caught.value.setting == setting


# -- Redis Cluster ---------------------------------------------------------------------------------


@pytest.fixture
async def cluster(tmp_path):
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not on PATH; install the redis-tools package")
    nodes = []
    try:
        for n in range(3):
            folder = tmp_path / f"node{n}"
            nodes.append(await PrivateRedis(folder, "--cluster-enabled", "yes", "--cluster-config-file",
                                            str(folder / "nodes.conf"), "--cluster-node-timeout", "2000").start())
        created = await asyncio.to_thread(subprocess.run, [
            "redis-cli", "--cluster", "create", *(f"127.0.0.1:{node.port}" for node in nodes),
            "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True, timeout=30)
        assert created.returncode == 0, created.stdout + created.stderr
        for node in nodes:
            client = aioredis.Redis(port=node.port)
            for _ in range(200):
                info = await client.cluster("INFO")
                if info.get("cluster_state") == "ok":
                    break
                await asyncio.sleep(0.05)
            await client.aclose()
        yield nodes
    finally:
        for node in nodes:
            node.kill()


async def test_a_redis_cluster_serialises_and_keeps_every_update(cluster, tmp_path):
    settings = {"url": cluster[0].url, "cluster": True, "prefix": unique("c") + ":"}
    first = RedisStore(settings, clock=time.time)
    second = RedisStore(settings, clock=time.time)
    await first.open()
    await second.open()
    try:
        keys = [f"test:{n}" for n in range(12)] + ["web:{brace}", "x}y{z"]
        bots = [bot_on(first, tmp_path), bot_on(second, tmp_path)]
        await asyncio.gather(*(bot.dispatch([text_event(bot, key)]) for key in keys for _ in range(5) for bot in bots))
        for key in keys:
            assert (await first.load(key))["state"] == {"count": 10}, key
        assert sorted(await second.keys()) == sorted(keys)
        assert (await first.incr("n", 5))[0] == 1 and (await second.incr("n", 5))[0] == 2
        assert await second.delete("web:{brace}") is True
        assert await first.load("web:{brace}") is None
    finally:
        await first.close()
        await second.close()
