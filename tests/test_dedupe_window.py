"""Dedupe is a time window, not the last 32 ids: a redelivery or a replay of a delivery is recognised as
long as the platform could still send it (``session.dedupe_window``, widened to the channels' longest
``replay_window``), whatever the user sent in between; ids older than the window are dropped, and a
chatty session keeps at most ``HANDLED_IDS_KEPT`` of them."""
from __future__ import annotations

import hashlib
import hmac
import math
import time

import asyncpg
import orjson
import pytest

from botkit import Bot, ConfigError
from botkit.core.session import HANDLED_IDS_KEPT
from tests.stores import POSTGRES_DSN, REDIS_URL, bot_on, drop_redis_prefix, postgres_store, text_event, unique, unreachable
from tests.support import Served, counter, make_config

TOKEN = "123456:ABC-test-token"
SECRET = "s3cret-token_value"
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["redis", "postgres"])
async def shared_session(request):
    """The ``session`` settings of a shared driver over a fresh namespace."""
    if request.param == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            await client.ping()
        except Exception as exc:
            unreachable(f"Redis at {REDIS_URL}", exc)
        finally:
            await client.aclose()
        prefix = unique("botkit-test-dedupe-") + ":"
        yield {"driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": prefix}}}
        await drop_redis_prefix(REDIS_URL, prefix)
        return
    try:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=3)
    except Exception as exc:
        unreachable(f"PostgreSQL at {POSTGRES_DSN}", exc)
    table = unique("botkit_dedupe_")
    yield {"driver": "postgres", "stores": {"postgres": {"dsn": POSTGRES_DSN, "table": table}}}
    for suffix in ("_history", "", "_counters", "_inbox", "_inbox_ready"):
        await conn.execute(f'DROP TABLE IF EXISTS "{table}{suffix}" CASCADE')
    await conn.close()


def update(update_id: int, chat_id: int = 16423) -> dict:
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 1700000000, "text": f"m{update_id}",
                                                "chat": {"id": chat_id, "type": "private"}}}


ANSWER_AFTER = {"ack_within": None}
"""The webhooks answer once handled (no inbox), so that a test moving the clock knows when each ran."""


