"""Human mode and the desk API against the real aiohttp server, a Telegram user on the fake Bot API."""
from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from urllib.parse import quote

import pytest

from botkit import Bot, ConfigError
from tests.support import Served, make_config

TOKEN = "123456:ABC-test-token"
SECRET = "s3cret-token_value"
DESK = "desk-secret-for-tests"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
AUTH = {"Authorization": f"Bearer {DESK}"}
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "handoff" / "bot.py"


def example_app():
    spec = importlib.util.spec_from_file_location("handoff_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def update(update_id: int, text: str, chat_id: int = 42) -> dict:
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 1700000000, "text": text,
                                                "chat": {"id": chat_id, "type": "private"},
                                                "from": {"id": chat_id, "is_bot": False, "first_name": "Ada"}}}


def handoff_bot(fake_api, tmp_path, **settings) -> Bot:
    settings.setdefault("desk", {"secret": DESK})
    config = make_config(tmp_path, channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET,
                                                          "api_base": fake_api.url}},
                         initial_state={}, http={"attempts": 2, "backoff": 0.01}, **settings)
    return Bot(config, handler=example_app())


def sent_texts(fake_api) -> list[str]:
    return [call.json["text"] for call in fake_api.calls_to("/sendMessage")]


async def until(check, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


KEY = quote("telegram:42", safe="")


async def test_a_conversation_goes_to_a_human_and_back(fake_api, tmp_path):
    bot = handoff_bot(fake_api, tmp_path)
    async with Served(bot) as served:
        async def post(update_id: int, text: str) -> None:
            response = await served.post("/webhooks/telegram", json=update(update_id, text), headers=HEADERS)
            assert response.status == 200

        await post(1, "hello")
        await post(2, "human")
        await fake_api.wait_for(2, "/sendMessage")
        session = await bot.load_session("telegram:42")
        assert session.human and session.handoff["reason"] == "asked for a human"

        async with served.get("/desk/api/conversations", headers=AUTH) as response:
            assert response.status == 200
            [listed] = (await response.json())["conversations"]
        assert listed["session_key"] == "telegram:42" and listed["channel"] == "telegram"
        assert listed["reason"] == "asked for a human" and listed["claimed_by"] is None

        await post(3, "is anybody there?")
        async with served.get(f"/desk/api/conversations/{KEY}", headers=AUTH) as response:
            conversation = await response.json()
        assert [m.get("text") for m in conversation["messages"]][:2] == ["hello", sent_texts(fake_api)[0]]
        assert conversation["messages"][-1]["text"] == "is anybody there?"
        assert len(sent_texts(fake_api)) == 2, "the bot answered while a human held the conversation"

        async with served.post(f"/desk/api/conversations/{KEY}/claim", json={"agent": "ana"}, headers=AUTH) as response:
            assert response.status == 200
        async with served.post(f"/desk/api/conversations/{KEY}/claim", json={"agent": "bo"}, headers=AUTH) as response:
            assert response.status == 409
        async with served.post(f"/desk/api/conversations/{KEY}/reply", json={"agent": "bo", "text": "me!"},
                               headers=AUTH) as response:
            assert response.status == 409
        async with served.post(f"/desk/api/conversations/{KEY}/reply", json={"agent": "ana", "text": "Hi, Ana here."},
                               headers=AUTH) as response:
            assert response.status == 200
        assert sent_texts(fake_api)[-1] == "Hi, Ana here."
        assert fake_api.calls_to("/sendMessage")[-1].json["chat_id"] == 42

        async with served.post(f"/desk/api/conversations/{KEY}/handback", json={"agent": "ana"}, headers=AUTH) as response:
            assert response.status == 200
        assert sent_texts(fake_api)[-1].startswith("You are back with the bot")
        await post(4, "thanks")
        await fake_api.wait_for(5, "/sendMessage")
        session = await bot.load_session("telegram:42")
        assert not session.human
        assert session.state["seen"] == ["text", "text", "handback", "text"]
        history = await session.load_history()
        assert {"dir": "out", "text": "Hi, Ana here.", "agent": "ana"}.items() <= history[-4].items()
        async with served.get("/desk/api/conversations", headers=AUTH) as response:
            assert (await response.json())["conversations"] == []


async def test_the_desk_refuses_requests_without_its_secret(fake_api, tmp_path):
    async with Served(handoff_bot(fake_api, tmp_path)) as served:
        for method, path in [("GET", "/desk/api/conversations"), ("GET", f"/desk/api/conversations/{KEY}"),
                             ("POST", f"/desk/api/conversations/{KEY}/claim"), ("GET", "/desk/api/events"),
                             ("POST", f"/desk/api/conversations/{KEY}/reply"),
                             ("POST", f"/desk/api/conversations/{KEY}/handback")]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": DESK}):
                async with served.client.request(method, path, json={"agent": "x", "text": "y"}, headers=headers) as response:
                    assert response.status == 401, (method, path, headers)
        async with served.get("/desk/") as response:
            assert response.status == 200 and "Agent desk" in await response.text()


async def test_the_desk_streams_what_the_user_writes(fake_api, tmp_path):
    bot = handoff_bot(fake_api, tmp_path)
    async with Served(bot) as served:
        await served.post("/webhooks/telegram", json=update(1, "human"), headers=HEADERS)
        async with served.get("/desk/api/events", headers=AUTH) as events:
            assert events.status == 200 and events.content_type == "text/event-stream"
            assert await events.content.readuntil(b"\n\n") == b"event: ready\ndata: {}\n\n"
            await served.post("/webhooks/telegram", json=update(2, "my order is late"), headers=HEADERS)
            chunk = await asyncio.wait_for(events.content.readuntil(b"\n\n"), 10)
        assert b'"kind":"message"' in chunk and b"my order is late" in chunk and b'"session_key":"telegram:42"' in chunk


async def test_a_handoff_nobody_answers_goes_back_to_the_bot_after_the_timeout(fake_api, tmp_path):
    now = [1_700_000_000.0]
    config = make_config(tmp_path, channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET,
                                                          "api_base": fake_api.url}},
                         initial_state={}, desk={"secret": DESK, "timeout": 5})
    bot = Bot(config, handler=example_app(), clock=lambda: now[0])
    async with Served(bot) as served:
        await served.post("/webhooks/telegram", json=update(1, "human"), headers=HEADERS)
        await served.post("/webhooks/telegram", json=update(2, "hello?"), headers=HEADERS)
        assert len(sent_texts(fake_api)) == 1
        now[0] += 5 * 60
        async with served.get("/desk/api/conversations", headers=AUTH) as response:
            assert (await response.json())["conversations"] == []
        await served.post("/webhooks/telegram", json=update(3, "still there?"), headers=HEADERS)
        await fake_api.wait_for(3, "/sendMessage")
        assert sent_texts(fake_api)[1].startswith("You are back with the bot")
        assert sent_texts(fake_api)[2].startswith("Bot: you said 'still there?'")
        session = await bot.load_session("telegram:42")
        assert session.state["seen"] == ["text", "handback", "text"] and not session.human


