"""Sessions' start and end hooks (``on_session_start``, ``on_session_end``), ``context.end_session()``,
the end sweep (once per expiry, also with two processes on one store), milestones and the stats, on
every driver; then the real thing: `botkit start --workers 2` on Redis and PostgreSQL."""
from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from botkit.engine.stats import summarize
from tests.stores import (
    FACTORIES,
    POSTGRES_DSN,
    REDIS_URL,
    Clock,
    bot_folder,
    bot_on,
    drop_postgres_table,
    drop_redis_prefix,
    run_cli,
    text_event,
    unique,
)
from tests.support import BotProcess
from tests.test_telegram import HEADERS, SECRET, TOKEN, update

DRIVERS = ["memory", "file", "redis", "postgres", "postgres+redis-cache"]


@pytest.fixture(params=DRIVERS)
async def store(request, tmp_path):
    async with FACTORIES[request.param](tmp_path, Clock()) as opened:
        yield opened


class Journal:
    """What the hooks saw."""

    def __init__(self) -> None:
        self.starts: list[tuple[str, dict[str, Any]]] = []
        self.ends: list[tuple[str, dict[str, Any], list[str]]] = []

    async def on_start(self, context) -> None:
        self.starts.append((context.session.id, dict(context.state)))
        await context.send_text("Welcome!")

    async def on_end(self, context) -> None:
        history = await context.history()
        self.ends.append((context.session.id, dict(context.state), [e.get("text") for e in history if e["dir"] != "log"]))
        await context.send_text(f"Bye after {context.state['count']}")


async def app(context) -> None:
    count = context.state["count"] + 1
    context.set_state({"count": count})
    if context.event.text == "done":
        context.log_event("order_completed", total=count)
        await context.end_session()
    await context.send_text(f"Count: {count}")


def hooked(store, tmp_path: Path, journal: Journal, **session: Any):
    bot = bot_on(store, tmp_path, handler=app, expires_in=1, **session)
    bot.lifecycle.on_start, bot.lifecycle.on_end = journal.on_start, journal.on_end
    return bot


async def send(bot, text: str = "hi", key: str = "test:1") -> None:
    await bot.dispatch([text_event(bot, key, text)])


def pushed(bot, key: str = "test:1") -> list[str]:
    return bot.channels["test"].pushes[key].sent


class Pushes:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, text: str, **options: Any) -> None:
        self.sent.append(text)

    async def flush(self) -> None:
        pass


async def test_start_runs_before_the_first_event_and_the_sweep_ends_an_expired_session_once(store, tmp_path):
    journal = Journal()
    bot = hooked(store, tmp_path, journal)
    bot.channels["test"].pushes["test:1"] = Pushes()
    await send(bot)
    await send(bot)
    assert journal.starts == [("test:1", {"count": 0})], "the start hook runs before the handler, once"
    assert bot.sent == ["Welcome!", "Count: 1", "Count: 2"]

    store.clock.now += 59
    assert await bot.lifecycle.sweep() == 0, "not expired yet"
    store.clock.now += 2
    assert await bot.lifecycle.sweep() == 1
    assert journal.ends == [("test:1", {"count": 2}, ["hi", "Welcome!", "Count: 1", "hi", "Count: 2"])]
    assert pushed(bot) == ["Bye after 2"], "the end hook sends through the channel's push path"
    assert await bot.lifecycle.sweep() == 0, "ended once"
    if store.second is not None:  # another process on the same store finds nothing to end
        other = store.second()
        await other.open()
        try:
            elsewhere = hooked(other, tmp_path, journal)
            assert await elsewhere.lifecycle.sweep() == 0
        finally:
            await other.close()
    assert len(journal.ends) == 1

    await send(bot)
    assert journal.starts[-1] == ("test:1", {"count": 0}) and len(journal.starts) == 2, "the next message starts anew"
    assert bot.sent[-2:] == ["Welcome!", "Count: 1"]


async def test_one_sweep_ends_every_expired_session_beyond_a_batch(store, tmp_path):
    journal = Journal()
    bot = hooked(store, tmp_path, journal)
    keys = [f"test:{n}" for n in range(150)]
    await asyncio.gather(*(send(bot, "hi", key) for key in keys))
    store.clock.now += 61
    assert await bot.lifecycle.sweep() == 150
    assert sorted(key for key, _, _ in journal.ends) == sorted(keys)
    assert await bot.lifecycle.sweep() == 0