def telegram_bot(fake_api, tmp_path, session: dict, clock=time.time) -> Bot:
    channels = {"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}}
    config = make_config(tmp_path, channels=channels, session=session, http={"attempts": 1}, server=ANSWER_AFTER)
    return Bot(config, handler=counter, clock=clock)


async def post(served: Served, body: dict) -> int:
    response = await served.post("/webhooks/telegram", json=body, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    await response.read()
    return response.status


def replies(fake_api) -> list[str]:
    return [call.json["text"] for call in fake_api.calls_to("sendMessage")]


async def test_a_delivery_replayed_after_100_newer_events_of_the_same_user_is_still_a_duplicate(
        fake_api, tmp_path, shared_session):
    bot = telegram_bot(fake_api, tmp_path, shared_session)
    async with Served(bot) as served:
        for update_id in range(1, 102):
            assert await post(served, update(update_id)) == 200
        assert await post(served, update(1)) == 200  # the first delivery, captured and sent again
        assert await post(served, update(50)) == 200
        session = await bot.load_session("telegram:16423")
    assert replies(fake_api) == [f"Count: {n}" for n in range(1, 102)], "a replayed delivery ran the handler again"
    assert session.state == {"count": 101}


async def test_an_id_older_than_the_window_is_not_kept(fake_api, tmp_path, shared_session):
    clock = Clock()
    bot = telegram_bot(fake_api, tmp_path, {**shared_session, "dedupe_window": HOUR}, clock=clock)
    async with Served(bot) as served:
        start = clock.now
        assert await post(served, update(1)) == 200
        clock.now += HOUR / 2
        assert await post(served, update(2)) == 200
        clock.now += HOUR / 2 + 1
        assert await post(served, update(3)) == 200  # update 1 is now older than the window
        assert await post(served, update(2)) == 200  # within the window: still a duplicate
        record = await bot.store.load("telegram:16423")
    assert replies(fake_api) == ["Count: 1", "Count: 2", "Count: 3"]
    dedupe = record["parts"]["dedupe"]
    assert dedupe["handled"] == ["2", "3"]
    assert dedupe["at"] == [pytest.approx(start + HOUR / 2, abs=1), pytest.approx(start + HOUR + 1, abs=1)]


async def test_a_session_past_the_cap_forgets_its_oldest_ids_first(tmp_path):
    async with postgres_store(tmp_path) as store:
        bot = bot_on(store, tmp_path)
        for n in range(HANDLED_IDS_KEPT + 1):
            await bot.dispatch([text_event(bot, event_id=str(n))])
        second = await bot.dispatch([text_event(bot, event_id="1")])
        record = await store.load("test:1")
    assert second == ["duplicate"]
    assert record["parts"]["dedupe"]["handled"] == [str(n) for n in range(1, HANDLED_IDS_KEPT + 1)]
    assert len(record["parts"]["dedupe"]["at"]) == HANDLED_IDS_KEPT and record["state"] == {"count": HANDLED_IDS_KEPT + 1}


async def test_a_record_holding_a_plain_list_of_ids_still_dedupes_and_gains_the_times(tmp_path):
    async with postgres_store(tmp_path) as store:
        now = store.clock()
        await store.save({"version": 3, "key": "test:1", "created_at": now - 60, "last_activity": now - 60,
                          "expires_at": None, "state": {"count": 3}, "parts": {"dedupe": {"handled": ["a", "b", "c"]}}})
        bot = bot_on(store, tmp_path)
        outcomes = [await bot.dispatch([text_event(bot, event_id=event_id)]) for event_id in ("b", "d", "a")]
        record = await store.load("test:1")
    assert outcomes == [["duplicate"], ["handled"], ["duplicate"]]
    assert record["parts"]["dedupe"]["handled"] == ["a", "b", "c", "d"]
    assert record["parts"]["dedupe"]["at"][:3] == [math.ceil(now - 60)] * 3 and record["state"] == {"count": 4}


# -- the window covers the channels' replay windows -------------------------------------------------

WA_SECRET = "fedcba9876543210fedcba9876543210"
PHONE_NUMBER_ID = "106540352242922"


def whatsapp_delivery(message_id: str, stamp: float) -> tuple[bytes, dict[str, str]]:
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881",
                                                          "phone_number_id": PHONE_NUMBER_ID},
             "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
             "messages": [{"from": "16505551234", "id": message_id, "timestamp": str(int(stamp)), "type": "text",
                           "text": {"body": "hi"}}]}
    body = orjson.dumps({"object": "whatsapp_business_account",
                         "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]})
    signature = "sha256=" + hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}


async def test_a_whatsapp_replay_three_days_later_is_a_duplicate_as_the_channel_still_takes_it(
        fake_api, tmp_path, shared_session):
    """The Cloud API redelivers for 7 days and the channel takes deliveries up to 8 days old: the
    default 48-hour window is widened to that."""
    clock = Clock()
    channel = {"provider": "cloud", "access_token": "EAAG-token", "app_secret": WA_SECRET, "verify_token": "v",
               "phone_number_id": PHONE_NUMBER_ID, "api_base": fake_api.url}
    config = make_config(tmp_path, channels={"whatsapp": channel}, session=shared_session, http={"attempts": 1},
                         server=ANSWER_AFTER)
    bot = Bot(config, handler=counter, clock=clock)
    assert bot.policy.dedupe_window == 8 * 24 * HOUR
    captured = whatsapp_delivery("wamid.first", clock.now)
    async with Served(bot) as served:
        assert (await served.post("/webhooks/whatsapp", data=captured[0], headers=captured[1])).status == 200
        clock.now += 3 * 24 * HOUR
        later = whatsapp_delivery("wamid.later", clock.now)
        assert (await served.post("/webhooks/whatsapp", data=later[0], headers=later[1])).status == 200
        replay = await served.post("/webhooks/whatsapp", data=captured[0], headers=captured[1])
        assert replay.status == 200
    assert [call.json["text"]["body"] for call in fake_api.calls_to("/messages")] == ["Count: 1", "Count: 2"]


@pytest.mark.parametrize("window", [0, -5, "48h", True, float("inf")])
def test_a_dedupe_window_that_is_not_seconds_is_a_config_error(tmp_path, window):
    with pytest.raises(ConfigError) as error:
        make_config(tmp_path, session={"dedupe_window": window})
    assert error.value.setting == "session.dedupe_window"
