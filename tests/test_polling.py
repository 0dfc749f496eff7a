"""`botkit start --polling` as a user runs it: a real subprocess long-polling a fake Bot API on 127.0.0.1."""
from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import aiohttp

from botkit.testing.bot_api import FakeBotAPI
from tests.support import BotProcess, eventually

TOKEN = "42:TEST"
CHAT = 7
BOT = '''
import asyncio


async def app(context):
    if context.event.type != "text":
        return
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await asyncio.sleep(0.2)  # a handler that takes a while: the update must not be acknowledged before it ends
    await context.send_text(f"{count}: {context.event.text}")
'''


def write_bot(folder: Path, api_base: str, driver: str = "memory") -> Path:
    (folder / "bot.py").write_text(BOT)
    config = folder / "bot.config.py"
    config.write_text(textwrap.dedent(f"""
        app = "bot:app"
        initial_state = {{"count": 0}}
        session = {{"driver": {driver!r}, "stores": {{"file": {{"dirname": "sessions"}}}}}}
        channels = {{
            "telegram": {{"access_token": {TOKEN!r}, "secret_token": "unused-when-polling", "api_base": {api_base!r}}},
            "web": {{}},
        }}
        server = {{"shutdown_timeout": 10}}
    """))
    return config


def texts(api: FakeBotAPI) -> list[str]:
    return [sent["text"] for sent in api.sent]


def acknowledged_only_once_handled(api: FakeBotAPI) -> None:
    """Every getUpdates that acknowledged update N (offset > N) came after the reply to N was sent."""
    for call in api.calls_to("getUpdates"):
        offset = call.payload.get("offset")
        if call.status == 200 and isinstance(offset, int):
            assert call.sent_before >= offset - 1, f"offset {offset} acknowledged with {call.sent_before} replies sent"


async def test_polling_handles_in_order_acknowledges_after_handling_and_rides_out_502s(tmp_path):
    async with FakeBotAPI(TOKEN, webhook="https://example.com/hook") as api:
        for n in range(1, 4):  # waiting before the bot starts, as after a restart
            await api.add_text(CHAT, f"m{n}")
        api.fail(3)  # the first calls (deleteWebhook included) meet a 502
        bot = await BotProcess(write_bot(tmp_path, api.url), "--polling").start()
        try:
            await api.wait_sent(3)
            assert texts(api) == ["1: m1", "2: m2", "3: m3"]
            assert api.webhook == "", "the webhook was deleted, else Telegram refuses getUpdates"
            assert [call.status for call in api.calls[:3]] == [502, 502, 502]

            api.fail(4)  # the Bot API is down for a while, then comes back
            for n in range(4, 7):
                await api.add_text(CHAT, f"m{n}")
            await api.wait_sent(6)
            assert texts(api) == ["1: m1", "2: m2", "3: m3", "4: m4", "5: m5", "6: m6"]
            assert sum(call.status == 502 for call in api.calls) == 7

            async with aiohttp.ClientSession() as http:  # the other channels keep their webhooks
                async with http.post(bot.url + "/api/session") as response:
                    assert response.status == 201
                    token = (await response.json())["token"]
                async with http.post(bot.url + "/api/chat", json={"text": "web"},
                                     headers={"Authorization": f"Bearer {token}"}) as response:
                    assert response.status == 200
                    assert [m["text"] for m in (await response.json())["messages"]] == ["1: web"]
        finally:
            assert await bot.stop() == 0
        acknowledged_only_once_handled(api)
        assert api.confirmed == 7, "what was handled is acknowledged at shutdown"
        assert b"Traceback" not in bot.output, bot.output.decode()


async def test_a_restart_does_not_handle_an_update_twice(tmp_path):
    """The file driver's inbox keeps an update across a crash, so it is acknowledged once stored there."""
    async with FakeBotAPI(TOKEN) as api:
        config = write_bot(tmp_path, api.url, driver="file")
        for round_ in (1, 2):
            async with BotProcess(config, "--polling"):
                await api.add_text(CHAT, f"m{round_}")
                await api.wait_sent(round_)
        await eventually(lambda: api.confirmed == 3)
        assert texts(api) == ["1: m1", "2: m2"]


async def test_polling_without_a_telegram_channel_is_a_config_error(tmp_path):
    (tmp_path / "bot.py").write_text(BOT)
    config = tmp_path / "bot.config.py"
    config.write_text('app = "bot:app"\ninitial_state = {"count": 0}\nchannels = {"web": {}}\n')
    process = await asyncio.create_subprocess_exec(
        "python3", "-m", "botkit", "start", "--polling", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    assert process.returncode == 2
    assert err.decode().strip().splitlines() == [
        "botkit: config error: --polling: polls Telegram's getUpdates: add a telegram channel to bot.config.py"]


async def test_polling_from_several_workers_is_refused(tmp_path):
    config = write_bot(tmp_path, "http://127.0.0.1:9")
    process = await asyncio.create_subprocess_exec(
        "python3", "-m", "botkit", "start", "--polling", "--workers", "2", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    assert process.returncode == 2
    assert err.decode().strip().startswith("botkit: config error: --polling: Telegram hands updates to one poller")


async def test_updates_the_store_could_not_take_are_fetched_again(tmp_path):
    from botkit import Bot
    from botkit.adapters.telegram_polling import TelegramPoller
    from botkit.app.config import config_from_mapping
    from botkit.core.errors import StoreUnavailable

    async def echo(context):
        await context.send_text(f"got {context.event.text}")

    async with FakeBotAPI(TOKEN) as api:
        settings = {"access_token": TOKEN, "secret_token": "s", "api_base": api.url}
        bot = Bot(config_from_mapping({"channels": {"telegram": settings}}, root=tmp_path), handler=echo)
        outage = [2]

        async def dispatch(events, inband):
            if outage[0]:
                outage[0] -= 1
                raise StoreUnavailable("redis is down")
            return await bot.dispatch(events, inband)

        async with bot:
            poller = TelegramPoller(bot.channels["telegram"], dispatch, sleep=lambda seconds: asyncio.sleep(0))
            await api.add_text(CHAT, "m1")
            poller.start()
            await api.wait_sent(1)
            await poller.stop()
        assert texts(api) == ["got m1"]
        offsets = [call.payload.get("offset") for call in api.calls_to("getUpdates")]
        assert offsets[:3] == [None, None, None], "asked again from the start while the store was down"
        acknowledged_only_once_handled(api)
        assert api.confirmed == 2
