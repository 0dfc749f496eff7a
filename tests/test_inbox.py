"""The inbox's conformance suite (every engine that has one) and the answer-first webhook in one process."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from botkit import Bot
from botkit.storage.inbox import Inbox, MemoryInbox
from tests.stores import POSTGRES_DSN, postgres_store, redis_store
from tests.support import Served, eventually, make_config, test_bot
from tests.test_telegram import HEADERS, SECRET, TOKEN, update


@contextlib.asynccontextmanager
async def memory_inbox(tmp_path: Path) -> AsyncIterator[tuple[Inbox, Inbox | None]]:
    inbox = MemoryInbox()
    yield inbox, None


@contextlib.asynccontextmanager
async def redis_inbox(tmp_path: Path) -> AsyncIterator[tuple[Inbox, Inbox | None]]:
    async with redis_store(tmp_path) as store:
        first, second = store.inbox(), store.inbox()
        await first.open()
        await second.open()
        try:
            yield first, second
        finally:
            await first.close()
            await second.close()


@contextlib.asynccontextmanager
async def postgres_inbox(tmp_path: Path) -> AsyncIterator[tuple[Inbox, Inbox | None]]:
    import asyncpg

    async with postgres_store(tmp_path) as store:
        first, second = store.inbox(), store.inbox()
        await first.open()
        await second.open()
        try:
            yield first, second
        finally:
            await first.close()
            await second.close()
            conn = await asyncpg.connect(POSTGRES_DSN)
            try:
                table = store.settings["table"]
                await conn.execute(f'DROP TABLE IF EXISTS "{table}_inbox"; DROP TABLE IF EXISTS "{table}_inbox_ready"')
            finally:
                await conn.close()


@contextlib.asynccontextmanager
async def file_inbox(tmp_path: Path) -> AsyncIterator[tuple[Inbox, Inbox | None]]:
    from botkit.storage.inbox.file import FileInbox

    first, second = FileInbox(tmp_path / "sessions"), FileInbox(tmp_path / "sessions")  # two processes' view
    await first.open()
    yield first, second


@contextlib.asynccontextmanager
async def mongo_inbox(tmp_path: Path) -> AsyncIterator[tuple[Inbox, Inbox | None]]:
    from tests.stores import mongo_store

    async with mongo_store(tmp_path) as store:
        first, second = store.inbox(), store.inbox()
        await first.open()
        yield first, second


INBOXES = {"memory": memory_inbox, "file": file_inbox, "redis": redis_inbox, "postgres": postgres_inbox,
           "mongo": mongo_inbox}


@pytest.fixture(params=sorted(INBOXES))
async def inboxes(request: Any, tmp_path: Path) -> AsyncIterator[tuple[Inbox, Inbox | None]]:
    async with INBOXES[request.param](tmp_path) as pair:
        yield pair


def event(n: int, key: str = "test:1") -> tuple[str, dict[str, Any]]:
    return key, {"platform": "test", "type": "text", "session_key": key, "text": f"m{n}", "id": str(n)}


async def test_a_session_is_claimed_with_its_entries_in_arrival_order(inboxes):
    inbox, _ = inboxes
    now = time.time()
    await inbox.put([event(1), event(2, "test:2")], now)
    await inbox.put([event(3)], now)
    claims = {claim.key: claim for claim in await inbox.claim("a", now, now + 10, 10)}
    assert sorted(claims) == ["test:1", "test:2"]
    assert [entry.event["text"] for entry in claims["test:1"].entries] == ["m1", "m3"]
    assert (await inbox.stats()).depth == 3


async def test_a_leased_session_is_not_claimed_twice_and_acked_entries_are_gone(inboxes):
    inbox, other = inboxes
    now = time.time()
    await inbox.put([event(1), event(2)], now)
    [claim] = await inbox.claim("a", now, now + 10, 10)
    assert await (other or inbox).claim("b", now, now + 10, 10) == []
    for entry in claim.entries:
        await inbox.ack(claim.key, entry.id)
    await inbox.release("a", claim, now)
    assert await (other or inbox).claim("b", now + 1, now + 11, 10) == []
    stats = await inbox.stats()
    assert stats.depth == 0 and stats.oldest is None


async def test_entries_put_while_a_session_is_handled_are_claimed_after_its_release(inboxes):
    inbox, other = inboxes
    now = time.time()
    await inbox.put([event(1)], now)
    [claim] = await inbox.claim("a", now, now + 10, 10)
    await (other or inbox).put([event(2)], now)  # arrives while the first is being handled
    await inbox.ack(claim.key, claim.entries[0].id)
    await inbox.release("a", claim, now)
    [again] = await (other or inbox).claim("b", now, now + 10, 10)
    assert [entry.event["text"] for entry in again.entries] == ["m2"]


async def test_a_dead_owners_session_is_taken_over_once_its_lease_runs_out(inboxes):
    inbox, other = inboxes
    now = time.time()
    await inbox.put([event(1), event(2)], now)
    [claim] = await inbox.claim("dead", now, now + 5, 10)
    await inbox.ack(claim.key, claim.entries[0].id)  # handled one, then died
    assert await (other or inbox).claim("b", now + 4, now + 14, 10) == []
    [taken] = await (other or inbox).claim("b", now + 6, now + 16, 10)
    assert [entry.event["text"] for entry in taken.entries] == ["m2"]


async def test_extend_keeps_a_long_handlers_lease(inboxes):
    inbox, other = inboxes
    now = time.time()
    await inbox.put([event(1)], now)
    [claim] = await inbox.claim("a", now, now + 5, 10)
    await inbox.extend("a", [claim.key], now + 20)
    await inbox.extend("someone else", [claim.key], now + 1)  # not theirs: no effect
    assert await (other or inbox).claim("b", now + 10, now + 20, 10) == []


async def test_release_with_a_later_ready_time_retries_then(inboxes):
    inbox, _ = inboxes
    now = time.time()
    await inbox.put([event(1)], now)
    [claim] = await inbox.claim("a", now, now + 5, 10)
    await inbox.release("a", claim, now + 2)  # the store failed: try again in 2 s
    assert await inbox.claim("a", now + 1, now + 5, 10) == []
    [again] = await inbox.claim("a", now + 2, now + 6, 10)
    assert again.entries[0].event["text"] == "m1"


async def test_stats_give_depth_and_the_oldest_arrival(inboxes):
    inbox, _ = inboxes
    await inbox.put([event(1)], 1000.0)
    await inbox.put([event(2, "test:2")], 1005.0)
    stats = await inbox.stats()
    assert stats.depth == 2 and stats.oldest == pytest.approx(1000.0)


async def test_text_with_a_nul_character_waits_in_the_inbox(inboxes):
    inbox, _ = inboxes
    now = time.time()
    key, data = event(1)
    data["text"] = "a\u0000b"
    await inbox.put([(key, data)], now)
    [claim] = await inbox.claim("a", now, now + 5, 10)
    assert claim.entries[0].event["text"] == "a\u0000b"


# -- the answer-first webhook, one process ------------------------------------------------------------

def telegram_bot(fake_api: Any, tmp_path: Path, handler: Any, **server: Any) -> Bot:
    config = make_config(tmp_path, server=server,
                         channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}})
    return Bot(config, handler=handler)


def slow(seconds: float) -> Any:
    async def handler(context: Any) -> None:
        await asyncio.sleep(seconds)
        count = context.state["count"] + 1
        context.set_state({"count": count})
        await context.send_text(f"Count: {count}")

    return handler


async def test_a_slow_handler_is_answered_within_ack_within_and_its_reply_follows(fake_api, tmp_path):
    loop = asyncio.get_running_loop()
    async with Served(telegram_bot(fake_api, tmp_path, slow(1.5), ack_within=0.2)) as served:
        started = loop.time()
        response = await served.post("/webhooks/telegram", json=update(1, 7), headers=HEADERS)
        answered = loop.time() - started
        assert response.status == 200 and answered < 0.2 + 0.3
        assert fake_api.calls_to("/sendMessage") == []
        [reply] = await fake_api.wait_for(1, "/sendMessage", timeout=5)
        assert reply.json["text"] == "Count: 1"


async def test_ack_within_none_answers_after_the_handler(fake_api, tmp_path):
    loop = asyncio.get_running_loop()
    async with Served(telegram_bot(fake_api, tmp_path, slow(0.6), ack_within=None)) as served:
        started = loop.time()
        response = await served.post("/webhooks/telegram", json=update(1, 7), headers=HEADERS)
        assert response.status == 200 and loop.time() - started >= 0.6
        assert [c.json["text"] for c in fake_api.calls_to("/sendMessage")] == ["Count: 1"]


async def test_a_channel_overrides_the_servers_ack_within(fake_api, tmp_path):
    config = make_config(tmp_path, server={"ack_within": None}, channels={"telegram": {
        "access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url, "ack_within": 0.1}})
    loop = asyncio.get_running_loop()
    async with Served(Bot(config, handler=slow(1.0))) as served:
        started = loop.time()
        assert (await served.post("/webhooks/telegram", json=update(1, 7), headers=HEADERS)).status == 200
        assert loop.time() - started < 0.5


async def test_messages_of_one_chat_are_handled_in_order_while_other_chats_run_alongside(fake_api, tmp_path):
    seen: list[tuple[int, str]] = []

    async def handler(context: Any) -> None:
        chat = context.event.raw["message"]["chat"]["id"]
        await asyncio.sleep(0.3 if context.event.text == "1" else 0.01)
        seen.append((chat, context.event.text))
        await context.send_text(context.event.text)

    loop = asyncio.get_running_loop()
    async with Served(telegram_bot(fake_api, tmp_path, handler, ack_within=0.05)) as served:
        started = loop.time()
        for n in range(1, 6):
            for chat in (1, 2, 3):
                response = await served.post("/webhooks/telegram", json=update(chat * 100 + n, chat, str(n)), headers=HEADERS)
                assert response.status == 200
        await fake_api.wait_for(15, "/sendMessage", timeout=10)
        elapsed = loop.time() - started
    for chat in (1, 2, 3):
        assert [text for who, text in seen if who == chat] == ["1", "2", "3", "4", "5"]
    assert elapsed < 0.3 * 3, "the chats' slow first messages ran one after another"


async def test_a_store_failure_while_handling_is_503_so_the_platform_redelivers(fake_api, tmp_path):
    from botkit import StoreUnavailable

    bot = telegram_bot(fake_api, tmp_path, slow(0), ack_within=1.0)
    real_begin = bot.store.begin
    failing = [True]

    async def begin(key: str) -> Any:
        if failing[0]:
            raise StoreUnavailable("the store is away")
        return await real_begin(key)

    bot.store.begin = begin  # type: ignore[method-assign]
    bot.worker.retry_in = 0.1  # type: ignore[union-attr]
    async with Served(bot) as served:
        response = await served.post("/webhooks/telegram", json=update(1, 7), headers=HEADERS)
        assert response.status == 503
        failing[0] = False
        await fake_api.wait_for(1, "/sendMessage", timeout=5)  # the stored entry is retried
        assert (await served.post("/webhooks/telegram", json=update(1, 7), headers=HEADERS)).status == 200
        await asyncio.sleep(0.3)
    assert [c.json["text"] for c in fake_api.calls_to("/sendMessage")] == ["Count: 1"]


async def test_healthz_shows_the_inbox(fake_api, tmp_path):
    async with Served(telegram_bot(fake_api, tmp_path, slow(1.0), ack_within=0)) as served:
        await served.post("/webhooks/telegram", json=update(1, 7), headers=HEADERS)
        health = await (await served.get("/healthz")).json()
        assert health["inbox"]["depth"] == 1 and health["inbox"]["oldest_age_seconds"] >= 0


async def test_a_proactive_send_and_a_scheduled_step_take_their_turn_in_the_inbox(tmp_path):
    from botkit import Flows
    from botkit.core.sending import Sender

    flows = Flows()
    order: list[str] = []

    @flows.state("chat")
    async def chat(context: Any) -> None:
        if context.event.type == "scheduled":
            order.append("step")
            return
        order.append(f"message {context.event.text}")
        await asyncio.sleep(0.3)
        await context.step_to_in(0.05, "chat", "chat")

    class Recording(Sender):
        async def send_text(self, text: str, **options: Any) -> None:
            order.append(f"sent {text}")

    bot = test_bot(make_config(tmp_path, initial_state={}), handler=flows, channels={})
    bot.channels["test"].pushes["test:1"] = Recording()
    from botkit.core.events import Event

    async with bot:
        accepted = bot.accept([Event("test", "text", "test:1", text="hi", id="1", channel="test")], [])
        handling = asyncio.ensure_future(accepted)
        await asyncio.sleep(0.05)
        await bot.send_text("test:1", "news")  # waits for its turn, after the message
        await handling
        await eventually(lambda: "step" in order)
    assert order == ["message hi", "sent news", "step"]



async def test_the_file_journal_outlives_the_process_and_a_torn_last_line(tmp_path):
    from botkit.storage.inbox.file import JOURNAL, FileInbox

    inbox = FileInbox(tmp_path)
    await inbox.open()
    now = time.time()
    await inbox.put([event(1), event(2)], now)
    [claim] = await inbox.claim("a", now, now + 5, 10)
    await inbox.ack(claim.key, claim.entries[0].id)
    with open(tmp_path / JOURNAL, "ab") as journal:
        journal.write(b'{"o":"put","id":"99","k":"te')  # the process died mid-write
    restarted = FileInbox(tmp_path)
    [taken] = await restarted.claim("b", now + 6, now + 16, 10)  # the dead owner's lease ran out
    assert [entry.event["text"] for entry in taken.entries] == ["m2"]
    await restarted.put([event(3)], now + 7)
    assert (await FileInbox(tmp_path).stats()).depth == 2


async def test_a_large_file_journal_is_rewritten_as_what_still_waits(tmp_path, monkeypatch):
    from botkit.storage.inbox import file as file_inbox_module

    monkeypatch.setattr(file_inbox_module, "COMPACT_AT", 2000)
    inbox = file_inbox_module.FileInbox(tmp_path)
    await inbox.open()
    now = time.time()
    for n in range(1, 40):
        await inbox.put([event(n)], now)
        [claim] = await inbox.claim("a", now, now + 5, 10)
        await inbox.ack(claim.key, claim.entries[0].id)
        await inbox.release("a", claim, now)
    await inbox.put([event(40)], now)
    assert (tmp_path / file_inbox_module.JOURNAL).stat().st_size < 2000 + 500
    [claim] = await file_inbox_module.FileInbox(tmp_path).claim("b", now, now + 5, 10)
    assert [entry.event["text"] for entry in claim.entries] == ["m40"]


async def test_a_handled_notice_that_comes_before_its_webhook_waits_is_kept_for_it():
    """Another worker may finish an entry before the webhook's process heard back from its own put."""
    from botkit.app.waiting import Waiters
    from botkit.engine.dispatcher import Outcome

    waiters = Waiters()
    waiters.early("7", Outcome.HANDLED, [{"type": "text", "text": "hi"}], time.time())
    [waiter] = waiters.add(["7"])
    assert waiter.future.result() is Outcome.HANDLED and waiter.inband == [{"type": "text", "text": "hi"}]
