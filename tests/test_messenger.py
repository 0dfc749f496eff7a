"""The Messenger adapter against the real aiohttp server and a fake Graph API on 127.0.0.1.

Payloads follow Meta's webhook reference (https://developers.facebook.com/docs/messenger-platform/webhooks):
``{"object": "page", "entry": [{"id", "time", "messaging": [...]}]}``, signed with ``X-Hub-Signature-256``.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time

import orjson
import pytest

from botkit import Bot, SendError
from botkit.core.errors import ConfigError
from tests.support import Served, counter, make_config

TOKEN = "EAAGpage-token+/="
APP_SECRET = "0123456789abcdef0123456789abcdef"
VERIFY_TOKEN = "verify-me-please"
PAGE_ID = "1029384756"
PSID = "2468013579"
PATH = "/webhooks/messenger"
NOW_MS = int(time.time() * 1000)
"""Meta's timestamps are milliseconds; a delivery older than the replay window (48 h) is refused."""


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook(*items: dict, entries: int = 1) -> dict:
    """A page webhook: ``items`` spread over ``entries`` entries, in order."""
    size = -(-len(items) // entries) if items else 0
    return {"object": "page", "entry": [
        {"id": PAGE_ID, "time": NOW_MS + n, "messaging": list(items[n * size:(n + 1) * size])}
        for n in range(entries)]}


def message(text: str | None = "hi", psid: str = PSID, mid: str = "m_1", **fields) -> dict:
    body = {"mid": mid, **fields}
    if text is not None:
        body["text"] = text
    return {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": NOW_MS + 123, "message": body}


def messenger_bot(fake_api, tmp_path, handler=counter, **settings) -> Bot:
    channel = {"access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
               "api_base": fake_api.url, **settings}
    config = make_config(tmp_path, channels={"messenger": channel}, http={"attempts": 3, "backoff": 0.01})
    return Bot(config, handler=handler)


async def post(served: Served, document: dict):
    body = orjson.dumps(document)
    return await served.post(PATH, data=body, headers={"X-Hub-Signature-256": sign(body),
                                                       "Content-Type": "application/json"})


def recorder():
    seen = []

    async def handler(context):
        seen.append(context.event)

    return seen, handler


async def test_a_signed_message_is_answered_through_the_send_api(fake_api, tmp_path):
    async with Served(messenger_bot(fake_api, tmp_path)) as served:
        response = await post(served, webhook(message("hello")))
        assert response.status == 200
    [call] = fake_api.calls
    assert call.method == "POST" and call.path == "/me/messages"
    assert call.query == {"access_token": TOKEN}
    assert call.json == {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "Count: 1"}}


@pytest.mark.parametrize("tamper", ["body", "signature", "missing", "other-secret"])
async def test_a_changed_or_unsigned_request_is_401_and_runs_nothing(fake_api, tmp_path, tamper):
    seen, handler = recorder()
    body = orjson.dumps(webhook(message("hello")))
    headers = {"X-Hub-Signature-256": sign(body)}
    if tamper == "body":
        body = body.replace(b"hello", b"hellO")
    elif tamper == "signature":
        good = headers["X-Hub-Signature-256"]
        headers["X-Hub-Signature-256"] = good[:-1] + ("1" if good[-1] == "0" else "0")
    elif tamper == "missing":
        headers = {}
    else:
        headers["X-Hub-Signature-256"] = sign(body, "another-app-secret")
    async with Served(messenger_bot(fake_api, tmp_path, handler)) as served:
        response = await served.post(PATH, data=body, headers=headers)
        assert response.status == 401
    assert seen == [] and fake_api.calls == []


async def test_the_handshake_echoes_the_challenge_only_for_the_verify_token(fake_api, tmp_path):
    async with Served(messenger_bot(fake_api, tmp_path)) as served:
        ok = await served.get(PATH, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                            "hub.challenge": "1158201444"})
        assert ok.status == 200 and await ok.text() == "1158201444" and ok.content_type == "text/plain"
        for params in ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
                       {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
                       {"hub.challenge": "1"}):
            refused = await served.get(PATH, params=params)
            assert refused.status == 403 and "1" != await refused.text()


