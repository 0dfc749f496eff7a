"""Limits on every channel: ``session.rate_limit`` (a middleware counting each session's messages on the
store's shared counter) and ``session.max_state_size`` (1 MB by default)."""
from __future__ import annotations

import logging

import pytest

from botkit import Bot
from botkit.core.errors import ConfigError
from tests.support import Served, counter, make_config
from tests.test_telegram import HEADERS, SECRET, TOKEN, update

NOTICE = "Slow down: at most 5 messages a minute."


def limited_bot(fake_api, tmp_path, handler=counter, **session) -> Bot:
    config = make_config(
        tmp_path, session={"rate_limit": 5, "rate_limit_notice": NOTICE, **session},
        channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}})
    return Bot(config, handler=handler)


def texts(fake_api) -> list[str]:
    return [call.json["text"] for call in fake_api.calls_to("/sendMessage")]


async def test_the_sixth_message_in_a_minute_runs_no_handler_gets_200_and_one_notice(fake_api, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    bot = limited_bot(fake_api, tmp_path)
    async with Served(bot) as served:
        statuses = []
        for n in range(1, 10):
            response = await served.post("/webhooks/telegram", json=update(n, chat_id=77), headers=HEADERS)
            statuses.append(response.status)
        other = await served.post("/webhooks/telegram", json=update(100, chat_id=78), headers=HEADERS)
        health = await (await served.client.get("/healthz")).json()
    assert health["rate_limited"] == 4
    assert statuses == [200] * 9 and other.status == 200
    assert texts(fake_api) == [f"Count: {n}" for n in range(1, 6)] + [NOTICE, "Count: 1"]
    assert (await bot.load_session("telegram:77")).state["count"] == 5
    assert bot.rate_limit is not None and bot.rate_limit.dropped == 4
    assert "over session.rate_limit (5 messages a minute)" in caplog.text
    assert "telegram:77" not in caplog.text  # the key is masked (botkit.core.keys.shown)


async def test_a_new_window_lets_messages_through_again(fake_api, tmp_path):
    now = [1_700_000_000.0]
    config = make_config(tmp_path, session={"rate_limit": 2},
                         channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}})
    bot = Bot(config, handler=counter, clock=lambda: now[0])
    async with Served(bot) as served:
        for n in range(1, 4):
            await served.post("/webhooks/telegram", json=update(n), headers=HEADERS)
        now[0] += 61
        await served.post("/webhooks/telegram", json=update(4), headers=HEADERS)
    assert texts(fake_api) == ["Count: 1", "Count: 2", "Count: 3"]


async def test_no_limit_by_default(fake_api, tmp_path):
    config = make_config(tmp_path, channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET,
                                                           "api_base": fake_api.url}})
    bot = Bot(config, handler=counter)
    assert bot.rate_limit is None and config.session["rate_limit"] is None
    async with Served(bot) as served:
        for n in range(1, 71):
            await served.post("/webhooks/telegram", json=update(n), headers=HEADERS)
    assert len(texts(fake_api)) == 70


@pytest.mark.parametrize("setting, bad", [("rate_limit", 0), ("rate_limit", "60"), ("rate_limit", 2.5),
                                          ("rate_limit_notice", ""), ("rate_limit_notice", 5)])
def test_a_wrong_rate_limit_setting_is_one_config_error(tmp_path, setting, bad):
    with pytest.raises(ConfigError, match=f"session.{setting}"):
        make_config(tmp_path, session={setting: bad})


async def test_state_is_limited_to_1_mb_by_default(fake_api, tmp_path, caplog):
    async def handler(context):
        context.set_state({"blob": "x" * int(context.event.text)})

    config = make_config(tmp_path, channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET,
                                                           "api_base": fake_api.url}})
    assert config.session["max_state_size"] == 1024 * 1024
    bot = Bot(config, handler=handler)
    async with Served(bot) as served:
        await served.post("/webhooks/telegram", json=update(1, text="1000"), headers=HEADERS)
        await served.post("/webhooks/telegram", json=update(2, text=str(1024 * 1024)), headers=HEADERS)
    assert (await bot.load_session("telegram:16423")).state["blob"] == "x" * 1000
    assert "over session.max_state_size (1048576)" in caplog.text
