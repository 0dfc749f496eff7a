"""When things fail: a Redis that hangs or dies under load and comes back, a worker that crashes holding
a lease, a handler that outlives its lease, a lease this process could not give back."""
from __future__ import annotations

import asyncio
import logging
import signal
import time

import pytest

from botkit import Bot, StoreUnavailable
from botkit.core.errors import VersionConflict
from botkit.core.events import Event
from botkit.core.sending import Sender
from botkit.core.session import Session
from tests.stores import FACTORIES, PrivateRedis
from tests.support import Served, counter, eventually, make_config, test_bot

TOKEN = "123456:ABC-test-token"
SECRET = "s3cret-token_value"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
TIMEOUT = 1.0


def update(update_id: int, chat_id: int) -> dict:
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 1700000000, "text": "hi",
                                                "chat": {"id": chat_id, "type": "private"}}}


class Platform:
    """Eight chats, each sending its next update once the previous one got a 200, and sending the same
    update again after anything else, as Telegram does."""

    def __init__(self, served: Served, chats: int = 8) -> None:
        self.served = served
        self.chats = range(1, chats + 1)
        self.delivered = {chat: 0 for chat in self.chats}
        self.answers: list[tuple[str, int, float]] = []
        self.phase = "up"
        self.done = asyncio.Event()

    async def chat(self, chat: int) -> None:
        while not self.done.is_set():
            update_id = chat * 100_000 + self.delivered[chat] + 1
            while True:
                phase, started = self.phase, time.monotonic()
                response = await self.served.post("/webhooks/telegram", json=update(update_id, chat), headers=HEADERS)
                await response.read()
                if self.phase == phase:  # requests that straddle a change of phase tell nothing
                    self.answers.append((phase, response.status, time.monotonic() - started))
                if response.status == 200:
                    break
                await asyncio.sleep(0.05)
            self.delivered[chat] += 1

    def statuses(self, phase: str) -> set[int]:
        return {status for p, status, _ in self.answers if p == phase}

    def slowest(self, phase: str) -> float:
        return max(elapsed for p, _, elapsed in self.answers if p == phase)


async def test_redis_hung_or_down_answers_503_in_time_and_recovers_without_a_restart(tmp_path, fake_api, caplog):
    redis = await PrivateRedis(tmp_path / "redis").start()
    try:
        config = make_config(
            tmp_path,
            session={"driver": "redis", "timeout": TIMEOUT, "lock_timeout": 2,
                     "stores": {"redis": {"url": redis.url, "prefix": "outage:"}}},
            channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}},
        )
        bot = Bot(config, handler=counter)
        async with Served(bot) as served:
            platform = Platform(served)
            chats = [asyncio.ensure_future(platform.chat(chat)) for chat in platform.chats]
            await asyncio.sleep(0.5)

            platform.phase = "hung"
            redis.process.send_signal(signal.SIGSTOP)
            await asyncio.sleep(2.5)
            platform.phase = "resumed"
            redis.process.send_signal(signal.SIGCONT)
            await asyncio.sleep(1.0)

            platform.phase = "down"
            redis.kill()
            await asyncio.sleep(1.0)
            platform.phase = "restarted"
            await redis.start()
            await asyncio.sleep(1.5)

            platform.done.set()
            await asyncio.wait_for(asyncio.gather(*chats), 10)

            async def drained() -> bool:  # what was acknowledged is in the inbox; give it its turn
                return (await bot.inbox.stats()).depth == 0

            await eventually(drained, timeout=15)

        assert platform.statuses("up") == {200}
        assert platform.statuses("hung") >= {503} and platform.slowest("hung") < TIMEOUT + 0.5, platform.answers
        assert platform.statuses("down") == {503} and platform.slowest("down") < TIMEOUT + 0.5
        assert 200 in platform.statuses("resumed") and 200 in platform.statuses("restarted")
        assert platform.statuses("resumed") | platform.statuses("restarted") <= {200, 503}
        assert "answering 503" in caplog.text

        replies: dict[int, set[int]] = {}
        for call in fake_api.calls_to("/sendMessage"):
            replies.setdefault(call.json["chat_id"], set()).add(int(call.json["text"].removeprefix("Count: ")))
        async with test_bot(config, handler=counter, channels={}) as reader:
            for chat, delivered in platform.delivered.items():
                assert delivered > 5
                record = await reader.store.load(f"telegram:{chat}")
                assert record["state"] == {"count": delivered}, f"chat {chat}: an update was lost or handled twice"
                assert record["version"] == Session.from_record(record).message_count == delivered
                assert replies[chat] == set(range(1, delivered + 1))
    finally:
        redis.kill()


