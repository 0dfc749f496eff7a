"""One suite every session driver passes: the store interface, then a bot running on the store."""
from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from botkit.core.errors import VersionConflict
from botkit.core.session import Session
from botkit.storage.base import Appended, SessionStore
from tests.stores import FACTORIES, OLD_RECORD, bot_on, text_event


@pytest.fixture(params=sorted(FACTORIES))
async def store(request, tmp_path):
    async with FACTORIES[request.param](tmp_path) as opened:
        yield opened


def record(key: str, version: int, count: int = 0) -> dict:
    session = Session.fresh(key, {"count": count}, time.time())
    session.version = version
    return session.to_record()


def entries(first: int, last: int) -> list[dict]:
    """Transcript entries numbered ``first`` to ``last``, both directions, a text and a payload."""
    made = []
    for seq in range(first, last + 1):
        entry = {"seq": seq, "dir": "in" if seq % 2 else "out", "type": "text", "at": 1000.0 + seq / 4, "text": f"m{seq} ✓"}
        if seq % 3 == 0:
            del entry["text"]
            entry.update(type="payload", payload=f"PICK_{seq}")
        made.append(entry)
    return made


async def test_missing_key_loads_as_none(store):
    assert await store.load("test:nobody") is None


async def test_saved_record_loads_back_equal(store):
    saved = record("test:1", 1, count=7)
    saved["state"]["note"] = "héllo ✓"
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


# -- the history log beside the record ---------------------------------------------------------------


async def test_history_is_appended_beside_the_record_and_keeps_the_last_entries(store):
    await store.save(record("test:1", 1), Appended(entries(1, 3), limit=5, restart=True))
    second = record("test:1", 2)
    await store.save(second, Appended(entries(4, 7), limit=5))
    assert await store.history("test:1", 5) == entries(3, 7)
    assert await store.history("test:1", 2) == entries(6, 7)
    assert (await store.history("test:1"))[-5:] == entries(3, 7)
    assert await store.load("test:1") == second, "the record holds none of the history"
    assert await store.history("test:nobody") == []


async def test_a_long_log_stays_bounded(store):
    for version in range(1, 41):
        await store.save(record("test:1", version), Appended(entries(2 * version - 1, 2 * version), limit=6,
                                                              restart=version == 1))
    kept = await store.history("test:1")
    assert 6 <= len(kept) <= 12 and kept[-6:] == entries(75, 80)


async def test_a_refused_save_appends_nothing(store):
    await store.save(record("test:1", 1), Appended(entries(1, 2), limit=50, restart=True))
    with pytest.raises(VersionConflict):
        await store.save(record("test:1", 1), Appended(entries(3, 4), limit=50))
    assert await store.history("test:1") == entries(1, 2)


async def test_a_restart_drops_the_stored_history(store):
    await store.save(record("test:1", 1), Appended(entries(1, 4), limit=50, restart=True))
    await store.save(record("test:1", 2), Appended(entries(1, 1), limit=50, restart=True))
    assert await store.history("test:1") == entries(1, 1)
    await store.save(record("test:1", 3), Appended((), limit=50, restart=True))
    assert await store.history("test:1") == []


async def test_deleting_a_session_deletes_its_history(store):
    await store.save(record("test:1", 1), Appended(entries(1, 3), limit=50, restart=True))
    assert await store.delete("test:1") is True
    assert await store.history("test:1") == []
    await store.save(record("test:1", 1), Appended(entries(1, 1), limit=50, restart=True))
    assert await store.history("test:1") == entries(1, 1)


async def test_commit_appends_the_history_and_another_process_reads_it(store):
    lease = await store.begin("test:1")
    await store.commit(lease, record("test:1", 1), Appended(entries(1, 2), limit=50, restart=True))
    lease = await store.begin("test:1")
    await store.release(lease)
    lease = await store.begin("test:1")
    await store.commit(lease, record("test:1", 2), Appended(entries(3, 4), limit=50))
    other = store.second() if store.second is not None else store
    if other is not store:
        await other.open()
    try:
        assert await other.history("test:1") == entries(1, 4)
    finally:
        if other is not store:
            await other.close()


# -- a bot on each store ---------------------------------------------------------------------------


async def test_one_session_many_concurrent_events_loses_nothing(store, tmp_path):
    bot = bot_on(store, tmp_path)
    await asyncio.gather(*(bot.dispatch([text_event(bot, "test:1")]) for _ in range(100)))
    assert (await store.load("test:1"))["state"] == {"count": 100}
    assert bot.sent == [f"Count: {n}" for n in range(1, 101)]
    kept = await store.history("test:1", 50)
    assert [entry["seq"] for entry in kept] == list(range(151, 201))
    assert [entry.get("text") for entry in kept if entry["dir"] == "out"] == [f"Count: {n}" for n in range(76, 101)]


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


