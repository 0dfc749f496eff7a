"""The memory driver's size bound: 10,000 sessions by default, the least recent forgotten beyond it, and a
warning the first time that happens in a process."""
from __future__ import annotations

import logging
import time

import pytest

import botkit.storage.memory as memory
from botkit.core.session import Session
from botkit.storage.memory import MemoryStore

WARNING = "raise session.stores.memory.max_size"


def record(key: str) -> dict:
    session = Session.fresh(key, {"count": 1}, time.time())
    session.version = 1
    return session.to_record()


@pytest.fixture
def fresh_process(monkeypatch):
    """As if no eviction had happened yet in this process."""
    monkeypatch.setattr(memory, "_eviction_logged", False)


def eviction_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "botkit.drivers.memory" and WARNING in r.getMessage()]


async def test_the_10001st_session_evicts_the_least_recent_and_warns_once(fresh_process, caplog):
    caplog.set_level(logging.WARNING, logger="botkit.drivers.memory")
    store = MemoryStore({}, clock=time.time)
    assert store.max_size == 10_000
    for n in range(10_000):
        await store.save(record(f"test:{n}"))
    assert await store.load("test:0") is not None  # used again: test:1 is now the least recent
    assert store.size == 10_000
    assert eviction_warnings(caplog) == []

    await store.save(record("test:10000"))
    assert store.size == 10_000
    assert await store.load("test:1") is None
    assert await store.load("test:0") is not None
    assert await store.load("test:10000") is not None
    warnings = eviction_warnings(caplog)
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "10000 sessions" in warnings[0].getMessage()

    await store.save(record("test:10001"))  # evicts test:2, silently this time
    assert await store.load("test:2") is None
    other = MemoryStore({"max_size": 1}, clock=time.time)  # another store of the same process: still once
    await other.save(record("test:a"))
    await other.save(record("test:b"))
    assert await other.load("test:a") is None
    assert len(eviction_warnings(caplog)) == 1


async def test_no_warning_while_sessions_fit(fresh_process, caplog):
    caplog.set_level(logging.WARNING, logger="botkit.drivers.memory")
    store = MemoryStore({"max_size": 3}, clock=time.time)
    for _ in range(5):
        for key in ("test:a", "test:b", "test:c"):
            current = await store.load(key)
            saved = record(key)
            saved["version"] = 1 if current is None else current["version"] + 1
            await store.save(saved)
    assert store.size == 3
    assert eviction_warnings(caplog) == []


def test_the_default_is_10000():
    assert MemoryStore.defaults["max_size"] == 10_000
    MemoryStore.validate({})


async def test_a_replay_after_its_session_was_evicted_is_still_a_duplicate(tmp_path):
    from botkit.core.events import Event
    from botkit.core.sending import Sender
    from botkit.engine.dispatcher import Outcome
    from tests.support import make_config, test_bot

    runs: list[str] = []

    async def handler(context):
        runs.append(context.event.session_key)
        context.set_state({"count": context.state["count"] + 1})

    config = make_config(tmp_path, session={"stores": {"memory": {"max_size": 2}}})
    bot = test_bot(config, handler=handler, channels={})

    def event(key: str, event_id: str) -> Event:
        return Event("test", "text", key, text="hi", id=event_id, channel="test", meta={"sender": Sender()})

    async with bot:
        assert await bot.dispatch([event("test:1", "u1")]) == [Outcome.HANDLED]
        await bot.dispatch([event("test:2", "u2")])
        await bot.dispatch([event("test:3", "u3")])  # test:1 is the least recently used: evicted
        assert await bot.load_session("test:1") is None
        assert await bot.dispatch([event("test:1", "u1")]) == [Outcome.DUPLICATE]  # the captured delivery again
        assert await bot.dispatch([event("test:1", "u4")]) == [Outcome.HANDLED]  # a new message starts afresh
    assert runs == ["test:1", "test:2", "test:3", "test:1"]
