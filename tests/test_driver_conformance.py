"""One suite every session driver passes: the store interface, then a bot running on the store."""
from __future__ import annotations

import asyncio
import time

import pytest

from botkit.core.errors import VersionConflict
from botkit.core.session import Session
from botkit.storage.base import SessionStore
from tests.stores import FACTORIES, bot_on, text_event


@pytest.fixture(params=sorted(FACTORIES))
async def store(request, tmp_path):
    async with FACTORIES[request.param](tmp_path) as opened:
        yield opened


def record(key: str, version: int, count: int = 0) -> dict:
    session = Session.fresh(key, {"count": count}, time.time())
    session.version = version
    return session.to_record()


async def test_missing_key_loads_as_none(store):
    assert await store.load("test:nobody") is None


async def test_saved_record_loads_back_equal(store):
    saved = record("test:1", 1, count=7)
    saved["history"] = [{"dir": "in", "type": "text", "text": "héllo ✓", "at": 1.5}]
    await store.save(saved)
    assert await store.load("test:1") == saved


async def test_save_refuses_a_stale_version(store):
    await store.save(record("test:1", 1))
    await store.save(record("test:1", 2))
    with pytest.raises(VersionConflict):
        await store.save(record("test:1", 2))
    assert (await store.load("test:1"))["version"] == 2


async def test_lease_commit_round_trip(store):
    lease = await store.begin("test:1")
    assert lease.record is None
    await store.commit(lease, record("test:1", 1, count=1))
    lease = await store.begin("test:1")
    assert lease.record["state"] == {"count": 1}
    await store.release(lease)
    lease = await store.begin("test:1")
    await store.commit(lease, record("test:1", 2, count=2))
    assert (await store.load("test:1"))["state"] == {"count": 2}


async def test_delete_and_keys(store):
    keys = ["test:a", "line:U4af4980629", "../../etc/passwd", "web:ünïcode/ key", "x" * 400]
    for key in keys:
        await store.save(record(key, 1))
    assert sorted(await store.keys()) == sorted(keys)
    assert await store.delete("test:a") is True
    assert await store.delete("test:a") is False
    assert await store.load("test:a") is None
    assert sorted(await store.keys()) == sorted(keys[1:])


async def test_rate_counters_count_a_window_then_reset(store):
    shares = store.second is not None and type(store).incr is not SessionStore.incr
    other = store.second() if shares else store
    await other.open()
    try:
        assert (await store.incr("web:u", 0.5))[0] == 1
        assert (await store.incr("web:u", 0.5))[0] == 2
        hits, left = await other.incr("web:u", 0.5)
        assert hits == 3 and 0 < left <= 0.5, "a shared store's processes count together"
        await asyncio.sleep(left + 0.05)
        assert (await other.incr("web:u", 0.5))[0] == 1
    finally:
        if shares:
            await other.close()


async def test_a_second_process_waits_for_the_lease(store):
    if store.second is None:
        pytest.skip(f"the {store.name} store is not shared between processes")
    other = store.second()
    await other.open()
    try:
        lease = await store.begin("test:shared")
        waiting = asyncio.ensure_future(other.begin("test:shared"))
        await asyncio.sleep(0.2)
        assert not waiting.done(), "a second lease was granted while the first was held"
        await store.commit(lease, record("test:shared", 1, count=1))
        second = await asyncio.wait_for(waiting, 5)
        assert second.record["state"] == {"count": 1}
        await other.commit(second, record("test:shared", 2, count=2))
        assert (await store.load("test:shared"))["version"] == 2
    finally:
        await other.close()


# -- a bot on each store ---------------------------------------------------------------------------


async def test_one_session_many_concurrent_events_loses_nothing(store, tmp_path):
    bot = bot_on(store, tmp_path)
    await asyncio.gather(*(bot.dispatch([text_event(bot, "test:1")]) for _ in range(100)))
    assert (await store.load("test:1"))["state"] == {"count": 100}
    assert bot.sent == [f"Count: {n}" for n in range(1, 101)]


async def test_many_sessions_at_once(store, tmp_path):
    bot = bot_on(store, tmp_path)
    await asyncio.gather(*(bot.dispatch([text_event(bot, f"test:{chat}")]) for _ in range(20) for chat in range(50)))
    for chat in range(50):
        assert (await store.load(f"test:{chat}"))["state"] == {"count": 20}


async def test_a_redelivered_event_runs_once(store, tmp_path):
    bot = bot_on(store, tmp_path)
    for _ in range(3):
        await bot.dispatch([text_event(bot, "test:1", event_id="42")])
    assert bot.sent == ["Count: 1"]


async def test_expired_session_starts_from_initial_state(store, tmp_path):
    bot = bot_on(store, tmp_path, expires_in=1 / 60)
    await bot.dispatch([text_event(bot, "test:1")])
    await bot.dispatch([text_event(bot, "test:1")])
    assert (await store.load("test:1"))["expires_at"] is not None
    await asyncio.sleep(2)
    await bot.dispatch([text_event(bot, "test:1")])
    assert bot.sent == ["Count: 1", "Count: 2", "Count: 1"]


async def test_a_raising_handler_leaves_the_session_as_it_was(store, tmp_path, caplog):
    async def flaky(context):
        context.set_state({"count": context.state["count"] + 1})
        if context.event.text == "boom":
            raise RuntimeError("handler bug")

    bot = bot_on(store, tmp_path, handler=flaky)
    await bot.dispatch([text_event(bot, "test:1")])
    before = await store.load("test:1")
    await bot.dispatch([text_event(bot, "test:1", text="boom")])
    assert await store.load("test:1") == before
    assert "handler bug" in caplog.text and "Traceback" in caplog.text


async def test_history_keeps_the_last_messages_both_ways(store, tmp_path):
    bot = bot_on(store, tmp_path, history=4)
    for n in range(3):
        await bot.dispatch([text_event(bot, "test:1", text=f"m{n}")])
    saved = await store.load("test:1")
    assert [(h["dir"], h.get("text")) for h in saved["history"]] == [
        ("in", "m1"), ("out", "Count: 2"), ("in", "m2"), ("out", "Count: 3")]
    assert saved["message_count"] == 3