@pytest.mark.parametrize("document", [
    b"not json",
    b"[1, 2]",
    b'{"entry": []}',
    b'{"object": "whatsapp_business_account", "entry": []}',
    b'{"object": "page", "entry": "nope"}',
    b'{"object": "page", "entry": [{"messaging": {"sender": {"id": "1"}}}]}',
    b'{"object": "page", "entry": [{"messaging": [{"sender": {"id": ["1"]}, "message": {"text": "x"}}]}]}',
    b'{"object": "page", "entry": [{"messaging": [{"sender": {"id": "1"}, "message": "text"}]}]}',
])
async def test_a_body_that_is_not_a_page_webhook_is_400(fake_api, tmp_path, document):
    seen, handler = recorder()
    async with Served(messenger_bot(fake_api, tmp_path, handler)) as served:
        response = await served.post(PATH, data=document, headers={"X-Hub-Signature-256": sign(document)})
        assert response.status == 400
    assert seen == [] and fake_api.calls == []


async def test_three_entries_of_two_events_for_two_users_run_six_times_in_order_per_user(fake_api, tmp_path):
    runs = []

    async def handler(context):
        await asyncio.sleep(random.uniform(0, 0.02))  # let the two users' runs interleave
        count = context.state["count"] + 1
        context.set_state({"count": count})
        runs.append((context.event.user_id, context.event.text, count))

    items = [message(f"{user}-{n}", psid=user, mid=f"m_{user}_{n}") for n in range(3) for user in ("111", "222")]
    bot = messenger_bot(fake_api, tmp_path, handler)
    async with Served(bot) as served:
        assert (await post(served, webhook(*items, entries=3))).status == 200
        for user in ("111", "222"):
            assert (await bot.store.load(f"messenger:{user}"))["state"] == {"count": 3}
    assert len(runs) == 6
    for user in ("111", "222"):
        assert [(text, count) for who, text, count in runs if who == user] == [
            (f"{user}-0", 1), (f"{user}-1", 2), (f"{user}-2", 3)]


async def test_a_redelivered_message_is_handled_once(fake_api, tmp_path):
    async with Served(messenger_bot(fake_api, tmp_path)) as served:
        for _ in range(2):
            assert (await post(served, webhook(message("hi", mid="m_same")))).status == 200
    assert [c.json["message"]["text"] for c in fake_api.calls] == ["Count: 1"]


def attachment(kind: str, **payload) -> dict:
    return message(None, attachments=[{"type": kind, "payload": payload}])