async def test_messenger_hands_the_thread_to_the_page_inbox_and_takes_it_back(fake_api, tmp_path):
    from tests.test_messenger import APP_SECRET, TOKEN as PAGE_TOKEN, VERIFY_TOKEN, message, post, webhook

    config = make_config(tmp_path, channels={"messenger": {
        "access_token": PAGE_TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "api_base": fake_api.url,
        "handover_app_id": "263902037430900"}}, initial_state={}, desk={"secret": DESK})
    bot = Bot(config, handler=example_app())
    async with Served(bot) as served:
        response = await post(served, webhook(message("human")))
        assert response.status == 200
        await until(lambda: _called(fake_api, "/me/pass_thread_control"))
        [passed] = fake_api.calls_to("/me/pass_thread_control")
        assert passed.json["target_app_id"] == "263902037430900" and passed.json["recipient"]["id"]
        [listed] = (await (await served.get("/desk/api/conversations", headers=AUTH)).json())["conversations"]
        key = quote(listed["session_key"], safe="")
        async with served.post(f"/desk/api/conversations/{key}/handback", json={"agent": "ana"}, headers=AUTH) as response:
            assert response.status == 200
        await until(lambda: _called(fake_api, "/me/take_thread_control"))
        assert fake_api.calls_to("/me/take_thread_control")[0].json["recipient"] == passed.json["recipient"]


async def _called(fake_api, path: str) -> bool:
    return bool(fake_api.calls_to(path))


@pytest.mark.parametrize(("desk", "setting"), [
    ({}, "desk.secret"), ({"secret": DESK, "timeout": 0}, "desk.timeout"), ({"secret": DESK, "path": "desk"}, "desk.path"),
    ({"secret": DESK, "colour": "red"}, "desk.colour"),
])
def test_desk_setting_mistakes_name_the_setting(tmp_path, desk, setting):
    with pytest.raises(ConfigError) as raised:
        make_config(tmp_path, desk=desk)
    assert raised.value.setting == setting


def test_the_desk_takes_the_web_channels_jwt_key_and_is_no_custom_setting(tmp_path):
    config = make_config(tmp_path, desk={}, channels={"web": {"jwt_key": "a-long-hs256-key"}})
    assert config.desk["secret"] == "a-long-hs256-key" and "desk" not in config.extra


async def test_the_list_of_handed_off_conversations_is_no_session_in_listings_or_stats(fake_api, tmp_path):
    """The desk keeps its list beside the sessions; `botkit sessions list` and the stats show conversations only."""
    from botkit.engine.stats import active_sessions

    bot = handoff_bot(fake_api, tmp_path, session={"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "s")}}})
    async with Served(bot) as served:
        await served.post("/webhooks/telegram", json=update(1, "human"), headers=HEADERS)
        await fake_api.wait_for(1, "/sendMessage")
        async with served.get("/desk/api/conversations", headers=AUTH) as response:
            assert len((await response.json())["conversations"]) == 1
        assert await active_sessions(bot.store, bot.clock()) == {"telegram": 1}
    (tmp_path / "bot.config.py").write_text(
        f"session = {{'driver': 'file', 'stores': {{'file': {{'dirname': {str(tmp_path / 's')!r}}}}}}}\n")
    from tests.stores import run_cli

    listed = run_cli("sessions", "list", "--config", str(tmp_path / "bot.config.py"))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["telegram:42"]
