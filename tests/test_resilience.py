"""Resilience: a platform's retries, 429 and 5xx storms, a platform that stops answering, fuzzed bodies on
every channel, bodies over the size limit.

The short form runs by default (CI); ``BOTKIT_FULL=1`` runs the full form: 1,000 fuzzed bodies per channel
instead of 50, bigger storms, and the tests marked ``slow``. (A session store restarted under load is
tests/test_store_outage.py's subject.)
"""
from __future__ import annotations

import asyncio
import collections
import os
import random

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings

from botkit import Bot, SendError
from tests.fuzz_bodies import CHANNELS, LiveBot, Spec, channel_ids
from tests.support import Served, make_config

FULL = os.environ.get("BOTKIT_FULL") == "1"
FUZZ_EXAMPLES = 1000 if FULL else 50
full_only = pytest.mark.skipif(not FULL, reason="full form only: set BOTKIT_FULL=1")

TOKEN = "123456:resilience"
SECRET = "resilience-secret"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


def update(update_id: int, chat_id: int = 16423, text: str = "hi") -> dict:
    chat = {"id": chat_id, "type": "private"}
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 1700000000, "chat": chat,
                                                "from": {"id": chat_id, "is_bot": False, "first_name": "Ada"}, "text": text}}


def telegram_bot(fake_api, tmp_path, handler, session=None, **http) -> Bot:
    config = make_config(
        tmp_path,
        channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}},
        http={"attempts": 3, "backoff": 0.01, "max_wait": 0.05, **http},
        session=session or {},
    )
    return Bot(config, handler=handler)


class CountingBot:
    """The counting bot, noting which sends failed for good (the handler then raises: the session is
    left as it was and the platform still gets its 200)."""

    def __init__(self, pause: float = 0.0) -> None:
        self.pause = pause
        self.gave_up: collections.Counter[int] = collections.Counter()

    async def __call__(self, context) -> None:
        count = context.state["count"] + 1
        context.set_state({"count": count})
        if self.pause:
            await asyncio.sleep(self.pause)
        try:
            await context.send_text(f"Count: {count}")
        except SendError:
            self.gave_up[context.event.meta["chat_id"]] += 1
            raise


# -- a platform's retries ---------------------------------------------------------------------------------

async def test_a_retry_while_the_first_delivery_is_still_running_is_handled_once(fake_api, tmp_path):
    bot = telegram_bot(fake_api, tmp_path, CountingBot(pause=0.05))
    async with Served(bot) as served:
        copies = [served.post("/webhooks/telegram", json=update(77), headers=HEADERS) for _ in range(5)]
        responses = await asyncio.gather(*copies, served.post("/webhooks/telegram", json=update(78), headers=HEADERS))
        assert [r.status for r in responses] == [200] * 6
        assert (await bot.store.load("telegram:16423"))["state"] == {"count": 2}
    assert sorted(c.json["text"] for c in fake_api.calls) == ["Count: 1", "Count: 2"]


