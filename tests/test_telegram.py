"""The Telegram adapter against the real aiohttp server and a fake Bot API on 127.0.0.1.

This file is the pattern every channel's tests follow: a signed request runs the handler and the
outbound call matches the platform's API; a bad signature is 401 and runs nothing; a foreign body is 400.
"""
from __future__ import annotations

import asyncio
import time

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


def telegram_bot(fake_api, tmp_path, handler=counter, channel: dict | None = None, **http) -> Bot:
    config = make_config(
        tmp_path,
        channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url, **(channel or {})}},
        http={"attempts": 3, "backoff": 0.01, **http},
    )
    return Bot(config, handler=handler)


async def raw_status(port: int, path: str, headers: bytes, body: bytes = b"{}", length: int | None = None,
                     content_type: bytes = b"application/json") -> int:
    """POST with header lines given as raw bytes (``b"Name: value\r\n"``, any bytes at all) and a body that
    may stop short of its Content-Length: a sender that never finishes. The status as soon as the server
    answers; the guard only keeps a server that waits for the rest of the body from hanging the suite."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
            path.encode(), content_type, len(body) if length is None else length)
        writer.write(head + headers + b"\r\n" + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 20)
        return int(status_line.split()[1])
    finally:
        writer.close()


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


# -- the security review's findings --------------------------------------------------------------------


@pytest.mark.parametrize("header", [b"", b"X-Telegram-Bot-Api-Secret-Token: wrong\r\n"])
async def test_a_wrong_secret_is_refused_before_the_body_is_read(fake_api, tmp_path, header):
    """The body never finishes arriving: the 401 comes from the headers alone."""
    ran = []

    async def handler(context):
        ran.append(context.event)

    async with Served(telegram_bot(fake_api, tmp_path, handler)) as served:
        assert await raw_status(served.client.port, "/webhooks/telegram", header, b'{"update_id": 1, ', length=100_000) == 401
    assert ran == []


async def test_a_secret_header_of_non_ascii_bytes_is_401_not_400(fake_api, tmp_path):
    async with Served(telegram_bot(fake_api, tmp_path)) as served:
        body = b'{"update_id": 1}'
        assert await raw_status(served.client.port, "/webhooks/telegram", b"X-Telegram-Bot-Api-Secret-Token: \xff\xfe\r\n", body) == 401


async def test_an_update_over_the_channel_limit_is_413(fake_api, tmp_path):
    body = {**update(), "padding": "x" * (600 * 1024)}
    async with Served(telegram_bot(fake_api, tmp_path)) as served:
        assert (await served.post("/webhooks/telegram", json=body, headers=HEADERS)).status == 413
    assert fake_api.calls == []


async def test_an_edited_channel_post_is_edited_like_an_edited_message(fake_api, tmp_path):
    seen = []

    async def handler(context):
        seen.append(context.event)

    channel = {"id": -1001, "type": "channel", "title": "News"}
    post = {"message_id": 9, "date": 1700000000, "edit_date": 1700000600, "chat": channel, "text": "fixed"}
    async with Served(telegram_bot(fake_api, tmp_path, handler)) as served:
        for n, kind in enumerate(("channel_post", "edited_channel_post"), 1):
            body = {"update_id": n, kind: {**post, "text": f"v{n}"}}
            assert (await served.post("/webhooks/telegram", json=body, headers=HEADERS)).status == 200
    assert [(e.type, e.text, e.session_key) for e in seen] == [("text", "v1", "telegram:-1001"), ("edited", "v2", "telegram:-1001")]
    assert seen[1].data["original_type"] == "text"
    assert (seen[0].timestamp, seen[1].timestamp) == (1700000000, 1700000600)  # an edit happened at its edit_date


async def test_updates_without_a_chat_go_to_their_users_session(fake_api, tmp_path):
    """An inline query has no chat: it reaches ``telegram:<user id>``, the user's private chat with the bot."""
    seen = []

    async def handler(context):
        seen.append(context.event)

    user = {"id": 42, "is_bot": False, "first_name": "Ada"}
    bodies = [
        {"update_id": 1, "inline_query": {"id": "iq1", "from": user, "query": "cats", "offset": ""}},
        {"update_id": 2, "poll_answer": {"poll_id": "p", "user": user, "option_ids": [0]}},
        {"update_id": 3, "poll": {"id": "p", "question": "?", "options": []}},
    ]
    async with Served(telegram_bot(fake_api, tmp_path, handler)) as served:
        for body in bodies:
            assert (await served.post("/webhooks/telegram", json=body, headers=HEADERS)).status == 200
    assert [(e.type, e.session_key, e.user_id, e.data["update_type"]) for e in seen] == [
        ("unknown", "telegram:42", "42", "inline_query"), ("unknown", "telegram:42", "42", "poll_answer"),
        ("unknown", "telegram:_", None, "poll")]


async def test_a_photo_is_its_largest_size_whatever_the_order(fake_api, tmp_path):
    seen = []

    async def handler(context):
        seen.append(context.event.data["file_id"])

    sizes = [{"file_id": "medium", "width": 320, "height": 240, "file_size": 9000},
             {"file_id": "large-small-file", "width": 1280, "height": 960, "file_size": 50000},
             {"file_id": "large", "width": 960, "height": 1280, "file_size": 80000},
             {"file_id": "thumb", "width": 90, "height": 67, "file_size": 1000}]
    async with Served(telegram_bot(fake_api, tmp_path, handler)) as served:
        await served.post("/webhooks/telegram", json=update(text=None, photo=sizes), headers=HEADERS)
    assert seen == ["large"]


async def test_a_stale_update_is_refused_only_when_a_replay_window_is_set(fake_api, tmp_path):
    """The secret token is not bound to the body, so by default an update's age is not held against it;
    with ``replay_window`` an update older than it gets 401 and runs nothing."""
    ran = []

    async def handler(context):
        ran.append(context.event.timestamp)

    now = int(time.time())
    stale, fresh = update(1, date=now - 3 * 86400), update(2, date=now - 60)
    async with Served(telegram_bot(fake_api, tmp_path, handler)) as served:
        assert (await served.post("/webhooks/telegram", json=stale, headers=HEADERS)).status == 200
    async with Served(telegram_bot(fake_api, tmp_path, handler, channel={"replay_window": 86400})) as served:
        assert (await served.post("/webhooks/telegram", json=update(3, date=now - 3 * 86400), headers=HEADERS)).status == 401
        assert (await served.post("/webhooks/telegram", json=fresh, headers=HEADERS)).status == 200
    assert ran == [now - 3 * 86400, now - 60]
