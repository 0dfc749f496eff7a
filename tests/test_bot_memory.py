"""Bot memory: one suite every driver passes (two store objects over one namespace stand for two
processes), then what a handler sees: ``context.bot_memory`` is ``bot.bot_memory``, a raise does not roll
it back, a value over ``bot_memory.max_value_size`` is refused."""
from __future__ import annotations

import pytest

from botkit.core.errors import ConfigError
from botkit.storage.bot_memory import ValueTooLarge
from tests.stores import FACTORIES, bot_on, text_event
from tests.support import counter, make_config


@pytest.fixture(params=sorted(FACTORIES))
async def store(request, tmp_path):
    async with FACTORIES[request.param](tmp_path) as opened:
        yield opened


async def opened(store):
    memory = store.bot_memory()
    await memory.open()
    return memory


async def test_a_missing_key_is_the_default(store):
    memory = await opened(store)
    assert await memory.get("nothing") is None
    assert await memory.get("nothing", 42) == 42


async def test_values_round_trip_as_json(store):
    memory = await opened(store)
    value = {"name": "ACME Corp ✓", "n": 3, "ratio": 0.5, "tags": ["a", "b"], "none": None, "nested": {"ok": True}}
    await memory.set("company", value)
    assert await memory.get("company") == value
    await memory.set("company", "replaced")
    assert await memory.get("company") == "replaced"
    await memory.set("null", None)
    assert await memory.get("null", "default") is None


async def test_delete_forgets_a_key(store):
    memory = await opened(store)
    await memory.set("k", 1)
    assert await memory.delete("k") is True
    assert await memory.get("k") is None
    assert await memory.delete("k") is False


async def test_odd_keys_are_kept_apart(store):
    memory = await opened(store)
    keys = ["last_visit_telegram:42", "../../etc/passwd", "a" * 3000, "ключ ✓", "a.b$c"]
    for n, key in enumerate(keys):
        await memory.set(key, n)
    assert [await memory.get(key) for key in keys] == list(range(len(keys)))


async def test_another_process_on_the_same_store_sees_the_value(store):
    if store.second is None:
        pytest.skip("the memory driver lives in one process")
    memory = await opened(store)
    await memory.set("shared", {"v": 1})
    other_store = store.second()
    await other_store.open()
    try:
        other = await opened(other_store)
        assert await other.get("shared") == {"v": 1}
        await other.set("shared", {"v": 2})
        assert await memory.get("shared") == {"v": 2}
    finally:
        await other_store.close()


async def test_a_value_over_the_size_limit_is_refused_and_nothing_is_written(store):
    memory = await opened(store)
    memory.max_value_size = 100
    await memory.set("big", "small")
    with pytest.raises(ValueTooLarge, match=r"bot memory 'big'.*over bot_memory.max_value_size \(100\)"):
        await memory.set("big", "x" * 200)
    assert await memory.get("big") == "small"


async def test_a_value_json_cannot_hold_is_refused(store):
    memory = await opened(store)
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        await memory.set("obj", object())


async def test_handlers_share_bot_memory_and_a_raise_does_not_roll_it_back(store, tmp_path):
    async def app(context):
        seen = await context.bot_memory.get("visits", 0)
        await context.bot_memory.set("visits", seen + 1)
        await context.send_text(f"visit {seen + 1}")
        if context.event.text == "boom":
            raise RuntimeError("after the set")

    bot = bot_on(store, tmp_path, handler=app)
    await bot.bot_memory.open()
    await bot.dispatcher.handle(text_event(bot, "test:1", event_id="e1"))
    await bot.dispatcher.handle(text_event(bot, "test:2", event_id="e2"))
    await bot.dispatcher.handle(text_event(bot, "test:2", text="boom", event_id="e3"))
    assert bot.sent == ["visit 1", "visit 2", "visit 3"]
    assert await bot.bot_memory.get("visits") == 3


async def test_the_size_limit_comes_from_the_config(tmp_path):
    from tests.support import test_bot

    bot = test_bot(make_config(tmp_path, bot_memory={"max_value_size": 10}), channels={}, handler=counter)
    assert bot.bot_memory.max_value_size == 10
    with pytest.raises(ValueTooLarge):
        await bot.bot_memory.set("k", "x" * 20)


@pytest.mark.parametrize("bad", [-1, "1MB", True])
def test_a_wrong_size_limit_is_one_config_error(tmp_path, bad):
    with pytest.raises(ConfigError, match=r"bot_memory\.max_value_size"):
        make_config(tmp_path, bot_memory={"max_value_size": bad})


def test_bot_memory_and_name_are_settings_not_extra(tmp_path):
    config = make_config(tmp_path, bot_memory={"max_value_size": 5}, name="support")
    assert "bot_memory" not in config.extra and "name" not in config.extra
    assert config.bot_name == "support"


async def test_workers_starting_together_create_the_postgresql_table_once(tmp_path):
    """`--workers N` opens N stores on a fresh table at once; CREATE TABLE IF NOT EXISTS alone collides in
    PostgreSQL's catalog (a worker then fails to boot)."""
    import asyncio

    from tests.stores import postgres_store

    async with postgres_store(tmp_path) as first:
        others = [first.second() for _ in range(7)]
        await asyncio.gather(*(other.open() for other in others))
        try:
            memories = [store.bot_memory() for store in [first, *others]]
            await asyncio.gather(*(memory.open() for memory in memories))
            await memories[3].set("k", "v")
            assert await memories[5].get("k") == "v"
        finally:
            await asyncio.gather(*(other.close() for other in others))
