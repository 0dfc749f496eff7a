"""Scheduled steps (step_to_in, step_to_at) and proactive sends, against a fake Telegram API, the file
driver, Redis on 127.0.0.1 and `botkit start --workers 2` as real processes."""
from __future__ import annotations

import asyncio
import io
import logging
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from botkit import Bot, load_config
from botkit.core.events import Event
from botkit.core.keys import shown
from botkit.core.sending import Sender
from botkit.engine.scheduler import Scheduler
from botkit.flows.router import Flows
from botkit.flows.steps import run_step
from botkit.shell.console import Console
from botkit.storage.steps import Step
from botkit.storage.steps.redis import RedisStepStore
from tests.support import BotProcess, Served, eventually, make_config, test_bot
from tests.test_telegram import HEADERS, SECRET, TOKEN, update

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/0"
CHAT = 16423
KEY = f"telegram:{CHAT}"


@pytest.fixture
async def redis_prefix():
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def reminder_flows(delay: Callable[[Any], Any] | None = None, **step: Any) -> Flows:
    """Any message schedules reminder->ping; ``delay(context)`` says when (``step_to_in`` seconds, or a
    datetime for ``step_to_at``)."""
    flows = Flows()
    when_of = delay or (lambda context: 1)

    @flows.state("chat")
    async def listen(context):
        when = when_of(context)
        if isinstance(when, datetime):
            await context.step_to_at(when, "reminder", "ping", **step)
        else:
            await context.step_to_in(when, "reminder", "ping", **step)
        context.update_session_to("chat", "listen")

    @flows.state("reminder")
    async def ping(context):
        await context.send_text(f"ping ({context.event.type})")
        context.update_session_to("chat", "listen")

    return flows


def telegram_bot(fake_api, tmp_path: Path, handler, driver: str = "memory", **session: Any) -> Bot:
    session = {"driver": driver, "stores": {"file": {"dirname": str(tmp_path / "sessions")}}, **session}
    config = make_config(
        tmp_path, initial_state={}, session=session,
        channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}},
    )
    return Bot(config, handler=handler)


async def post(served: Served, update_id: int = 1, chat_id: int = CHAT, text: str = "hi") -> None:
    response = await served.post("/webhooks/telegram", json=update(update_id, chat_id, text), headers=HEADERS)
    assert response.status == 200


def redis_scheduler(bot: Bot, prefix: str) -> Scheduler:
    """Steps in Redis for a bot whose sessions are elsewhere (as two services sharing one Redis)."""
    return Scheduler(RedisStepStore(REDIS_URL, prefix), partial(run_step, bot.run), clock=bot.clock, lease=90.0)


class Quiet(Sender):
    async def send_text(self, text: str, **options: Any) -> None:
        pass


async def tell(bot: Bot, text: str = "hi", key: str = "test:1", **event: Any) -> None:
    """A message from a user of an in-process conversation (as the console sends them)."""
    await bot.dispatch([Event("test", "text", key, text=text, channel="test", meta={"sender": Quiet()}, **event)])


def pings(fake_api) -> list[Any]:
    return [call.json for call in fake_api.calls_to("sendMessage")]


# -- when steps run ------------------------------------------------------------------------------------


async def test_step_to_in_runs_the_state_about_that_much_later_and_pushes_once(fake_api, tmp_path):
    bot = telegram_bot(fake_api, tmp_path, reminder_flows(lambda context: 1))
    loop = asyncio.get_running_loop()
    async with Served(bot) as served:
        await post(served)
        scheduled = loop.time()
        assert pings(fake_api) == []
        await fake_api.wait_for(1, "sendMessage", timeout=5)
        elapsed = loop.time() - scheduled
        await asyncio.sleep(0.5)
        session = await bot.load_session(KEY)
    assert 0.8 <= elapsed < 2.0
    assert pings(fake_api) == [{"chat_id": CHAT, "text": "ping (scheduled)"}]
    assert (session.slug, session.previous_slug) == ("chat->listen", "reminder->ping")
    assert [(entry["dir"], entry.get("text")) for entry in await session.load_history()] == [("in", "hi"), ("out", "ping (scheduled)")]