@pytest.mark.parametrize("item, kind, check", [
    (message("hello"), "text", lambda e: e.text == "hello" and e.id == "m_1"),
    (message("Red", quick_reply={"payload": "PICK_RED"}), "payload",
     lambda e: e.payload == "PICK_RED" and e.data["title"] == "Red" and e.text is None),
    ({"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "timestamp": NOW_MS + 123,
      "postback": {"mid": "m_pb", "title": "Start", "payload": "GET_STARTED"}}, "payload",
     lambda e: e.payload == "GET_STARTED" and e.data["title"] == "Start" and e.id == "m_pb"),
    (attachment("image", url="https://cdn.example/cat.jpg"), "image", lambda e: e.data["url"] == "https://cdn.example/cat.jpg"),
    (attachment("audio", url="https://cdn.example/a.mp4"), "audio", lambda e: e.data["url"] == "https://cdn.example/a.mp4"),
    (attachment("video", url="https://cdn.example/v.mp4"), "video", lambda e: e.data["url"] == "https://cdn.example/v.mp4"),
    (attachment("file", url="https://cdn.example/f.pdf"), "file", lambda e: e.data["url"] == "https://cdn.example/f.pdf"),
    (attachment("location", coordinates={"lat": 52.52, "long": 13.40}), "location",
     lambda e: (e.data["latitude"], e.data["longitude"]) == (52.52, 13.40)),
    (message(None, sticker_id=369239263222822,
             attachments=[{"type": "image", "payload": {"url": "https://cdn.example/s.png", "sticker_id": 369239263222822}}]),
     "sticker", lambda e: e.data["sticker_id"] == 369239263222822 and e.data["url"] == "https://cdn.example/s.png"),
    (message(None, attachments=[{"type": "sticker", "payload": {"sticker_id": 767226160478561}},
                                {"type": "image", "payload": {"url": "https://cdn.example/s.png"}}]),
     "sticker", lambda e: e.data["sticker_id"] == 767226160478561),
    (attachment("fallback", url="https://example.com/shared", title="A page"), "unknown",
     lambda e: e.data["attachment_type"] == "fallback"),
    ({"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "timestamp": NOW_MS + 123,
      "referral": {"ref": "spring-sale", "source": "SHORTLINK", "type": "OPEN_THREAD"}}, "referral",
     lambda e: e.data["ref"] == "spring-sale" and e.id == f"referral:{NOW_MS + 123}:{PSID}"),
    ({"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "timestamp": NOW_MS + 123,
      "optin": {"type": "notification_messages", "payload": "DEALS"}}, "optin",
     lambda e: e.data["payload"] == "DEALS"),
    ({"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "timestamp": NOW_MS + 123,
      "reaction": {"mid": "m_1", "action": "react", "emoji": "\u2764"}}, "unknown", lambda e: e.id is None),
])
async def test_every_messaging_event_becomes_a_typed_event(fake_api, tmp_path, item, kind, check):
    seen, handler = recorder()
    async with Served(messenger_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, webhook(item))).status == 200
    [event] = seen
    assert event.type == kind and check(event)
    assert event.session_key == f"messenger:{PSID}" and event.user_id == PSID and event.raw == item
    assert event.timestamp == (NOW_MS + 123) / 1000


async def test_echoes_and_receipts_are_typed_and_never_user_text(fake_api, tmp_path):
    seen, handler = recorder()
    echo = {"sender": {"id": PAGE_ID}, "recipient": {"id": PSID}, "timestamp": NOW_MS + 200,
            "message": {"is_echo": True, "app_id": 1517776481860111, "metadata": "bot", "mid": "m_echo", "text": "Count: 1"}}
    delivery = {"sender": {"id": PSID}, "recipient": {"id": PAGE_ID},
                "delivery": {"mids": ["m_echo"], "watermark": NOW_MS + 300}}
    read = {"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "timestamp": NOW_MS + 500,
            "read": {"watermark": NOW_MS + 400}}
    bot = messenger_bot(fake_api, tmp_path, handler)
    async with Served(bot) as served:
        assert (await post(served, webhook(echo, delivery, read))).status == 200
        history = await bot.store.history(f"messenger:{PSID}")
    assert [(e.type, e.session_key, e.text, e.is_message) for e in seen] == [
        ("echo", f"messenger:{PSID}", None, False), ("delivery", f"messenger:{PSID}", None, False),
        ("read", f"messenger:{PSID}", None, False)]
    assert seen[0].data["text"] == "Count: 1" and seen[0].data["app_id"] == 1517776481860111
    assert seen[1].data["mids"] == ["m_echo"] and seen[1].id == f"delivery:{NOW_MS + 300}:{PSID}"
    assert seen[2].id == f"read:{NOW_MS + 400}:{PSID}"
    assert not any("text" in entry for entry in history)


async def test_standby_events_and_feed_changes_reach_the_handler_typed(fake_api, tmp_path):
    seen, handler = recorder()
    document = {"object": "page", "entry": [
        {"id": PAGE_ID, "time": 1, "standby": [message("for the other app")]},
        {"id": PAGE_ID, "time": 2, "changes": [{"field": "feed", "value": {"item": "post"}}]},
    ]}
    async with Served(messenger_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, document)).status == 200
    assert [(e.type, e.data.get("original_type"), e.session_key) for e in seen] == [
        ("standby", "text", f"messenger:{PSID}"), ("unknown", None, "messenger:_")]


