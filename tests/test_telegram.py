"""The Telegram adapter against the real aiohttp server and a fake Bot API on 127.0.0.1.

This file is the pattern every channel's tests follow: a signed request runs the handler and the
outbound call matches the platform's API; a bad signature is 401 and runs nothing; a foreign body is 400.
"""
from __future__ import annotations

import asyncio

import pytest

from botkit import Bot, SendError
from tests.support import Served, counter, make_config

TOKEN = "123456:ABC-test-token"
SECRET = "s3cret-token_value"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


def update(update_id: int = 1, chat_id: int = 16423, text: str = "hi", **extra) -> dict:
    message = {"message_id": update_id, "date": 1700000000, "chat": {"id": chat_id, "type": "private"},
               "from": {"id": chat_id, "is_bot": False, "first_name": "Ada"}}
    if text is not None:
        message["text"] = text
    message.update(extra)
    return {"update_id": update_id, "message": message}


def telegram_bot(fake_api, tmp_path, handler=counter, **http) -> Bot:
    config = make_config(
        tmp_path,
        channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}},
        http={"attempts": 3, "backoff": 0.01, **http},
    )
    return Bot(config, handler=handler)


async def test_signed_update_answers_through_send_message(fake_api, tmp_path):
    async with Served(telegram_bot(fake_api, tmp_path)) as served:
        response = await served.post("/webhooks/telegram", json=update(), headers=HEADERS)
        assert response.status == 200
    [call] = fake_api.calls
    assert call.method == "POST" and call.path == f"/bot{TOKEN}/sendMessage"
    assert call.json == {"chat_id": 16423, "text": "Count: 1"}


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}])
async def test_missing_or_wrong_secret_is_401_and_runs_nothing(fake_api, tmp_path, headers):
    ran = []

    async def handler(context):
        ran.append(context.event)

    async with Served(telegram_bot(fake_api, tmp_path, handler)) as served:
        response = await served.post("/webhooks/telegram", json=update(), headers=headers)
        assert response.status == 401
    assert ran == [] and fake_api.calls == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"message": {}}', b'{"update_id": "7"}'])
async def test_a_body_that_is_not_an_update_is_400(fake_api, tmp_path, body):
    async with Served(telegram_bot(fake_api, tmp_path)) as served:
        response = await served.post("/webhooks/telegram", data=body, headers=HEADERS)
        assert response.status == 400
    assert fake_api.calls == []


async def test_one_chat_100_concurrent_updates_counts_to_100(fake_api, tmp_path):
    bot = telegram_bot(fake_api, tmp_path)
    async with Served(bot) as served:
        responses = await asyncio.gather(*(
            served.post("/webhooks/telegram", json=update(n), headers=HEADERS) for n in range(1, 101)))
        assert [r.status for r in responses] == [200] * 100
        assert (await bot.store.load("telegram:16423"))["state"] == {"count": 100}
    texts = sorted(int(c.json["text"].split()[1]) for c in fake_api.calls)
    assert texts == list(range(1, 101))


async def test_50_chats_20_messages_each(fake_api, tmp_path):
    bot = telegram_bot(fake_api, tmp_path)
    async with Served(bot) as served:
        await asyncio.gather(*(
            served.post("/webhooks/telegram", json=update(chat * 100 + n, chat_id=chat), headers=HEADERS)
            for n in range(20) for chat in range(1, 51)))
        for chat in range(1, 51):
            assert (await bot.store.load(f"telegram:{chat}"))["state"] == {"count": 20}


async def test_the_same_update_id_twice_is_handled_once(fake_api, tmp_path):
    async with Served(telegram_bot(fake_api, tmp_path)) as served:
        for _ in range(2):
            assert (await served.post("/webhooks/telegram", json=update(77), headers=HEADERS)).status == 200
    assert [c.json["text"] for c in fake_api.calls] == ["Count: 1"]


async def test_a_raising_handler_still_answers_200(fake_api, tmp_path, caplog):
    async def broken(context):
        context.set_state({"count": 99})
        raise ValueError("oops in handler")

    bot = telegram_bot(fake_api, tmp_path, broken)
    async with Served(bot) as served:
        response = await served.post("/webhooks/telegram", json=update(), headers=HEADERS)
        assert response.status == 200
        assert await bot.store.load("telegram:16423") is None
    assert "oops in handler" in caplog.text and "Traceback" in caplog.text


@pytest.mark.parametrize("message, kind, check", [
    ({"text": "hello"}, "text", lambda e: e.text == "hello"),
    ({"text": None, "photo": [{"file_id": "small"}, {"file_id": "big"}]}, "image", lambda e: e.data["file_id"] == "big"),
    ({"text": None, "voice": {"file_id": "v"}}, "audio", lambda e: e.data["file_id"] == "v"),
    ({"text": None, "video": {"file_id": "v"}}, "video", lambda e: True),
    ({"text": None, "document": {"file_id": "d"}}, "file", lambda e: True),
    ({"text": None, "sticker": {"file_id": "s"}}, "sticker", lambda e: True),
    ({"text": None, "location": {"latitude": 52.5, "longitude": 13.4}}, "location", lambda e: e.data["latitude"] == 52.5),
])
async def test_messages_become_typed_events(fake_api, tmp_path, message, kind, check):
    seen = []

    async def handler(context):
        seen.append(context.event)

    body = update(text=message.pop("text"), **message)
    async with Served(telegram_bot(fake_api, tmp_path, handler)) as served:
        await served.post("/webhooks/telegram", json=body, headers=HEADERS)
    [event] = seen
    assert event.type == kind and check(event)
    assert event.session_key == "telegram:16423" and event.user_id == "16423" and event.id == "1"
    assert event.raw == body