async def test_step_to_in_takes_a_timedelta(fake_api, tmp_path):
    bot = telegram_bot(fake_api, tmp_path, reminder_flows(lambda context: timedelta(milliseconds=300)))
    async with Served(bot) as served:
        await post(served)
        await fake_api.wait_for(1, "sendMessage", timeout=5)


async def test_step_to_at_a_past_time_runs_at_once(fake_api, tmp_path):
    past = datetime.now(UTC) - timedelta(hours=1)
    bot = telegram_bot(fake_api, tmp_path, reminder_flows(lambda context: past))
    loop = asyncio.get_running_loop()
    async with Served(bot) as served:
        started = loop.time()
        await post(served)
        await fake_api.wait_for(1, "sendMessage", timeout=5)
        assert loop.time() - started < 0.5


async def test_step_to_at_a_future_aware_time_in_any_zone(fake_api, tmp_path):
    zone = timezone(timedelta(hours=-5))
    bot = telegram_bot(fake_api, tmp_path, reminder_flows(lambda context: datetime.now(zone) + timedelta(seconds=0.5)))
    async with Served(bot) as served:
        await post(served)
        await asyncio.sleep(0.2)
        assert pings(fake_api) == []
        await fake_api.wait_for(1, "sendMessage", timeout=5)


async def test_a_naive_datetime_or_a_wrong_delay_is_refused_with_a_clear_error(tmp_path):
    errors: list[BaseException] = []
    flows = Flows()

    @flows.state("chat")
    async def listen(context):
        for call in (lambda: context.step_to_at(datetime.now(), "chat", "listen"),
                     lambda: context.step_to_at("2030-01-01T09:00:00Z", "chat", "listen"),
                     lambda: context.step_to_in("10", "chat", "listen"),
                     lambda: context.step_to_in(5, "chat", "typo")):
            try:
                await call()
            except Exception as exc:
                errors.append(exc)

    bot = test_bot(make_config(tmp_path), handler=flows, channels={})
    async with bot:
        await tell(bot)
        assert await bot.scheduler.pending() == []
    naive, text, delay, typo = errors
    assert isinstance(naive, ValueError) and "needs an aware datetime" in str(naive) and "naive (no tzinfo)" in str(naive)
    assert isinstance(text, TypeError) and "takes a datetime, not str" in str(text)
    assert isinstance(delay, TypeError) and "seconds (a number) or a timedelta" in str(delay)
    assert "no state chat->typo" in str(typo)


# -- when the session changed before the step was due -----------------------------------------------------


async def test_a_step_due_after_its_session_expired_is_dropped(fake_api, tmp_path, caplog):
    caplog.set_level(logging.INFO, "botkit")
    # Sessions expire after 0.02 min (1.2 s) of inactivity; the step is due in 2 s.
    bot = telegram_bot(fake_api, tmp_path, reminder_flows(lambda context: 2), expires_in=0.02)
    async with Served(bot) as served:
        await post(served)
        assert "is due in 2s, after session.expires_in (0.02 min)" in caplog.text
        stored = await bot.store.load(KEY)
        await eventually(lambda: "the session it was scheduled in has expired" in caplog.text, timeout=5)
        assert await bot.scheduler.pending() == []
        assert await bot.store.load(KEY) == stored, "a dropped step leaves the expired record as it was"
    assert pings(fake_api) == []


async def test_a_step_scheduled_in_an_expired_session_does_not_reach_the_next_session(fake_api, tmp_path, caplog):
    caplog.set_level(logging.INFO, "botkit")
    bot = telegram_bot(fake_api, tmp_path, reminder_flows(lambda context: 2 if context.event.text == "first" else 3600),
                       expires_in=0.02)
    async with Served(bot) as served:
        await post(served, 1, text="first")
        await asyncio.sleep(1.4)  # expired: the next message starts a new session
        await post(served, 2, text="second")
        await eventually(lambda: "has expired" in caplog.text, timeout=5)
    assert pings(fake_api) == []