async def test_expired_session_starts_from_initial_state_with_an_empty_history(store, tmp_path):
    seen = []

    async def counter_reading_history(context):
        seen.append([(entry["dir"], entry.get("text")) for entry in await context.history()])
        count = context.state["count"] + 1
        context.set_state({"count": count})
        await context.send_text(f"Count: {count}")

    bot = bot_on(store, tmp_path, handler=counter_reading_history, expires_in=1 / 60)
    await bot.dispatch([text_event(bot, "test:1", text="a")])
    await bot.dispatch([text_event(bot, "test:1", text="b")])
    assert (await store.load("test:1"))["expires_at"] is not None
    await asyncio.sleep(2)
    await bot.dispatch([text_event(bot, "test:1", text="c")])
    assert bot.sent == ["Count: 1", "Count: 2", "Count: 1"]
    assert seen == [[("in", "a")], [("in", "a"), ("out", "Count: 1"), ("in", "b")], [("in", "c")]]
    assert [(entry["seq"], entry.get("text")) for entry in await store.history("test:1")] == [(1, "c"), (2, "Count: 1")]


async def test_a_raising_handler_leaves_the_session_as_it_was(store, tmp_path, caplog):
    async def flaky(context):
        context.set_state({"count": context.state["count"] + 1})
        if context.event.text == "boom":
            raise RuntimeError("handler bug")

    bot = bot_on(store, tmp_path, handler=flaky)
    await bot.dispatch([text_event(bot, "test:1")])
    before, history_before = await store.load("test:1"), await store.history("test:1")
    await bot.dispatch([text_event(bot, "test:1", text="boom")])
    assert await store.load("test:1") == before
    assert await store.history("test:1") == history_before
    assert "handler bug" in caplog.text and "Traceback" in caplog.text


async def test_history_keeps_the_last_messages_both_ways_beside_the_record(store, tmp_path):
    bot = bot_on(store, tmp_path, history=4)
    for n in range(3):
        await bot.dispatch([text_event(bot, "test:1", text=f"m{n}")])
    saved = await store.load("test:1")
    assert [(h["dir"], h.get("text")) for h in await store.history("test:1", 4)] == [
        ("in", "m1"), ("out", "Count: 2"), ("in", "m2"), ("out", "Count: 3")]
    assert "history" not in saved and set(saved["parts"]["history"]) == {"seq", "message_count"}
    session = await bot.load_session("test:1")
    assert session.message_count == 3
    assert [h.get("text") for h in await session.load_history(2)] == ["m2", "Count: 3"]


async def test_a_handler_reads_the_transcript_including_this_events_messages(store, tmp_path):
    seen = []

    async def handler(context):
        await context.send_text(f"echo {context.event.text}")
        seen.append([(entry["dir"], entry.get("text")) for entry in await context.history(limit=3)])
        seen.append(len(context.session.history))

    bot = bot_on(store, tmp_path, handler=handler)
    for text in ("a", "b"):
        await bot.dispatch([text_event(bot, "test:1", text=text)])
    assert seen == [[("in", "a"), ("out", "echo a")], 2, [("out", "echo a"), ("in", "b"), ("out", "echo b")], 4]


async def test_a_cleared_history_starts_again_from_one(store, tmp_path):
    async def handler(context):
        if context.event.text == "clear":
            context.session.clear_history()
        await context.send_text(f"echo {context.event.text}")

    bot = bot_on(store, tmp_path, handler=handler)
    for text in ("a", "b", "clear", "c"):
        await bot.dispatch([text_event(bot, "test:1", text=text)])
    assert [(entry["seq"], entry.get("text")) for entry in await store.history("test:1")] == [
        (1, "echo clear"), (2, "c"), (3, "echo c")]


async def test_a_record_of_the_previous_release_loads_and_is_saved_as_an_envelope(store, tmp_path):
    await store.save(orjson.loads(OLD_RECORD))
    seen = []

    async def handler(context):
        seen.append((dict(context.state), context.session.slug, [e.get("text", e.get("payload")) for e in await context.history()]))
        context.set_state({"count": context.state["count"] + 1})
        await context.send_text("ok")

    bot = bot_on(store, tmp_path, handler=handler)
    await bot.dispatch([text_event(bot, "test:1", text="again", event_id="41")])
    assert seen == [], "an event id the old record had handled ran again"
    await bot.dispatch([text_event(bot, "test:1", text="more", event_id="42")])
    assert seen == [({"count": 4}, "email->get_email", ["hi", "Count: 4", "BUY", "more"])]
    saved = await store.load("test:1")
    assert saved["key"] == "test:1" and saved["version"] == 5
    assert saved["state"] == {"count": 5}
    assert saved["parts"]["flow"] == {"slug": "email->get_email", "previous_slug": "shop->checkout", "back_to": "shop->thanks"}
    # "41" came without its time: handled by the old record's last activity, long past the dedupe window
    assert saved["parts"]["dedupe"] == {"handled": ["42"], "at": [pytest.approx(store.clock(), abs=2)]}
    assert saved["parts"]["channel"] == {"name": "test", "address": {"chat_id": 1}}
    assert saved["parts"]["history"] == {"message_count": 5, "seq": 5}
    assert not {"id", "slug", "history", "handled", "address", "channel", "message_count"} & set(saved)
    assert [(e["seq"], e.get("text", e.get("payload"))) for e in await store.history("test:1")] == [
        (1, "hi"), (2, "Count: 4"), (3, "BUY"), (4, "more"), (5, "ok")]
