"""The MongoDB driver beyond the conformance suite: the document and TTL index a user sees, expiry, the
CLI. These need a server: they run where MONGODB_URL is set and are skipped, with the reason, elsewhere.
Settings mistakes and an unreachable server are checked everywhere."""
from __future__ import annotations

import json
import time
from datetime import UTC

import orjson
import pytest

from botkit import ConfigError, StoreUnavailable
from botkit.storage.mongo import MongoStore
from tests.stores import MONGODB_URL, OLD_RECORD, Clock, bot_folder, bot_on, free_port, mongo_store, run_cli, text_event
from tests.support import make_config


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def store(tmp_path, clock):
    async with mongo_store(tmp_path, clock) as opened:
        yield opened


async def test_a_session_is_a_document_keyed_by_the_session_key_under_a_ttl_index(store, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=10)
    await bot.dispatch([text_event(bot)])
    doc = await store.sessions.find_one({"_id": "test:1"})
    assert doc["record"] == await store.load("test:1") and doc["record"]["state"] == {"count": 1}
    assert doc["version"] == 1 and "lease_token" not in doc
    assert doc["expires_at"].timestamp() == pytest.approx(store.clock() + 600, abs=0.01)
    assert doc["expires_at"].tzinfo is not None and doc["expires_at"].utcoffset() == UTC.utcoffset(None)
    indexes = await store.sessions.index_information()
    assert indexes["expires_at_ttl"]["key"] == [("expires_at", 1)] and indexes["expires_at_ttl"]["expireAfterSeconds"] == 0


async def test_the_history_is_an_array_beside_the_record_in_the_same_document(store, tmp_path):
    bot = bot_on(store, tmp_path, history=3)
    for text in ("a", "b"):
        await bot.dispatch([text_event(bot, text=text)])
    doc = await store.sessions.find_one({"_id": "test:1"})
    assert [(entry["seq"], entry["dir"], entry.get("text")) for entry in doc["history"]] == [
        (2, "out", "Count: 1"), (3, "in", "b"), (4, "out", "Count: 2")]
    assert "history" not in doc["record"]


async def test_a_record_of_the_previous_release_is_rewritten_as_an_envelope_with_its_history_beside(store, tmp_path):
    await store.sessions.insert_one({"_id": "test:1", "record": orjson.loads(OLD_RECORD), "version": 4, "expires_at": None})
    bot = bot_on(store, tmp_path)
    await bot.dispatch([text_event(bot, text="more", event_id="42")])
    doc = await store.sessions.find_one({"_id": "test:1"})
    assert doc["record"]["key"] == "test:1" and doc["record"]["state"] == {"count": 5} and "history" not in doc["record"]
    assert [entry.get("text", entry.get("payload")) for entry in doc["history"]] == ["hi", "Count: 4", "BUY", "more", "Count: 5"]


async def test_expired_documents_are_ignored_before_the_ttl_monitor_removes_them(store, clock, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=1)
    await bot.dispatch([text_event(bot)])
    await bot.dispatch([text_event(bot)])
    clock.now += 61
    assert await store.load("test:1") is None and await store.keys() == []
    await bot.dispatch([text_event(bot)])
    assert bot.sent == ["Count: 1", "Count: 2", "Count: 1"]


async def test_sessions_list_show_delete_on_mongo(store, tmp_path):
    config = bot_folder(tmp_path / "bot", session={"driver": "mongo", "stores": {"mongo": {
        "url": MONGODB_URL, "database": store.settings["database"], "collection": store.settings["collection"]}}})
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


async def test_an_unreachable_mongodb_fails_fast_with_store_unavailable():
    store = MongoStore({"url": f"mongodb://127.0.0.1:{free_port()}"}, clock=time.time, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot prepare MongoDB"):
        await store.open()
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("stores, setting", [
    ({"mongo": {"url": "redis://x"}}, "session.stores.mongo.url"),
    ({"mongo": {"database": ""}}, "session.stores.mongo.database"),
    ({"mongo": {"collection": "a$b"}}, "session.stores.mongo.collection"),
    ({"mongo": {"pool_size": 0}}, "session.stores.mongo.pool_size"),
    ({"mongo": {"lease": None}}, "session.stores.mongo.lease"),
])
def test_a_wrong_setting_is_named(stores, setting):
    with pytest.raises(ConfigError) as caught:
        make_config(session={"driver": "mongo", "stores": stores})
    assert caught.value.setting == setting