async def test_a_step_still_runs_when_the_user_moved_on_unless_asked_not_to(fake_api, tmp_path, caplog):
    caplog.set_level(logging.INFO, "botkit")
    flows = Flows()

    @flows.state("quiz")
    async def ask(context):
        await context.step_to_in(0.7, "quiz", "reminder")
        await context.step_to_in(0.4, "quiz", "nudge", unless_moved=True)
        context.update_session_to("quiz", "answer")

    @flows.state("quiz")
    async def answer(context):
        context.update_session_to("quiz", "done")

    @flows.state("quiz")
    async def done(context):
        pass

    @flows.state("quiz")
    async def reminder(context):
        await context.send_text("your appointment is now")

    @flows.state("quiz")
    async def nudge(context):
        await context.send_text("still there?")

    bot = telegram_bot(fake_api, tmp_path, flows)
    async with Served(bot) as served:
        await post(served, 1)
        await post(served, 2)  # answered: the session moved on from quiz->answer to quiz->done
        await fake_api.wait_for(1, "sendMessage", timeout=5)
        await eventually(lambda: "moved on" in caplog.text, timeout=5)
        session = await bot.load_session(KEY)
    assert [ping["text"] for ping in pings(fake_api)] == ["your appointment is now"]
    assert f"step to quiz->nudge for {shown(KEY)} dropped: the session moved on from quiz->answer to quiz->done" in caplog.text
    assert (session.slug, session.previous_slug) == ("quiz->reminder", "quiz->done")


async def test_a_handler_that_raises_schedules_nothing(fake_api, tmp_path):
    flows = Flows()

    @flows.state("chat")
    async def listen(context):
        await context.step_to_in(0, "chat", "listen")
        raise RuntimeError("after scheduling")

    bot = telegram_bot(fake_api, tmp_path, flows)
    async with Served(bot) as served:
        await post(served)
        assert await bot.scheduler.pending() == []


async def test_a_redelivered_event_schedules_its_step_once(tmp_path):
    flows = Flows()

    @flows.state("chat")
    async def listen(context):
        await context.step_to_in(3600, "chat", "listen")

    bot = test_bot(make_config(tmp_path, session={"driver": "file", "stores": {"file": {"dirname": str(tmp_path)}}}),
              handler=flows, channels={})
    async with bot:
        for _ in range(2):  # the first save was lost: the platform sends the same update again
            await tell(bot, id="update-7")
            await bot.store.delete("test:1")
        assert len(await bot.scheduler.pending()) == 1


# -- durable steps: restarts, several processes -------------------------------------------------------


async def test_file_driver_a_bot_stopped_before_the_step_is_due_runs_it_once_after_restart(fake_api, tmp_path):
    flows = reminder_flows(lambda context: 1)
    async with Served(telegram_bot(fake_api, tmp_path, flows, driver="file")) as served:
        await post(served)
    await asyncio.sleep(1.2)
    assert pings(fake_api) == []
    restarted = telegram_bot(fake_api, tmp_path, flows, driver="file")
    async with Served(restarted):
        await fake_api.wait_for(1, "sendMessage", timeout=5)
        await asyncio.sleep(0.5)
        assert await restarted.scheduler.pending() == []
    assert pings(fake_api) == [{"chat_id": CHAT, "text": "ping (scheduled)"}]


async def test_redis_a_bot_stopped_before_the_step_is_due_runs_it_once_after_restart(fake_api, tmp_path, redis_prefix):
    flows = reminder_flows(lambda context: 1)

    def bot() -> Bot:
        made = telegram_bot(fake_api, tmp_path, flows, driver="file",
                            stores={"file": {"dirname": str(tmp_path / "s")}, "redis": {"url": REDIS_URL, "prefix": redis_prefix}})
        made.scheduler = redis_scheduler(made, redis_prefix)
        return made

    async with Served(bot()) as served:
        await post(served)
    [(due, step)] = await redis_pending(redis_prefix)
    assert step.key == KEY and step.slug == "reminder->ping"
    await asyncio.sleep(1.2)
    again = bot()
    async with Served(again):
        await fake_api.wait_for(1, "sendMessage", timeout=5)
        await asyncio.sleep(0.5)
    assert pings(fake_api) == [{"chat_id": CHAT, "text": "ping (scheduled)"}]
    assert await redis_pending(redis_prefix) == []