async def test_a_retry_after_a_restart_is_still_handled_once(fake_api, tmp_path):
    session = {"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "sessions")}}}
    for update_id in (5, 5, 6):  # each delivery reaches a freshly started bot over the same store
        async with Served(telegram_bot(fake_api, tmp_path, CountingBot(), session)) as served:
            assert (await served.post("/webhooks/telegram", json=update(update_id), headers=HEADERS)).status == 200
    assert [c.json["text"] for c in fake_api.calls] == ["Count: 1", "Count: 2"]


def live_channel(spec: Spec) -> Spec:
    reason = spec.available()
    if reason:
        pytest.skip(reason)
    return spec


@pytest.mark.parametrize("spec", CHANNELS, ids=channel_ids(CHANNELS))
def test_every_channel_acknowledges_a_redelivered_event_without_handling_it_again(spec, tmp_path):
    with LiveBot(live_channel(spec), tmp_path) as live:
        assert live.post_valid(1) == 200
        assert live.post_valid(1) == 200
        assert live.handled == 1
        assert live.post_valid(2) == 200
        assert live.handled == 2


# -- 429 and 5xx storms -------------------------------------------------------------------------------------

class Storm:
    """The Bot API failing its first ``failures`` calls (429 with retry_after, a 5xx, or a dropped
    connection), then answering again; every call is noted as (chat, text, answered)."""

    def __init__(self, kind: str, failures: int, rng: random.Random | None = None, rate: float = 1.0) -> None:
        self.kind = kind
        self.left = failures
        self.rng = rng
        self.rate = rate
        self.log: list[tuple[int, str, bool]] = []

    async def __call__(self, request: web.Request, call) -> web.StreamResponse:
        body = call.json
        failing = self.left > 0 and (self.rng is None or self.rng.random() < self.rate)
        self.log.append((body["chat_id"], body["text"], not failing))
        if not failing:
            return web.json_response({"ok": True, "result": {"message_id": len(self.log)}})
        self.left -= 1
        if self.kind == "dropped":
            request.transport.close()
            return web.Response()
        if self.kind == "429":
            return web.json_response({"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 0",
                                      "parameters": {"retry_after": 0.01}}, status=429)
        return web.json_response({"ok": False, "error_code": int(self.kind), "description": "storm"}, status=int(self.kind))

    def check(self, bot: CountingBot, attempts: int, chats: int, per_chat: int) -> dict[int, int]:
        """Each chat's calls, in order, are sends that succeeded after fewer than ``attempts`` failures or
        gave up after exactly ``attempts``, as often as its handler saw SendError; its replies count 1, 2, …
        without a gap or a repeat. Returns each chat's count of delivered replies."""
        delivered = {}
        for chat in range(1, chats + 1):
            calls = [(text, answered) for c, text, answered in self.log if c == chat]
            failures_in_a_row, gave_up, replies = 0, 0, []
            for text, answered in calls:
                if answered:
                    replies.append(text)
                    failures_in_a_row = 0
                    continue
                failures_in_a_row += 1
                if failures_in_a_row == attempts:
                    gave_up, failures_in_a_row = gave_up + 1, 0
            assert failures_in_a_row == 0, f"chat {chat}: a send stopped retrying early"
            assert gave_up == bot.gave_up[chat], f"chat {chat}: SendError without {attempts} failed attempts"
            assert replies == [f"Count: {n}" for n in range(1, len(replies) + 1)], f"chat {chat}: {replies}"
            assert len(replies) + gave_up == per_chat
            delivered[chat] = len(replies)
        return delivered


async def storm_run(fake_api, tmp_path, storm: Storm, chats: int, per_chat: int, attempts: int = 3) -> None:
    fake_api.on("sendMessage", handler=storm)
    counting = CountingBot()
    bot = telegram_bot(fake_api, tmp_path, counting, attempts=attempts)
    async with Served(bot) as served:
        posts = [served.post("/webhooks/telegram", json=update(chat * 1000 + n, chat_id=chat), headers=HEADERS)
                 for n in range(per_chat) for chat in range(1, chats + 1)]
        assert {r.status for r in await asyncio.gather(*posts)} == {200}
        delivered = storm.check(counting, attempts, chats, per_chat)
        for chat, count in delivered.items():
            record = await bot.store.load(f"telegram:{chat}")
            assert (record["state"]["count"] if record else 0) == count
        assert sum(counting.gave_up.values()) > 0 and sum(delivered.values()) > 0
        assert (await served.get("/healthz")).status == 200
        storm.left = 0  # the platform is back
        assert (await served.post("/webhooks/telegram", json=update(10**9, chat_id=1), headers=HEADERS)).status == 200
        assert storm.log[-1] == (1, f"Count: {delivered[1] + 1}", True)


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "dropped"])
async def test_a_storm_of_failures_gives_send_error_after_the_attempts_and_corrupts_no_session(fake_api, tmp_path, kind):
    chats, per_chat = (50, 20) if FULL else (10, 5)
    await storm_run(fake_api, tmp_path, Storm(kind, failures=chats * per_chat), chats, per_chat)


@pytest.mark.slow
@full_only
@pytest.mark.parametrize("kind", ["429", "503"])
async def test_a_long_patchy_outage_under_load(fake_api, tmp_path, kind):
    """Two thousand updates over a hundred chats while half the calls fail, at random, for a long while."""
    storm = Storm(kind, failures=2_000, rng=random.Random(7), rate=0.5)
    await storm_run(fake_api, tmp_path, storm, chats=100, per_chat=20, attempts=4)


# -- a platform that stops answering --------------------------------------------------------------------------