async def test_quick_replies_buttons_image_and_typing_call_the_send_api(fake_api, tmp_path):
    async def handler(context):
        await context.send_typing()
        await context.send_quick_replies("Pick a color:", ["Red", ("Green", "PICK_GREEN")])
        await context.send_buttons("Next?", [("Start", "START"), {"title": "Docs", "url": "https://example.com/docs"}])
        await context.send_image("https://example.com/cat.png")
        await context.send_text("plain", quick_replies=[{"title": "Yes", "payload": "Y"}])

    async with Served(messenger_bot(fake_api, tmp_path, handler)) as served:
        await post(served, webhook(message("hi")))
    bodies = [c.json for c in fake_api.calls]
    assert all(c.path == "/me/messages" and c.query["access_token"] == TOKEN for c in fake_api.calls)
    assert bodies[0] == {"recipient": {"id": PSID}, "sender_action": "typing_on"}
    assert bodies[1]["message"] == {"text": "Pick a color:", "quick_replies": [
        {"content_type": "text", "title": "Red", "payload": "Red"},
        {"content_type": "text", "title": "Green", "payload": "PICK_GREEN"}]}
    assert bodies[2]["message"] == {"attachment": {"type": "template", "payload": {
        "template_type": "button", "text": "Next?", "buttons": [
            {"type": "postback", "title": "Start", "payload": "START"},
            {"type": "web_url", "url": "https://example.com/docs", "title": "Docs"}]}}}
    assert bodies[3]["message"] == {"attachment": {"type": "image", "payload": {"url": "https://example.com/cat.png"}}}
    assert bodies[4]["message"]["quick_replies"] == [{"content_type": "text", "title": "Yes", "payload": "Y"}]
    assert all(b["messaging_type"] == "RESPONSE" and b["recipient"] == {"id": PSID} for b in bodies[1:])


async def test_more_than_three_buttons_go_as_quick_replies_and_with_a_link_fail_before_any_call(fake_api, tmp_path):
    caught = []

    async def handler(context):
        await context.send_buttons("Pick", [(str(n), f"P{n}") for n in range(4)])
        try:
            await context.send_buttons("Pick", [(str(n), str(n)) for n in range(3)] + [{"title": "Docs", "url": "https://x.example"}])
        except ValueError as exc:
            caught.append(exc)

    async with Served(messenger_bot(fake_api, tmp_path, handler)) as served:
        await post(served, webhook(message("hi")))
    [call] = fake_api.calls
    assert call.json["message"] == {"text": "Pick", "quick_replies": [
        {"content_type": "text", "title": str(n), "payload": f"P{n}"} for n in range(4)]}
    assert caught and "1 to 3 buttons" in str(caught[0])


async def test_429_with_retry_after_is_retried_after_a_second(fake_api, tmp_path):
    fake_api.on("/me/messages", 429, {"error": {"message": "slow down", "code": 613}}, headers={"Retry-After": "1"}, times=1)
    loop = asyncio.get_running_loop()
    async with Served(messenger_bot(fake_api, tmp_path)) as served:
        started = loop.time()
        assert (await post(served, webhook(message("hi")))).status == 200
        elapsed = loop.time() - started
    assert len(fake_api.calls) == 2 and elapsed >= 1.0
    assert fake_api.calls[1].json["message"] == {"text": "Count: 1"}


async def test_graph_throttling_sent_as_a_400_is_retried(fake_api, tmp_path):
    fake_api.on("/me/messages", 400, {"error": {"message": "(#613) Calls to this api have exceeded the rate limit.", "code": 613}}, times=1)
    async with Served(messenger_bot(fake_api, tmp_path)) as served:
        assert (await post(served, webhook(message("hi")))).status == 200
    assert len(fake_api.calls) == 2 and fake_api.calls[1].json["message"] == {"text": "Count: 1"}