async def redis_pending(prefix: str) -> list[tuple[float, Step]]:
    store = RedisStepStore(REDIS_URL, prefix)
    await store.open()
    try:
        return await store.steps()
    finally:
        await store.close()


async def test_redis_several_schedulers_run_each_step_exactly_once(redis_prefix):
    ran: Counter[str] = Counter()

    def worker() -> Scheduler:
        async def run(step: Step) -> None:
            ran[step.id] += 1
            await asyncio.sleep(0.01)

        return Scheduler(RedisStepStore(REDIS_URL, redis_prefix), run, concurrency=8)

    workers = [worker() for _ in range(4)]
    for scheduler in workers:
        await scheduler.start()
    try:
        now = time.time()
        for n in range(60):
            await workers[n % 4].add(Step(f"s{n}", f"test:{n}", "a->b", now + (n % 6) * 0.1, now, now))
        await eventually(lambda: sum(ran.values()) >= 60, timeout=10)
        await asyncio.sleep(0.5)
    finally:
        for scheduler in workers:
            await scheduler.stop()
    assert ran == Counter({f"s{n}": 1 for n in range(60)})
    assert await redis_pending(redis_prefix) == []


async def test_a_step_whose_claimer_died_after_sending_is_not_sent_again(fake_api, tmp_path, redis_prefix):
    """The step ran and its session was saved, but the process died before forgetting it: once the lease
    runs out another process claims it, and the session's handled ids make it a duplicate."""
    bot = telegram_bot(fake_api, tmp_path, reminder_flows(), driver="file",
                       stores={"file": {"dirname": str(tmp_path / "s")}, "redis": {"url": REDIS_URL, "prefix": redis_prefix}})
    bot.scheduler = redis_scheduler(bot, redis_prefix)
    bot.scheduler.lease = 0.3
    async with Served(bot) as served:
        await post(served)  # schedules reminder->ping in 1 s
        [(_, step)] = await bot.scheduler.pending()
        store = bot.scheduler.store
        claimed, _ = await store.claim(step.due + 0.01, bot.clock() + 0.3, 10)  # "the dead process"
        assert [s.id for s in claimed] == [step.id]
        await run_step(bot.run, step)
        assert len(pings(fake_api)) == 1
        await eventually(lambda: _empty(bot), timeout=5)
    assert len(pings(fake_api)) == 1


async def _empty(bot: Bot) -> bool:
    return await bot.scheduler.pending() == []


WORKERS_BOT = '''
from botkit.flows.router import Flows

flows = Flows()


@flows.state("chat")
async def listen(context):
    await context.step_to_in(5 if context.event.text == "later" else 2, "reminder", "ping")


@flows.state("reminder")
async def ping(context):
    await context.send_text("ping")
    context.update_session_to("chat", "listen")
'''