# -- leases ----------------------------------------------------------------------------------------


SHARED = ["redis", "postgres", "mongo"]


@pytest.fixture(params=SHARED)
async def pair(request, tmp_path):
    """Two stores over one namespace, as two processes have, with a short lease (0.3 s)."""
    async with FACTORIES[request.param](tmp_path, lock_timeout=5.0) as first:
        settings = {**first.settings, "lease": 0.3}
        one, two = type(first)(settings, clock=time.time, lock_timeout=5.0), type(first)(settings, clock=time.time, lock_timeout=5.0)
        await one.open()
        await two.open()
        yield one, two
        await one.close()
        await two.close()


def record(key: str, version: int, count: int) -> dict:
    session = Session.fresh(key, {"count": count}, time.time())
    session.version = version
    return session.to_record()


def crash(store, lease) -> None:
    """What a process that died with ``lease`` leaves behind: the lease in the store, nobody renewing it."""
    store._stop_renewing(lease.key)


async def test_a_crashed_workers_lease_runs_out_and_its_late_save_is_refused(pair):
    one, two = pair
    stale = await one.begin("test:1")
    crash(one, stale)
    started = time.monotonic()
    lease = await two.begin("test:1")
    assert 0.2 < time.monotonic() - started < 2
    await two.commit(lease, record("test:1", 1, count=2))
    with pytest.raises(VersionConflict):
        await one.commit(stale, record("test:1", 1, count=1))
    assert (await two.load("test:1"))["state"] == {"count": 2}


async def test_a_slow_handler_keeps_its_lease(pair):
    one, two = pair
    lease = await one.begin("test:1")
    waiting = asyncio.ensure_future(two.begin("test:1"))
    await asyncio.sleep(1.2)  # four leases long: renewals keep it
    assert not waiting.done(), "another process got the lease while its holder was still running"
    await one.commit(lease, record("test:1", 1, count=1))
    second = await asyncio.wait_for(waiting, 5)
    assert second.record["state"] == {"count": 1}
    await two.release(second)


async def test_a_lease_this_process_could_not_give_back_is_taken_back_at_once(pair):
    one, _ = pair
    one.lease = 30.0
    lease = await one.begin("test:1")
    crash(one, lease)  # e.g. its release failed while the store was unreachable
    started = time.monotonic()
    again = await one.begin("test:1")
    assert time.monotonic() - started < 0.5
    await one.commit(again, record("test:1", 1, count=1))


async def test_waiting_longer_than_lock_timeout_is_store_unavailable(pair):
    one, two = pair
    lease = await one.begin("test:1")
    two.lock_timeout = 0.4
    with pytest.raises(StoreUnavailable, match="stayed leased"):
        await two.begin("test:1")
    await one.release(lease)
    await one.release(lease)  # idempotent
    await two.release(await two.begin("test:1"))


async def test_a_save_after_a_lost_lease_is_refused_logged_and_the_webhook_retried(pair, tmp_path, caplog):
    one, two = pair
    one._keep_alive = lambda key: None  # a process too stalled to renew its lease
    sent = []

    async def slow(context):
        await asyncio.sleep(0.8)
        context.set_state({"count": context.state["count"] + 1})

    class Collect(Sender):
        async def send_text(self, text, **options):
            sent.append(text)

    bot = test_bot(make_config(tmp_path, session={"driver": one.name}), handler=slow, store=one, channels={})
    handling = asyncio.ensure_future(bot.dispatch([Event("test", "text", "test:1", id="7", channel="test", meta={"sender": Collect()})]))
    await asyncio.sleep(0.1)
    taken = await two.begin("test:1")  # waits out the 0.3 s lease the stalled process holds
    await two.commit(taken, record("test:1", 1, count=10))
    with caplog.at_level(logging.ERROR), pytest.raises(StoreUnavailable):
        await handling
    assert "save refused" in caplog.text
    assert (await two.load("test:1"))["state"] == {"count": 10}