async def test_an_ordinary_400_is_not_retried_and_the_token_is_masked(fake_api, tmp_path):
    fake_api.on("/me/messages", 400, {"error": {"message": "(#100) No matching user found", "code": 100}})
    caught = []

    async def handler(context):
        try:
            await context.send_text("hello")
        except SendError as exc:
            caught.append(exc)

    async with Served(messenger_bot(fake_api, tmp_path, handler)) as served:
        await post(served, webhook(message("hi")))
    assert len(fake_api.calls) == 1
    assert TOKEN not in str(caught[0]) and "access_token=***" in caught[0].url


async def test_a_send_that_keeps_failing_raises_send_error_with_the_graph_error(fake_api, tmp_path):
    error = {"error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 1, "fbtrace_id": "A1"}}
    fake_api.on("/me/messages", 500, error)
    caught = []

    async def handler(context):
        try:
            await context.send_text("hello")
        except SendError as exc:
            caught.append(exc)

    async with Served(messenger_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, webhook(message("hi")))).status == 200
    assert len(fake_api.calls) == 3
    [exc] = caught
    assert exc.status == 500 and exc.body == error
    assert TOKEN not in str(exc) and TOKEN not in exc.url


async def test_bot_send_text_pushes_an_update_to_the_psid(fake_api, tmp_path):
    async with messenger_bot(fake_api, tmp_path) as bot:
        await bot.send_text(f"messenger:{PSID}", "Your order shipped")
    [call] = fake_api.calls
    assert call.path == "/me/messages" and call.query == {"access_token": TOKEN}
    assert call.json == {"recipient": {"id": PSID}, "messaging_type": "UPDATE", "message": {"text": "Your order shipped"}}


async def test_webhook_set_subscribes_the_app_and_the_page(fake_api, tmp_path, capsys):
    fake_api.on("/subscriptions", json={"success": True})
    async with messenger_bot(fake_api, tmp_path, app_id="424242") as bot:
        status = await bot.adapters["messenger"].command(
            ["webhook", "set", "https://bot.example.com/webhooks/messenger"])
    assert status == 0
    app, page = fake_api.calls
    assert (app.method, app.path, app.query) == ("POST", "/424242/subscriptions", {"access_token": f"424242|{APP_SECRET}"})
    assert app.form == {"object": "page", "callback_url": "https://bot.example.com/webhooks/messenger",
                        "verify_token": VERIFY_TOKEN,
                        "fields": "messages,messaging_postbacks,message_deliveries,message_reads,messaging_optins,messaging_referrals"}
    assert (page.method, page.path, page.query) == ("POST", "/me/subscribed_apps", {"access_token": TOKEN})
    assert page.form["subscribed_fields"].startswith("messages,messaging_postbacks")
    assert '"success": true' in capsys.readouterr().out


async def test_webhook_info_subscribe_and_delete(fake_api, tmp_path):
    async with messenger_bot(fake_api, tmp_path, app_id="424242") as bot:
        adapter = bot.adapters["messenger"]
        assert await adapter.command(["webhook", "info"]) == 0
        assert await adapter.command(["webhook", "subscribe", "--fields", "messages,message_echoes"]) == 0
        assert await adapter.command(["webhook", "delete"]) == 0
    assert [(c.method, c.path) for c in fake_api.calls] == [
        ("GET", "/me/subscribed_apps"), ("GET", "/424242/subscriptions"),
        ("POST", "/me/subscribed_apps"), ("DELETE", "/me/subscribed_apps")]
    assert fake_api.calls[2].form == {"subscribed_fields": "messages,message_echoes"}


async def test_webhook_set_needs_app_id_and_an_https_url(fake_api, tmp_path, capsys):
    async with messenger_bot(fake_api, tmp_path) as bot:
        with pytest.raises(ConfigError) as raised:
            await bot.adapters["messenger"].command(["webhook", "set", "https://bot.example.com/webhooks/messenger"])
        assert raised.value.setting == "channels.messenger.app_id"
    async with messenger_bot(fake_api, tmp_path, app_id="424242") as bot:
        assert await bot.adapters["messenger"].command(["webhook", "set", "http://bot.example.com/hook"]) == 2
    assert fake_api.calls == [] and "https://" in capsys.readouterr().err