async def test_end_session_ends_at_once_and_the_next_message_starts_a_new_one(store, tmp_path):
    journal = Journal()
    bot = hooked(store, tmp_path, journal)
    await send(bot)
    await send(bot, "done")
    assert journal.ends == [("test:1", {"count": 2}, ["hi", "Welcome!", "Count: 1", "done", "Count: 2"])]
    assert bot.sent[-2:] == ["Count: 2", "Bye after 2"], "the end hook runs once the handler returned"
    assert await bot.lifecycle.sweep() == 0, "an ended session is not ended again when it expires"
    store.clock.now += 3600
    assert await bot.lifecycle.sweep() == 0
    await send(bot)
    assert len(journal.starts) == 2 and bot.sent[-1] == "Count: 1"
    assert len(journal.ends) == 1


async def test_a_message_after_the_expiry_ends_the_old_session_first_then_starts_the_new(store, tmp_path):
    journal = Journal()
    bot = hooked(store, tmp_path, journal)
    await send(bot)
    store.clock.now += 120
    await send(bot, "again")
    assert journal.ends == [("test:1", {"count": 1}, ["hi", "Welcome!", "Count: 1"])]
    assert bot.sent[-3:] == ["Bye after 1", "Welcome!", "Count: 1"]
    assert await bot.lifecycle.sweep() == 0
    assert len(journal.ends) == 1 and len(journal.starts) == 2


async def test_a_push_to_a_new_session_leaves_the_start_for_the_users_first_message(store, tmp_path):
    journal = Journal()
    bot = hooked(store, tmp_path, journal)
    bot.channels["test"].pushes["test:1"] = Pushes()
    await bot.run("test:1", lambda context: context.send_text("News!"))
    assert journal.starts == []
    await send(bot)
    assert journal.starts == [("test:1", {"count": 0})]


async def test_stats_count_a_scripted_conversation(store, tmp_path):
    journal = Journal()
    bot = hooked(store, tmp_path, journal)
    bot.channels["test"].pushes["test:2"] = Pushes()
    start = store.clock.now
    await send(bot)                      # test:1 starts: in 1, out 2 (welcome, count)
    store.clock.now += 10
    await send(bot, "done")              # in 1, out 2 (bye, count), milestone, ended after 10 s
    await send(bot, "hi", "test:2")      # test:2 starts: in 1, out 2
    store.clock.now += 30
    await send(bot, "hi", "test:2")      # in 1, out 1
    store.clock.now += 61
    assert await bot.lifecycle.sweep() == 1   # test:2 expires: out 1 (bye), lasted 30 s
    await send(bot, "back")              # test:1 starts again: in 1, out 2
    await bot.lifecycle.journal.open()
    await bot.lifecycle.flush()
    entries = await bot.lifecycle.journal.read(start)
    stats = summarize(entries, {"test": 1})
    assert stats == {"test": {"active": 1, "started": 3, "ended": 2, "messages_in": 5, "messages_out": 10,
                              "median_duration_seconds": 20.0, "milestones": {"order_completed": 1}}}


def session_settings(store) -> dict[str, Any]:
    """bot.config.py's ``session`` block for the store a test opened (for `botkit` in a subprocess)."""
    database = getattr(store, "database", store)
    settings = {"driver": database.name, "stores": {database.name: dict(database.settings)}}
    if database is not store:
        settings["cache"] = "redis"
        settings["stores"]["redis"] = dict(store.redis.settings)
    return settings


