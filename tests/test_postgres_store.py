"""The PostgreSQL driver beyond the conformance suite: the table a user sees, expiry and the sweep,
workers starting together, dropped connections, the CLI, and settings mistakes."""
from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import pytest

from botkit import ConfigError, StoreUnavailable
from botkit.storage.postgres import PostgresStore
from tests.stores import (
    OLD_RECORD,
    POSTGRES_DSN,
    Clock,
    bot_folder,
    bot_on,
    drop_postgres_table,
    free_port,
    postgres_store,
    run_cli,
    text_event,
    unique,
)
from tests.support import make_config


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def store(tmp_path, clock):
    async with postgres_store(tmp_path, clock) as opened:
        yield opened


@pytest.fixture
async def db():
    conn = await asyncpg.connect(POSTGRES_DSN)
    yield conn
    await conn.close()


async def test_a_session_is_a_row_with_a_jsonb_record_and_expires_at(store, db, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=10)
    await bot.dispatch([text_event(bot)])
    row = await db.fetchrow(f'SELECT record::text, version, extract(epoch FROM expires_at)::float8 AS expires, '
                            f'lease_token FROM "{store.settings["table"]}" WHERE key = $1', "test:1")
    record = json.loads(row["record"])
    assert record == await store.load("test:1") and record["state"] == {"count": 1}
    assert row["version"] == 1
    assert row["expires"] == pytest.approx(store.clock() + 600, abs=0.01) == pytest.approx(record["expires_at"], abs=0.001)
    assert row["lease_token"] is None, "the lease outlived the commit"


async def test_the_history_is_a_table_a_person_can_query(store, db, tmp_path):
    bot = bot_on(store, tmp_path, history=3)
    for text in ("a", "b"):
        await bot.dispatch([text_event(bot, text=text)])
    table = store.settings["table"]
    rows = await db.fetch(f'SELECT seq, direction, type, text, payload, at FROM "{table}_history" '
                          "WHERE session_key = $1 ORDER BY seq", "test:1")
    assert [(row["seq"], row["direction"], row["type"], row["text"], row["payload"]) for row in rows] == [
        (2, "out", "text", "Count: 1", None), (3, "in", "text", "b", None), (4, "out", "text", "Count: 2", None)]
    assert all(row["at"] == pytest.approx(store.clock(), abs=5) for row in rows)
    assert "Count: 1" not in await db.fetchval(f'SELECT record::text FROM "{table}" WHERE key = $1', "test:1")
    assert await store.delete("test:1") is True
    assert await db.fetchval(f'SELECT count(*) FROM "{table}_history"') == 0


async def test_a_record_of_the_previous_release_is_rewritten_as_an_envelope_with_its_history_beside(store, db, tmp_path):
    table = store.settings["table"]
    await db.execute(f'INSERT INTO "{table}" (key, record, version) VALUES ($1, $2::jsonb, 4)', "test:1", OLD_RECORD)
    bot = bot_on(store, tmp_path)
    await bot.dispatch([text_event(bot, text="more", event_id="42")])
    record = json.loads(await db.fetchval(f'SELECT record::text FROM "{table}" WHERE key = $1', "test:1"))
    assert record["key"] == "test:1" and record["version"] == 5 and record["state"] == {"count": 5}
    assert "history" not in record and "id" not in record
    rows = await db.fetch(f'SELECT seq, text, payload::text FROM "{table}_history" WHERE session_key = $1 ORDER BY seq', "test:1")
    assert [(row["seq"], row["text"], row["payload"]) for row in rows] == [
        (1, "hi", None), (2, "Count: 4", None), (3, None, '"BUY"'), (4, "more", None), (5, "Count: 5", None)]


async def test_a_session_that_never_expires_has_a_null_expires_at(store, db, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=None)
    await bot.dispatch([text_event(bot)])
    assert await db.fetchval(f'SELECT expires_at FROM "{store.settings["table"]}" WHERE key = $1', "test:1") is None