async def test_other_updates_become_payload_edited_follow_unfollow_unknown(fake_api, tmp_path):
    seen = []

    async def handler(context):
        seen.append((context.event.type, context.event.payload, context.event.session_key))

    chat = {"id": 5, "type": "private"}
    user = {"id": 5, "is_bot": False, "first_name": "A"}
    bodies = [
        {"update_id": 1, "callback_query": {"id": "cq1", "from": user, "data": "BUY", "message": {"message_id": 3, "chat": chat}}},
        {"update_id": 2, "edited_message": {"message_id": 3, "date": 1, "chat": chat, "text": "fixed"}},
        {"update_id": 3, "my_chat_member": {"chat": chat, "from": user, "date": 1, "old_chat_member": {"status": "left"}, "new_chat_member": {"status": "member"}}},
        {"update_id": 4, "my_chat_member": {"chat": chat, "from": user, "date": 1, "old_chat_member": {"status": "member"}, "new_chat_member": {"status": "kicked"}}},
        {"update_id": 5, "poll": {"id": "p", "question": "?"}},
    ]
    async with Served(telegram_bot(fake_api, tmp_path, handler)) as served:
        first = await served.post("/webhooks/telegram", json=bodies[0], headers=HEADERS)
        assert await first.json() == {"method": "answerCallbackQuery", "callback_query_id": "cq1"}
        for body in bodies[1:]:
            assert (await served.post("/webhooks/telegram", json=body, headers=HEADERS)).status == 200
    assert seen == [("payload", "BUY", "telegram:5"), ("edited", None, "telegram:5"), ("follow", None, "telegram:5"),
                    ("unfollow", None, "telegram:5"), ("unknown", None, "telegram:_")]


async def test_photo_typing_and_buttons_call_the_bot_api(fake_api, tmp_path):
    async def handler(context):
        await context.send_typing()
        await context.send_image("https://example.com/cat.png", caption="cat")
        await context.send_buttons("Pick one", [("Yes", "YES"), {"title": "Docs", "url": "https://example.com"}])

    async with Served(telegram_bot(fake_api, tmp_path, handler)) as served:
        await served.post("/webhooks/telegram", json=update(), headers=HEADERS)
    assert [c.path.rsplit("/", 1)[1] for c in fake_api.calls] == ["sendChatAction", "sendPhoto", "sendMessage"]
    assert fake_api.calls[0].json == {"chat_id": 16423, "action": "typing"}
    assert fake_api.calls[1].json == {"chat_id": 16423, "photo": "https://example.com/cat.png", "caption": "cat"}
    assert fake_api.calls[2].json["reply_markup"] == {"inline_keyboard": [
        [{"text": "Yes", "callback_data": "YES"}], [{"text": "Docs", "url": "https://example.com"}]]}


async def test_429_is_retried_after_retry_after(fake_api, tmp_path):
    fake_api.on("sendMessage", 429, {"ok": False, "error_code": 429, "parameters": {"retry_after": 1}}, times=1)
    loop = asyncio.get_running_loop()
    async with Served(telegram_bot(fake_api, tmp_path)) as served:
        started = loop.time()
        assert (await served.post("/webhooks/telegram", json=update(), headers=HEADERS)).status == 200
        elapsed = loop.time() - started
    assert len(fake_api.calls) == 2 and elapsed >= 1.0


async def test_a_send_that_keeps_failing_raises_send_error_in_the_handler(fake_api, tmp_path):
    fake_api.on("sendMessage", 500, {"ok": False, "description": "Internal Server Error"})
    caught = []

    async def handler(context):
        try:
            await context.send_text("hello")
        except SendError as exc:
            caught.append(exc)

    async with Served(telegram_bot(fake_api, tmp_path, handler)) as served:
        assert (await served.post("/webhooks/telegram", json=update(), headers=HEADERS)).status == 200
    assert len(fake_api.calls) == 3
    assert caught[0].status == 500 and caught[0].body == {"ok": False, "description": "Internal Server Error"}
    assert TOKEN not in str(caught[0]), "the bot token never lands in errors or logs"


async def test_a_400_from_the_platform_is_not_retried(fake_api, tmp_path):
    fake_api.on("sendMessage", 400, {"ok": False, "description": "Bad Request: chat not found"})
    async with Served(telegram_bot(fake_api, tmp_path)) as served:
        await served.post("/webhooks/telegram", json=update(), headers=HEADERS)
    assert len(fake_api.calls) == 1


async def test_proactive_send_text_reaches_the_chat(fake_api, tmp_path):
    async with telegram_bot(fake_api, tmp_path) as bot:
        await bot.send_text("telegram:777", "ping")
    assert fake_api.calls[0].json == {"chat_id": 777, "text": "ping"}