async def test_botkit_sessions_stats_json_reports_the_exact_counts(store, tmp_path):
    """The conversation of the test above, then `botkit sessions stats --json` in another process."""
    journal = Journal()
    bot = hooked(store, tmp_path, journal)
    await bot.lifecycle.journal.open()
    bot.channels["test"].pushes["test:2"] = Pushes()
    await send(bot)
    store.clock.now += 10
    await send(bot, "done")
    await send(bot, "hi", "test:2")
    store.clock.now += 30
    await send(bot, "hi", "test:2")
    store.clock.now += 61
    assert await bot.lifecycle.sweep() == 1
    await send(bot, "back")
    await bot.lifecycle.flush()

    config = bot_folder(tmp_path / "cli", session=session_settings(store))
    shown = run_cli("sessions", "--config", str(config), "stats", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    if store.name == "memory":  # another process: the memory driver's sessions and stats are the bot's own
        assert report["channels"] == {}
        assert "this one sees none" in run_cli("sessions", "--config", str(config), "stats").stdout
        return
    assert report["channels"] == {"test": {
        "active": 1, "started": 3, "ended": 2, "messages_in": 5, "messages_out": 10,
        "median_duration_seconds": 20.0, "milestones": {"order_completed": 1}}}


async def test_milestones_are_in_the_sessions_log_beside_its_history(store, tmp_path):
    async def pay(context) -> None:
        context.log_event("order_completed", total=2)
        await context.send_text("Paid")

    bot = bot_on(store, tmp_path, handler=pay)
    await send(bot, "pay")
    history = await store.history("test:1")
    [milestone] = [entry for entry in history if entry["dir"] == "log"]
    assert milestone["type"] == "milestone" and milestone["text"] == "order_completed"
    assert milestone["payload"] == {"total": 2}


async def test_hook_settings_name_module_and_function(tmp_path):
    from botkit.app.config import config_from_mapping
    from botkit.app.hooks import load_hook
    from botkit.core.errors import ConfigError

    (tmp_path / "hooks_mod.py").write_text("async def hello(context):\n    pass\n")
    config = config_from_mapping({"on_session_start": "hooks_mod:hello", "on_session_end": None}, root=tmp_path)
    assert "on_session_start" not in config.extra
    assert load_hook(config, "on_session_start").__name__ == "hello"
    assert load_hook(config, "on_session_end") is None
    with pytest.raises(ConfigError, match="^on_session_end: "):
        config_from_mapping({"on_session_end": "nothing"}, root=tmp_path)
    with pytest.raises(ConfigError, match="^on_session_start: module 'hooks_mod' has no attribute 'bye'"):
        load_hook(config_from_mapping({"on_session_start": "hooks_mod:bye"}, root=tmp_path), "on_session_start")


# -- the real thing: two worker processes, a user who never writes again ---------------------------

HOOKED_BOT = '''
import json, os

async def app(context):
    count = context.state["count"] + 1
    context.set_state({"count": count})
    if context.event.text == "done":
        context.log_event("order_completed", total=count)
        await context.end_session()
    await context.send_text(f"Count: {count}")

async def on_start(context):
    await context.send_text("Welcome!")

async def on_end(context):
    history = await context.history()
    with open(os.environ["ENDS_FILE"], "a") as out:
        out.write(json.dumps({"pid": os.getpid(), "key": context.session.id, "state": dict(context.state),
                              "texts": [e.get("text") for e in history if e["dir"] == "in"]}) + "\\n")
    await context.send_text(f"Bye after {context.state['count']}")
'''


def write_hooked_bot(folder: Path, api_base: str, session: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bot.py").write_text(HOOKED_BOT)
    config = folder / "bot.config.py"
    config.write_text(textwrap.dedent(f"""
        app = "bot:app"
        on_session_start = "bot:on_start"
        on_session_end = "bot:on_end"
        initial_state = {{"count": 0}}
        session = {session!r}
        channels = {{"telegram": {{"access_token": {TOKEN!r}, "secret_token": {SECRET!r}, "api_base": {api_base!r}}}}}
        server = {{"shutdown_timeout": 5}}
    """))
    return config


@pytest.fixture(params=["redis", "postgres"])
async def shared_session(request):
    """A shared store of the test's own: a Redis prefix or a PostgreSQL table, dropped afterwards."""
    if request.param == "redis":
        prefix = unique("botkit-test-") + ":"
        yield {"driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": prefix}}}
        await drop_redis_prefix(REDIS_URL, prefix)
    else:
        table = unique("botkit_test_")
        yield {"driver": "postgres", "stores": {"postgres": {"dsn": POSTGRES_DSN, "table": table}}}
        await drop_postgres_table(POSTGRES_DSN, table)


def texts(fake_api, chat: int) -> list[str]:
    return [call.json["text"] for call in fake_api.calls if call.path.endswith("/sendMessage") and call.json["chat_id"] == chat]