@pytest.mark.parametrize("settings, setting", [
    ({"access_token": TOKEN, "verify_token": VERIFY_TOKEN}, "channels.messenger.app_secret"),
    ({"access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "app_id": "my-app"},
     "channels.messenger.app_id"),
    ({"access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "page_id": "1"},
     "channels.messenger.page_id"),
])
def test_config_mistakes_name_the_setting(tmp_path, settings, setting):
    with pytest.raises(ConfigError) as raised:
        Bot(make_config(tmp_path, channels={"messenger": settings}), handler=counter)
    assert raised.value.setting == setting


# -- the security review's findings --------------------------------------------------------------------


async def test_a_signed_delivery_older_than_the_replay_window_is_401_and_runs_nothing(fake_api, tmp_path):
    """Meta stops redelivering after 36 hours: a signed body three days old is a replay."""
    seen, handler = recorder()
    three_days = 3 * 86400 * 1000
    stale = {"object": "page", "entry": [{"id": PAGE_ID, "time": NOW_MS - three_days, "messaging": [
        {**message("replayed", mid="m_old"), "timestamp": NOW_MS - three_days}]}]}
    day_old = {"object": "page", "entry": [{"id": PAGE_ID, "time": NOW_MS - 86400 * 1000, "messaging": [
        {**message("redelivered", mid="m_late"), "timestamp": NOW_MS - 86400 * 1000}]}]}
    async with Served(messenger_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, stale)).status == 401
        assert (await post(served, day_old)).status == 200  # within Meta's own redelivery
    async with Served(messenger_bot(fake_api, tmp_path, handler, replay_window=None)) as served:
        assert (await post(served, stale)).status == 200  # the check turned off
    assert [e.text for e in seen] == ["redelivered", "replayed"]


async def test_an_entry_without_messaging_takes_the_entrys_time(fake_api, tmp_path):
    seen, handler = recorder()
    feed = {"object": "page", "entry": [{"id": PAGE_ID, "time": NOW_MS, "changes": [{"field": "feed", "value": {}}]}]}
    stale = {"object": "page", "entry": [{"id": PAGE_ID, "time": NOW_MS - 5 * 86400 * 1000, "changes": [{"field": "feed", "value": {}}]}]}
    async with Served(messenger_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, feed)).status == 200
        assert (await post(served, stale)).status == 401
    [event] = seen
    assert event.type == "unknown" and event.timestamp == NOW_MS / 1000


@pytest.mark.parametrize("header", [b"X-Hub-Signature-256: sha256=\xff\xfe\r\n", b"X-Hub-Signature-256: \xc3\xa9\r\n"])
async def test_a_signature_header_of_non_ascii_bytes_is_401_not_400(fake_api, tmp_path, header):
    from tests.test_telegram import raw_status

    seen, handler = recorder()
    async with Served(messenger_bot(fake_api, tmp_path, handler)) as served:
        assert await raw_status(served.client.port, PATH, header, orjson.dumps(webhook(message()))) == 401
    assert seen == []


@pytest.mark.parametrize("header", [b"", b"X-Hub-Signature-256: sha1=0123\r\n"])
async def test_a_missing_or_malformed_signature_is_401_before_the_body_is_read(fake_api, tmp_path, header):
    from tests.test_telegram import raw_status

    async with Served(messenger_bot(fake_api, tmp_path)) as served:
        assert await raw_status(served.client.port, PATH, header, b'{"object": "page", ', length=100_000) == 401
    assert fake_api.calls == []


@pytest.mark.parametrize("window", [0, -5, "48h", True])
def test_a_replay_window_that_is_not_seconds_is_a_config_error(tmp_path, window):
    settings = {"access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "replay_window": window}
    with pytest.raises(ConfigError) as raised:
        Bot(make_config(tmp_path, channels={"messenger": settings}), handler=counter)
    assert raised.value.setting == "channels.messenger.replay_window"