async def test_expired_rows_are_ignored_on_read_then_swept(store, db, clock, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=1)
    table = store.settings["table"]
    await bot.dispatch([text_event(bot, "test:old")])
    await bot.dispatch([text_event(bot, "test:old")])
    clock.now += 30
    await bot.dispatch([text_event(bot, "test:recent")])
    clock.now += 40
    assert await store.load("test:old") is None
    assert await store.keys() == ["test:recent"]
    assert await db.fetchval(f'SELECT count(*) FROM "{table}"') == 2, "expired rows go at the sweep, not before"
    assert await store.sweep() == 0, "an expired row stays until its session's end ran"
    assert await bot.lifecycle.sweep() == 1
    assert await store.sweep() == 1
    assert await db.fetchval(f'SELECT array_agg(key) FROM "{table}"') == ["test:recent"]
    assert await db.fetchval(f'SELECT array_agg(DISTINCT session_key) FROM "{table}_history"') == ["test:recent"]
    await bot.dispatch([text_event(bot, "test:old")])
    assert bot.sent == ["Count: 1", "Count: 2", "Count: 1", "Count: 1"]


async def test_workers_starting_together_create_the_table_once(tmp_path):
    settings = {"dsn": POSTGRES_DSN, "table": unique("botkit_test_")}
    stores = [PostgresStore(settings, clock=time.time) for _ in range(4)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        await stores[0].save({"id": "test:1", "version": 1, "expires_at": None, "state": {}})
        assert await stores[3].load("test:1") == {"id": "test:1", "version": 1, "expires_at": None, "state": {}}
    finally:
        for store in stores:
            await store.close()
        await drop_postgres_table(POSTGRES_DSN, settings["table"])


async def test_a_table_of_another_shape_is_a_config_error(db):
    table = unique("botkit_test_")
    await db.execute(f'CREATE TABLE "{table}" (id serial primary key, payload text)')
    store = PostgresStore({"dsn": POSTGRES_DSN, "table": table}, clock=time.time)
    try:
        with pytest.raises(ConfigError) as caught:
            await store.open()
        assert caught.value.setting == "session.stores.postgres.table"
    finally:
        await store.close()
        await drop_postgres_table(POSTGRES_DSN, table)


async def test_connections_dropped_by_the_server_are_replaced_without_a_restart(db, tmp_path):
    name = unique("botkit_test_")
    settings = {"dsn": f"{POSTGRES_DSN}?application_name={name}", "table": name}
    store = PostgresStore(settings, clock=time.time)
    await store.open()
    try:
        bot = bot_on(store, tmp_path)
        await asyncio.gather(*(bot.dispatch([text_event(bot, f"test:{n}")]) for n in range(8)))
        killed = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", name)
        assert killed >= 2
        await asyncio.gather(*(bot.dispatch([text_event(bot, f"test:{n}")]) for n in range(8)))
        for n in range(8):
            assert (await store.load(f"test:{n}"))["state"] == {"count": 2}
    finally:
        await store.close()
        await drop_postgres_table(POSTGRES_DSN, name)


async def test_sessions_list_show_delete_on_postgres(store, tmp_path):
    config = bot_folder(tmp_path / "bot", session={
        "driver": "postgres", "stores": {"postgres": {"dsn": POSTGRES_DSN, "table": store.settings["table"]}}})
    bot = bot_on(store, tmp_path)
    store.clock.now = time.time()
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
    missing = run_cli("sessions", "--config", str(config), "delete", "test:2")
    assert missing.returncode == 1 and "no session test:2" in missing.stderr


async def test_an_unreachable_postgres_fails_fast_with_store_unavailable():
    store = PostgresStore({"dsn": f"postgresql://postgres@127.0.0.1:{free_port()}/test"}, clock=time.time, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot reach PostgreSQL"):
        await store.open()
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("stores, setting", [
    ({"postgres": {"dsn": "mysql://x"}}, "session.stores.postgres.dsn"),
    ({"postgres": {"table": "sessions; DROP TABLE users"}}, "session.stores.postgres.table"),
    ({"postgres": {"pool_size": 0}}, "session.stores.postgres.pool_size"),
    ({"postgres": {"sweep_every": -1}}, "session.stores.postgres.sweep_every"),
    ({"postgres": {"lease": "10"}}, "session.stores.postgres.lease"),
])
def test_a_wrong_setting_is_named(stores, setting):
    with pytest.raises(ConfigError) as caught:
        make_config(session={"driver": "postgres", "stores": stores})
    assert caught.value.setting == setting