async def test_workers_2_end_an_expired_session_once_though_the_user_never_writes_again(fake_api, tmp_path, shared_session):
    """``expires_in`` 0.05 min (3 s) and a sweep every second (BOTKIT_SESSION_SWEEP_EVERY): the end hook
    runs once, in one of the two workers, a few seconds after the expiry; ``end_session`` ends at once;
    the stats count it all from another process."""
    import aiohttp

    ends = tmp_path / "ends.jsonl"
    config = write_hooked_bot(tmp_path / "bot", fake_api.url, {**shared_session, "expires_in": 0.05})
    env = {"BOTKIT_SESSION_SWEEP_EVERY": "1", "ENDS_FILE": str(ends)}
    loop = asyncio.get_running_loop()
    async with BotProcess(config, "--workers", "2", env=env) as bot, aiohttp.ClientSession() as http:
        script = [(1, "hi", 2), (1, "hi", 3), (2, "hi", 5), (2, "done", 7), (2, "back", 9)]
        for update_id, (chat, text, sent) in enumerate(script, 1):
            async with http.post(bot.url + "/webhooks/telegram", json=update(update_id, chat, text), headers=HEADERS) as response:
                assert response.status == 200
            await fake_api.wait_for(sent, "sendMessage", timeout=10)
        last_message = loop.time()
        while loop.time() < last_message + 15 and len(ends.read_text().splitlines() if ends.exists() else []) < 3:
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # a second end, from the other worker, would have come by now
    ended = [json.loads(line) for line in ends.read_text().splitlines()]
    by_key = sorted((end["key"], end["state"]["count"], end["texts"]) for end in ended)
    assert by_key == [("telegram:1", 2, ["hi", "hi"]), ("telegram:2", 1, ["back"]), ("telegram:2", 2, ["hi", "done"])]
    assert texts(fake_api, 1) == ["Welcome!", "Count: 1", "Count: 2", "Bye after 2"]
    assert texts(fake_api, 2) == ["Welcome!", "Count: 1", "Count: 2", "Bye after 2", "Welcome!", "Count: 1", "Bye after 1"]

    shown = run_cli("sessions", "--config", str(config), "stats", "--json")
    assert shown.returncode == 0, shown.stderr
    stats = json.loads(shown.stdout)["channels"]["telegram"]
    assert stats == {"active": 0, "started": 3, "ended": 3, "messages_in": 5, "messages_out": 11,
                     "median_duration_seconds": stats["median_duration_seconds"], "milestones": {"order_completed": 1}}


# -- the web chat: its idle reset and DELETE /api/session end the conversation the same way ----------


async def test_the_web_chats_idle_reset_ends_and_starts_like_any_session(tmp_path):
    from tests.support import Served
    from tests.test_web import Clock as WebClock
    from tests.test_web import history, new_session, texts, web_bot

    clock, journal = WebClock(), Journal()
    bot = web_bot(tmp_path, clock=clock, idle_timeout=30)
    bot.lifecycle.on_start, bot.lifecycle.on_end = journal.on_start, journal.on_end
    async with Served(bot) as served:
        session_id, token = await new_session(served)
        assert journal.starts == [], "creating the token starts no conversation"
        assert await texts(served, token, "a") == ["Welcome!", "Count: 1"]
        clock.advance(31 * 60)
        assert await texts(served, token, "b") == ["Bye after 1", "Welcome!", "Count: 1"]
        assert [(key, state) for key, state, _ in journal.ends] == [(f"web:{session_id}", {"count": 1})]
        assert len(journal.starts) == 2
        assert [e["text"] for e in await history(served, token)][-3:] == ["Bye after 1", "Welcome!", "Count: 1"]
        assert await bot.lifecycle.sweep() == 0
        response = await served.client.delete("/api/session", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 204
        assert [state for _, state, _ in journal.ends] == [{"count": 1}, {"count": 1}], "DELETE ends it"
        clock.advance(365 * 24 * 3600)
        assert await bot.lifecycle.sweep() == 0, "ended once"


async def test_stats_since_counts_only_the_last_minutes_and_prints_a_table(tmp_path):
    import time

    from botkit.storage.journal import FileJournal

    sessions = tmp_path / "sessions"
    journal = FileJournal(sessions / "_stats.jsonl")
    now = time.time()
    await journal.add([{"at": now - 3600, "channel": "telegram", "kind": "start"},
                       {"at": now - 3600, "channel": "telegram", "kind": "in", "value": 1},
                       {"at": now - 10, "channel": "telegram", "kind": "start"},
                       {"at": now - 10, "channel": "telegram", "kind": "in", "value": 2},
                       {"at": now - 5, "channel": "telegram", "kind": "milestone", "name": "paid"}])
    config = bot_folder(tmp_path / "bot", session={"driver": "file", "stores": {"file": {"dirname": str(sessions)}}})
    recent = json.loads(run_cli("sessions", "--config", str(config), "stats", "--json", "--since", "5").stdout)
    assert recent["channels"]["telegram"]["started"] == 1 and recent["channels"]["telegram"]["messages_in"] == 2
    everything = json.loads(run_cli("sessions", "--config", str(config), "stats", "--json").stdout)
    assert everything["channels"]["telegram"]["started"] == 2 and everything["channels"]["telegram"]["messages_in"] == 3
    table = run_cli("sessions", "--config", str(config), "stats").stdout.splitlines()
    assert table[0].split()[:3] == ["channel", "active", "started"]
    assert table[1].split()[:3] == ["telegram", "0", "2"] and table[2].strip() == "milestone paid: 1"