def write_workers_bot(folder: Path, api_base: str, prefix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bot.py").write_text(WORKERS_BOT)
    config = folder / "bot.config.py"
    config.write_text(textwrap.dedent(f"""
        app = "bot:flows"
        session = {{"driver": "redis", "stores": {{"redis": {{"url": {REDIS_URL!r}, "prefix": {prefix!r}}}}}}}
        channels = {{"telegram": {{"access_token": {TOKEN!r}, "secret_token": {SECRET!r}, "api_base": {api_base!r}}}}}
        server = {{"shutdown_timeout": 5}}
    """))
    return config


async def test_workers_2_run_a_step_once_about_2s_later_and_after_a_restart(fake_api, tmp_path, redis_prefix):
    import aiohttp

    config = write_workers_bot(tmp_path / "bot", fake_api.url, redis_prefix)
    loop = asyncio.get_running_loop()
    async with BotProcess(config, "--workers", "2") as bot, aiohttp.ClientSession() as http:
        async with http.post(bot.url + "/webhooks/telegram", json=update(1, 1), headers=HEADERS) as response:
            assert response.status == 200
        posted = loop.time()
        await fake_api.wait_for(1, "sendMessage", timeout=10)
        elapsed = loop.time() - posted
        await asyncio.sleep(1.5)  # a second worker running it too would have sent by now
    assert 1.5 <= elapsed < 4.0
    assert pings(fake_api) == [{"chat_id": 1, "text": "ping"}]

    # A step due in 5 s; the bot stops (in about 2 s) before it is due and starts again after.
    async with BotProcess(config, "--workers", "2") as bot, aiohttp.ClientSession() as http:
        async with http.post(bot.url + "/webhooks/telegram", json=update(2, 2, "later"), headers=HEADERS) as response:
            assert response.status == 200
        posted = loop.time()
    assert loop.time() - posted < 4.5, "the bot took too long to stop for this test"
    assert len(pings(fake_api)) == 1
    await asyncio.sleep(max(0.0, posted + 5.5 - loop.time()))
    async with BotProcess(config, "--workers", "2"):
        await fake_api.wait_for(2, "sendMessage", timeout=10)
        await asyncio.sleep(1.5)
    assert pings(fake_api) == [{"chat_id": 1, "text": "ping"}, {"chat_id": 2, "text": "ping"}]


# -- warnings -----------------------------------------------------------------------------------------


async def test_start_up_warns_about_steps_due_after_the_session_expiry(tmp_path, caplog):
    flows = reminder_flows(lambda context: 600)
    session = {"driver": "file", "expires_in": 1, "stores": {"file": {"dirname": str(tmp_path / "s")}}}
    bot = test_bot(make_config(tmp_path, initial_state={}, session=session), handler=flows, channels={})
    async with bot:
        await tell(bot)
    assert "is due in 600s, after session.expires_in (1 min)" in caplog.text
    caplog.clear()
    async with test_bot(make_config(tmp_path, initial_state={}, session=session), handler=flows, channels={}):
        pass
    assert "1 scheduled step(s) are due more than session.expires_in (1 min) from now" in caplog.text


# -- proactive messages and the console ----------------------------------------------------------------


async def test_a_script_sends_proactively_with_a_bot_built_from_its_config(fake_api, tmp_path):
    (tmp_path / "bot.py").write_text("async def app(context):\n    pass\n")
    (tmp_path / "bot.config.py").write_text(textwrap.dedent(f"""
        app = "bot:app"
        session = {{"driver": "file", "stores": {{"file": {{"dirname": "sessions"}}}}}}
        channels = {{"telegram": {{"access_token": {TOKEN!r}, "secret_token": {SECRET!r}, "api_base": {fake_api.url!r}}}}}
    """))
    async with Bot(load_config(tmp_path / "bot.config.py")) as bot:
        await bot.send_text("telegram:777", "Your order has shipped.")
        await bot.send("telegram:777", "image", "https://example.com/box.png", caption="on its way")
    assert [(call.path, call.json) for call in fake_api.calls] == [
        (f"/bot{TOKEN}/sendMessage", {"chat_id": 777, "text": "Your order has shipped."}),
        (f"/bot{TOKEN}/sendPhoto", {"chat_id": 777, "photo": "https://example.com/box.png", "caption": "on its way"}),
    ]
    async with Bot(load_config(tmp_path / "bot.config.py")) as bot:
        session = await bot.load_session("telegram:777")
        history = await session.load_history()
    assert [(entry["dir"], entry["type"], entry.get("text")) for entry in history] == [
        ("out", "text", "Your order has shipped."), ("out", "image", "https://example.com/box.png")]


async def test_the_console_shows_a_scheduled_message_when_it_fires(tmp_path):
    flows = reminder_flows(lambda context: 0.3)
    out = io.StringIO()
    bot = test_bot(make_config(tmp_path, initial_state={}), handler=flows, channels={})
    console = Console(bot, user="ada", out=out)
    async with bot:
        await console.answer("remind me")
        assert "ping" not in out.getvalue()
        await eventually(lambda: "Bot > ping (scheduled)" in out.getvalue(), timeout=3)