async def test_a_platform_that_stops_answering_times_out_into_send_error_and_the_server_keeps_serving(fake_api, tmp_path):
    answering = asyncio.Event()

    async def hang(request, call):
        await answering.wait()
        return web.json_response({"ok": True, "result": {}})

    fake_api.on("sendMessage", handler=hang)
    caught: list[SendError] = []

    async def handler(context):
        count = context.state["count"] + 1
        context.set_state({"count": count})
        try:
            await context.send_text(f"Count: {count}")
        except SendError as exc:
            caught.append(exc)
            raise

    chats = 20 if FULL else 3
    bot = telegram_bot(fake_api, tmp_path, handler, timeout=0.3, attempts=2)
    try:
        async with Served(bot) as served:
            loop = asyncio.get_running_loop()
            started = loop.time()
            webhooks = asyncio.gather(*(served.post("/webhooks/telegram", json=update(chat, chat_id=chat), headers=HEADERS)
                                        for chat in range(1, chats + 1)))
            await fake_api.wait_for(chats, "sendMessage")
            health = await served.get("/healthz")
            assert health.status == 200 and (await health.json())["in_flight"] == chats
            responses = await asyncio.wait_for(webhooks, 30)
            assert [r.status for r in responses] == [200] * chats
            assert loop.time() - started >= 2 * 0.3  # each send waited out both attempts' timeouts
            assert len(caught) == chats and all(exc.status is None and "Timeout" in str(exc) for exc in caught)
            assert len(fake_api.calls_to("sendMessage")) == 2 * chats
            for chat in range(1, chats + 1):
                assert await bot.store.load(f"telegram:{chat}") is None  # left as it was: no session yet
            answering.set()
            assert (await served.post("/webhooks/telegram", json=update(100, chat_id=1), headers=HEADERS)).status == 200
            assert fake_api.calls[-1].json == {"chat_id": 1, "text": "Count: 1"}
    finally:
        answering.set()


# -- fuzzed bodies ----------------------------------------------------------------------------------------

FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=not FULL,
                suppress_health_check=list(HealthCheck))


SIGNED_ANSWERS = {200, 400, 413}
"""A signed body reaches the parser: 400 unless it is an event (200); 413 when a huge field took it over
server.client_max_size."""


@pytest.mark.parametrize("spec", CHANNELS, ids=channel_ids(CHANNELS))
def test_fuzzed_bodies_get_a_4xx_run_no_handler_and_leave_the_server_serving(spec, tmp_path):
    with LiveBot(live_channel(spec), tmp_path) as live:
        answers: collections.Counter[int] = collections.Counter()

        @FUZZ
        @given(body=spec.bodies())
        def signed(body: bytes) -> None:
            handled = live.handled
            status = live.post(body)
            answers[status] += 1
            assert status in (SIGNED_ANSWERS if spec.signable(body) else SIGNED_ANSWERS | {401}), f"{status} for {body!r}"
            if status != 200:
                assert live.handled == handled, f"a handler ran for a {status}: {body!r}"

        @settings(FUZZ, max_examples=max(10, FUZZ_EXAMPLES // 5))
        @given(body=spec.bodies())
        def unsigned(body: bytes) -> None:
            handled = live.handled
            assert live.post(body, signed=False) in (401, 413), repr(body)  # 413: over the limit, never read
            assert live.handled == handled

        signed()
        unsigned()
        assert live.crashes == []
        assert answers[400] > 0, answers
        handled = live.handled
        assert live.post_valid(10**6) == 200 and live.handled == handled + 1


@pytest.mark.parametrize("spec", CHANNELS, ids=channel_ids(CHANNELS))
def test_a_body_over_client_max_size_is_413_and_runs_no_handler(spec, tmp_path):
    limit = 64 * 1024
    with LiveBot(live_channel(spec), tmp_path, server={"client_max_size": limit}) as live:
        over, at = padded(spec, 1, limit + 1), padded(spec, 2, limit)
        assert live.post(over) == 413
        assert live.handled == 0
        assert live.post(at) not in (413, 500)
        assert live.post_valid(3) == 200
        assert live.handled >= 1


def padded(spec: Spec, n: int, size: int) -> bytes:
    """A valid body of exactly ``size`` bytes: a field the platform does not define, filled up."""
    doc = spec.valid(n)
    doc["padding"] = ""
    bare = len(spec.encode(doc))
    doc["padding"] = "x" * (size - bare)
    body = spec.encode(doc)
    assert len(body) == size
    return body
