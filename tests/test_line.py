"""The LINE channel against the real aiohttp server and a fake Messaging API on 127.0.0.1.

Webhook bodies follow the Messaging API reference's webhook event objects; line-bot-sdk's own parser and
signature validator check both the fixtures and the signatures.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

import orjson
import pytest
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.webhook import SignatureValidator
from linebot.v3.webhooks import FollowEvent, MemberJoinedEvent, MessageEvent, PostbackEvent

from botkit import Bot, SendError
from botkit.core.errors import ConfigError
from tests.support import Served, counter, eventually, make_config

TOKEN = "line-channel-access-token"
SECRET = "8c570fa6dd201bb328f1c1eac23a96d8"
USER = "U4af4980629a0b1c2d3e4f5a6b7c8d9e0"
GROUP = "Ca56f94637cc4347f90a25382909b24b"
ROOM = "Ra8dbf4673c4c812cd491258042226c99"
REPLY = "/v2/bot/message/reply"
PUSH = "/v2/bot/message/push"
NOW_MS = int(time.time() * 1000)
"""LINE's timestamps are milliseconds; a delivery older than the replay window (a day) is refused."""


def sign(body: bytes, secret: str = SECRET) -> str:
    """As the Messaging API reference's Python example does it."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def source(kind: str = "user", user: str = USER) -> dict:
    if kind == "group":
        return {"type": "group", "groupId": GROUP, "userId": user}
    if kind == "room":
        return {"type": "room", "roomId": ROOM, "userId": user}
    return {"type": "user", "userId": user}


def event(kind: str = "message", n: int = 1, src: dict | None = None, redelivery: bool = False, **fields) -> dict:
    body = {"type": kind, "mode": "active", "timestamp": NOW_MS + n,
            "source": src or source(), "webhookEventId": f"01HEVENT{n:018d}",
            "deliveryContext": {"isRedelivery": redelivery}}
    if kind not in ("unfollow", "leave", "memberLeft", "unsend", "things"):
        body["replyToken"] = f"reply-token-{n}"
    body.update(fields)
    return body


def text(n: int = 1, words: str = "hi", src: dict | None = None, **extra) -> dict:
    return event(n=n, src=src, message={"type": "text", "id": str(468789577898262530 + n),
                                        "quoteToken": f"q{n}", "text": words}, **extra)


def webhook(*events: dict) -> bytes:
    return orjson.dumps({"destination": "Uxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "events": list(events)})


def line_bot(fake_api, tmp_path, handler=counter, clock=None, channel: dict | None = None, **http) -> Bot:
    config = make_config(
        tmp_path,
        channels={"line": {"access_token": TOKEN, "channel_secret": SECRET, "api_base": fake_api.url, **(channel or {})}},
        http={"attempts": 3, "backoff": 0.01, **http},
    )
    return Bot(config, handler=handler, **({"clock": clock} if clock else {}))


async def post(served: Served, body: bytes, signature: str | None = None):
    return await served.post("/webhooks/line", data=body, headers={
        "Content-Type": "application/json", "X-Line-Signature": sign(body) if signature is None else signature})


def recorder():
    seen = []

    async def handler(context):
        seen.append(context.event)

    return seen, handler


async def test_a_signed_message_is_answered_through_the_reply_token(fake_api, tmp_path):
    async with Served(line_bot(fake_api, tmp_path)) as served:
        response = await post(served, webhook(text()))
        assert response.status == 200
    [call] = fake_api.calls
    assert call.method == "POST" and call.path == REPLY
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.json == {"replyToken": "reply-token-1", "messages": [{"type": "text", "text": "Count: 1"}]}


@pytest.mark.parametrize("tamper", ["body", "signature", "missing", "other secret"])
async def test_a_changed_body_or_signature_is_401_and_runs_nothing(fake_api, tmp_path, tamper):
    seen, handler = recorder()
    body = webhook(text())
    signature = {"body": sign(body), "signature": sign(body)[:-4] + "AAA=", "missing": "",
                 "other secret": sign(body, "another-secret")}[tamper]
    if tamper == "body":
        body = body.replace(b'"hi"', b'"ho"')
    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        headers = {"Content-Type": "application/json"}
        if signature:
            headers["X-Line-Signature"] = signature
        response = await served.post("/webhooks/line", data=body, headers=headers)
        assert response.status == 401
    assert seen == [] and fake_api.calls == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"destination": "U1"}', b'{"events": {}}',
                                  b'{"events": [1]}', b'{"events": [{"source": {"type": "user"}}]}'])
async def test_a_body_that_is_not_a_line_webhook_is_400(fake_api, tmp_path, body):
    seen, handler = recorder()
    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, body)).status == 400
    assert seen == [] and fake_api.calls == []


async def test_the_consoles_verify_request_with_no_events_is_200(fake_api, tmp_path):
    seen, handler = recorder()
    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, webhook())).status == 200
    assert seen == []


def test_line_bot_sdk_accepts_our_signatures_and_parses_our_fixtures():
    from botkit.adapters.line import signature

    body = webhook(text(), event("postback", 2, postback={"data": "action=buy&itemid=111"}),
                   event("follow", 3, follow={"isUnblocked": False}),
                   event("memberJoined", 4, src=source("group"), joined={"members": [source(user="U2"), source(user="U3")]}))
    ours = signature(body, SECRET)
    assert SignatureValidator(SECRET).validate(body.decode(), ours)
    assert not SignatureValidator(SECRET).validate(body.decode().replace("hi", "ho"), ours)
    parsed = WebhookParser(SECRET).parse(body.decode(), ours)
    assert [type(e) for e in parsed] == [MessageEvent, PostbackEvent, FollowEvent, MemberJoinedEvent]
    with pytest.raises(InvalidSignatureError):
        WebhookParser(SECRET).parse(body.decode(), signature(body, "another-secret"))


async def test_our_verifier_accepts_what_line_bot_sdk_accepts(fake_api, tmp_path):
    """The SDK validates but does not sign: a signature it accepts must pass our webhook too."""
    seen, handler = recorder()
    body = webhook(text(words="héllo ✓"))
    official = sign(body)
    assert SignatureValidator(SECRET).validate(body.decode(), official)
    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, body, official)).status == 200
    assert seen[0].text == "héllo ✓"


async def test_three_sends_make_one_reply_call_with_three_messages(fake_api, tmp_path):
    async def handler(context):
        for n in range(3):
            await context.send_text(f"m{n}")

    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        await post(served, webhook(text()))
    [call] = fake_api.calls
    assert call.path == REPLY and [m["text"] for m in call.json["messages"]] == ["m0", "m1", "m2"]


async def test_seven_sends_make_one_reply_with_five_and_one_push_with_two(fake_api, tmp_path):
    async def handler(context):
        for n in range(7):
            await context.send_text(f"m{n}")

    bot = line_bot(fake_api, tmp_path, handler)
    async with Served(bot) as served:
        await post(served, webhook(text()))
        history = await bot.store.history(f"line:{USER}")
    reply, push = fake_api.calls
    assert reply.path == REPLY and [m["text"] for m in reply.json["messages"]] == ["m0", "m1", "m2", "m3", "m4"]
    assert push.path == PUSH and push.json == {"to": USER, "messages": [{"type": "text", "text": "m5"}, {"type": "text", "text": "m6"}]}
    assert push.headers["Authorization"] == f"Bearer {TOKEN}" and len(push.headers["X-Line-Retry-Key"]) == 36
    assert [h.get("text") for h in history if h["dir"] == "out"] == [f"m{n}" for n in range(7)]


async def test_twelve_sends_push_the_rest_in_calls_of_five(fake_api, tmp_path):
    async def handler(context):
        for n in range(12):
            await context.send_text(f"m{n}")

    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        await post(served, webhook(text()))
    assert [(c.path, len(c.json["messages"])) for c in fake_api.calls] == [(REPLY, 5), (PUSH, 5), (PUSH, 2)]


async def test_a_stale_reply_token_sends_by_push_in_order(fake_api, tmp_path):
    now = [1_700_000_000.0]

    async def handler(context):
        await context.send_text("early")
        now[0] += 61  # the handler took over a minute
        await context.send_text("late")

    async with Served(line_bot(fake_api, tmp_path, handler, clock=lambda: now[0])) as served:
        await post(served, webhook(text()))
    assert [c.path for c in fake_api.calls] == [PUSH, PUSH]
    assert [c.json["messages"][0]["text"] for c in fake_api.calls] == ["early", "late"]
    assert fake_api.calls[0].json["to"] == USER


async def test_a_reply_token_line_calls_invalid_falls_back_to_push(fake_api, tmp_path):
    fake_api.on(REPLY, 400, {"message": "Invalid reply token"})

    async def handler(context):
        await context.send_text("one")
        await context.send_text("two")

    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        await post(served, webhook(text()))
    reply, push = fake_api.calls
    assert reply.path == REPLY and push.path == PUSH
    assert [m["text"] for m in push.json["messages"]] == ["one", "two"]


async def test_a_flush_in_the_handler_uses_the_token_and_later_sends_push(fake_api, tmp_path):
    async def handler(context):
        await context.send_text("working on it")
        await context.sender.flush()
        await context.send_text("done")

    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        await post(served, webhook(text()))
    assert [(c.path, c.json["messages"][0]["text"]) for c in fake_api.calls] == [(REPLY, "working on it"), (PUSH, "done")]


async def test_429_with_retry_after_is_retried_after_a_second(fake_api, tmp_path):
    fake_api.on(REPLY, 429, {"message": "The API rate limit has been exceeded."}, headers={"Retry-After": "1"}, times=1)
    loop = asyncio.get_running_loop()
    bot = line_bot(fake_api, tmp_path)
    async with Served(bot) as served:
        started = loop.time()
        assert (await post(served, webhook(text()))).status == 200  # answered first: ack_within is 1 s
        await fake_api.wait_for(2, REPLY)
        elapsed = loop.time() - started
        async def counted() -> bool:
            record = await bot.store.load(f"line:{USER}")
            return record is not None and record["state"] == {"count": 1}

        await eventually(counted)
    assert [c.path for c in fake_api.calls] == [REPLY, REPLY] and elapsed >= 1.0


async def test_500_on_every_attempt_raises_send_error_in_the_handler(fake_api, tmp_path):
    fake_api.on(REPLY, 500, {"message": "Internal Server Error"})
    caught = []

    async def handler(context):
        await context.send_text("hello")
        try:
            await context.sender.flush()
        except SendError as exc:
            caught.append(exc)

    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, webhook(text()))).status == 200
    assert len(fake_api.calls) == 3
    assert caught[0].status == 500 and caught[0].body == {"message": "Internal Server Error"}


async def test_a_reply_that_fails_for_good_leaves_the_session_as_it_was(fake_api, tmp_path, caplog):
    fake_api.on(REPLY, 500, {"message": "Internal Server Error"})
    bot = line_bot(fake_api, tmp_path)
    async with Served(bot) as served:
        assert (await post(served, webhook(text()))).status == 200
        assert await bot.store.load(f"line:{USER}") is None
    assert len(fake_api.calls) == 3 and "SendError" in caplog.text


async def test_what_a_raising_handler_sent_is_still_delivered(fake_api, tmp_path):
    async def handler(context):
        context.set_state({"count": 5})
        await context.send_text("before the crash")
        raise RuntimeError("boom")

    bot = line_bot(fake_api, tmp_path, handler)
    async with Served(bot) as served:
        assert (await post(served, webhook(text()))).status == 200
        assert await bot.store.load(f"line:{USER}") is None
    [call] = fake_api.calls
    assert call.path == REPLY and call.json["messages"] == [{"type": "text", "text": "before the crash"}]


async def test_a_batch_runs_every_event_in_order_per_session(fake_api, tmp_path):
    seen = []

    async def handler(context):
        seen.append((context.event.session_key, context.event.text))
        await context.send_text(f"echo {context.event.text}")

    other = "U0000000000000000000000000000beef"
    body = webhook(*(text(n, f"{who}{n}", src=source(user=user))
                     for n in range(1, 7) for who, user in [("a" if n % 2 else "b", USER if n % 2 else other)]))
    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, body)).status == 200
    assert [t for k, t in seen if k == f"line:{USER}"] == ["a1", "a3", "a5"]
    assert [t for k, t in seen if k == f"line:{other}"] == ["b2", "b4", "b6"]
    tokens = sorted(c.json["replyToken"] for c in fake_api.calls)
    assert tokens == [f"reply-token-{n}" for n in range(1, 7)]


async def test_a_redelivered_event_is_handled_once(fake_api, tmp_path):
    bot = line_bot(fake_api, tmp_path)
    async with Served(bot) as served:
        assert (await post(served, webhook(text(7)))).status == 200
        assert (await post(served, webhook(text(7, redelivery=True)))).status == 200
        assert (await bot.store.load(f"line:{USER}"))["state"] == {"count": 1}
    assert len(fake_api.calls) == 1


@pytest.mark.parametrize("raw, kind, check", [
    (text(words="hello"), "text", lambda e: e.text == "hello" and e.data["quote_token"] == "q1"),
    (event(message={"type": "image", "id": "1", "quoteToken": "q", "contentProvider": {"type": "line"}}), "image",
     lambda e: e.data["message_id"] == "1" and e.data["content_provider"] == {"type": "line"}),
    (event(message={"type": "video", "id": "2", "quoteToken": "q", "duration": 60000, "contentProvider": {"type": "line"}}),
     "video", lambda e: e.data["duration"] == 60000),
    (event(message={"type": "audio", "id": "3", "duration": 1000, "contentProvider": {"type": "line"}}), "audio", lambda e: True),
    (event(message={"type": "file", "id": "4", "fileName": "a.pdf", "fileSize": 2138}), "file",
     lambda e: e.data["file_name"] == "a.pdf" and e.data["file_size"] == 2138),
    (event(message={"type": "location", "id": "5", "title": "my location", "address": "Tokyo",
                    "latitude": 35.65910807942215, "longitude": 139.70372892916203}), "location",
     lambda e: e.data["latitude"] == 35.65910807942215 and e.data["address"] == "Tokyo"),
    (event(message={"type": "sticker", "id": "6", "quoteToken": "q", "packageId": "446", "stickerId": "1988",
                    "stickerResourceType": "ANIMATION", "keywords": ["Happy"]}), "sticker",
     lambda e: (e.data["package_id"], e.data["sticker_id"]) == ("446", "1988")),
    (event("postback", postback={"data": "storeId=12345", "params": {"datetime": "2017-12-25T01:00"}}), "payload",
     lambda e: e.payload == "storeId=12345" and e.data["params"] == {"datetime": "2017-12-25T01:00"}),
    (event("follow", follow={"isUnblocked": True}), "follow", lambda e: e.data["unblocked"] is True),
    (event("unfollow"), "unfollow", lambda e: True),
    (event("beacon", beacon={"hwid": "d41d8cd98f", "type": "enter"}), "beacon",
     lambda e: e.data["hwid"] == "d41d8cd98f" and e.data["beacon_type"] == "enter"),
    (event("accountLink", link={"result": "ok", "nonce": "xxxxxxxxxxxxxxx"}), "account_link", lambda e: e.data["result"] == "ok"),
    (event("unsend", unsend={"messageId": "325708"}), "unsend", lambda e: e.data["message_id"] == "325708"),
    (event("videoPlayComplete", videoPlayComplete={"trackingId": "track-id"}), "video_play_complete",
     lambda e: e.data["tracking_id"] == "track-id"),
    (event("membership", membership={"type": "joined", "membershipId": 3189}), "unknown",
     lambda e: e.data["line_type"] == "membership"),
    (event(message={"type": "hologram", "id": "9"}), "unknown", lambda e: e.data["line_type"] == "message.hologram"),
])
async def test_webhook_events_become_typed_events(fake_api, tmp_path, raw, kind, check):
    seen, handler = recorder()
    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, webhook(raw))).status == 200
    [got] = seen
    assert got.type == kind and check(got)
    assert got.session_key == f"line:{USER}" and got.user_id == USER and got.id == raw["webhookEventId"]
    assert got.raw == raw and got.timestamp == raw["timestamp"] / 1000


async def test_groups_and_rooms_have_their_own_sessions_and_membership_events(fake_api, tmp_path):
    seen, handler = recorder()
    body = webhook(
        event("join", 1, src={"type": "group", "groupId": GROUP}),
        event("memberJoined", 2, src={"type": "group", "groupId": GROUP},
              joined={"members": [{"type": "user", "userId": "U2"}, {"type": "user", "userId": "U3"}]}),
        text(3, "hey all", src=source("group")),
        event("memberLeft", 4, src={"type": "group", "groupId": GROUP}, left={"members": [{"type": "user", "userId": "U2"}]}),
        event("leave", 5, src={"type": "group", "groupId": GROUP}),
        text(6, "in a room", src=source("room")),
    )
    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, body)).status == 200
    group = [(e.type, e.data.get("bot"), e.data.get("members")) for e in seen if e.session_key == f"line:{GROUP}"]
    assert group == [("join", True, None), ("join", False, ["U2", "U3"]), ("text", None, None),
                     ("leave", False, ["U2"]), ("leave", True, None)]
    [room] = [e for e in seen if e.session_key == f"line:{ROOM}"]
    assert room.text == "in a room" and room.user_id == USER


async def test_quick_replies_buttons_image_and_sticker_are_line_message_objects(fake_api, tmp_path):
    async def handler(context):
        await context.send_quick_replies("Pick", ["Yes", ("No", "ANSWER_NO")])
        await context.send_buttons("Menu", [("Buy", "BUY"), {"title": "Docs", "url": "https://example.com"}], title="Shop")
        await context.send_image("https://example.com/cat.jpg")
        await context.send_native("sticker", 446, 1988)

    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        await post(served, webhook(text()))
    [call] = fake_api.calls
    quick, buttons, image, sticker = call.json["messages"]
    assert quick == {"type": "text", "text": "Pick", "quickReply": {"items": [
        {"type": "action", "action": {"type": "postback", "label": "Yes", "data": "Yes", "displayText": "Yes"}},
        {"type": "action", "action": {"type": "postback", "label": "No", "data": "ANSWER_NO", "displayText": "No"}}]}}
    assert buttons == {"type": "template", "altText": "Menu", "template": {
        "type": "buttons", "text": "Menu", "title": "Shop", "actions": [
            {"type": "postback", "label": "Buy", "data": "BUY", "displayText": "Buy"},
            {"type": "uri", "label": "Docs", "uri": "https://example.com"}]}}
    assert image == {"type": "image", "originalContentUrl": "https://example.com/cat.jpg",
                     "previewImageUrl": "https://example.com/cat.jpg"}
    assert sticker == {"type": "sticker", "packageId": "446", "stickerId": "1988"}


async def test_typing_shows_the_loading_animation_in_one_on_one_chats_only(fake_api, tmp_path):
    async def handler(context):
        await context.send_typing(seconds=10)
        await context.send_text("ok")

    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        await post(served, webhook(text(1)))
        await post(served, webhook(text(2, src=source("group"))))
    loading = fake_api.calls_to("/v2/bot/chat/loading/start")
    assert [c.json for c in loading] == [{"chatId": USER, "loadingSeconds": 10}]
    assert loading[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert len(fake_api.calls_to(REPLY)) == 2


@pytest.mark.parametrize("key, to", [(f"line:{USER}", USER), (f"line:{GROUP}", GROUP)])
async def test_proactive_send_text_is_pushed(fake_api, tmp_path, key, to):
    async with line_bot(fake_api, tmp_path) as bot:
        await bot.send_text(key, "ping")
    [call] = fake_api.calls
    assert call.path == PUSH and call.json == {"to": to, "messages": [{"type": "text", "text": "ping"}]}


async def test_a_proactive_push_that_keeps_failing_raises_send_error(fake_api, tmp_path):
    fake_api.on(PUSH, 500, {"message": "Internal Server Error"})
    async with line_bot(fake_api, tmp_path) as bot:
        with pytest.raises(SendError) as failure:
            await bot.send_text(f"line:{USER}", "ping")
    assert failure.value.status == 500 and len(fake_api.calls) == 3


async def test_a_push_retry_that_line_already_accepted_counts_as_sent(fake_api, tmp_path):
    fake_api.on(PUSH, 500, {"message": "Internal Server Error"}, times=1)
    fake_api.on(PUSH, 409, {"message": "The retry key is already accepted"}, times=1)
    async with line_bot(fake_api, tmp_path) as bot:
        await bot.send_text(f"line:{USER}", "ping")
    first, second = fake_api.calls
    assert first.headers["X-Line-Retry-Key"] == second.headers["X-Line-Retry-Key"]


async def test_cli_sets_shows_and_tests_the_webhook(fake_api, tmp_path, capsys):
    endpoint = "/v2/bot/channel/webhook/endpoint"
    fake_api.on(endpoint, json={"endpoint": "https://bot.example.com/webhooks/line", "active": True})
    fake_api.on("/v2/bot/channel/webhook/test", json={"success": True, "statusCode": 200, "reason": "OK", "detail": "200"})
    async with line_bot(fake_api, tmp_path) as bot:
        line = bot.adapters["line"]
        assert await line.command(["webhook", "set", "https://bot.example.com/webhooks/line"]) == 0
        assert await line.command(["webhook", "info"]) == 0
        assert await line.command(["webhook", "test"]) == 0
    put, get, test = fake_api.calls
    assert (put.method, put.path, put.json) == ("PUT", endpoint, {"endpoint": "https://bot.example.com/webhooks/line"})
    assert (get.method, get.path) == ("GET", endpoint) and (test.method, test.json) == ("POST", {})
    assert all(c.headers["Authorization"] == f"Bearer {TOKEN}" for c in fake_api.calls)
    assert '"active": true' in capsys.readouterr().out


def test_a_listed_line_channel_without_its_secret_is_a_config_error(tmp_path):
    config = make_config(tmp_path, channels={"line": {"access_token": TOKEN}})
    with pytest.raises(ConfigError) as error:
        Bot(config, handler=counter)
    assert error.value.setting == "channels.line.channel_secret"


# -- the security review's findings --------------------------------------------------------------------


async def test_a_signed_delivery_older_than_the_replay_window_is_401_and_runs_nothing(fake_api, tmp_path):
    """A redelivered event keeps the time it happened; one signed two days ago is a replay."""
    seen, handler = recorder()
    two_days = 2 * 86400 * 1000
    stale = webhook(text(1, "replayed", timestamp=NOW_MS - two_days, redelivery=True))
    late = webhook(text(2, "redelivered", timestamp=NOW_MS - 3600 * 1000, redelivery=True))
    assert SignatureValidator(SECRET).validate(stale.decode(), sign(stale))  # LINE would have signed it so
    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, stale)).status == 401
        assert (await post(served, late)).status == 200
    async with Served(line_bot(fake_api, tmp_path, handler, channel={"replay_window": None})) as served:
        assert (await post(served, stale)).status == 200
    assert [e.text for e in seen] == ["redelivered", "replayed"]
    assert seen[0].timestamp == (NOW_MS - 3600 * 1000) / 1000


@pytest.mark.parametrize("header", [b"X-Line-Signature: \xff\xfe\r\n", b"X-Line-Signature: \xe2\x9c\x93\r\n"])
async def test_a_signature_header_of_non_ascii_bytes_is_401_not_400(fake_api, tmp_path, header):
    from tests.test_telegram import raw_status

    seen, handler = recorder()
    async with Served(line_bot(fake_api, tmp_path, handler)) as served:
        assert await raw_status(served.client.port, "/webhooks/line", header, webhook(text())) == 401
    assert seen == []


@pytest.mark.parametrize("header", [b"", b"X-Line-Signature: too-short\r\n"])
async def test_a_missing_or_malformed_signature_is_401_before_the_body_is_read(fake_api, tmp_path, header):
    from tests.test_telegram import raw_status

    async with Served(line_bot(fake_api, tmp_path)) as served:
        assert await raw_status(served.client.port, "/webhooks/line", header, b'{"events": [', length=100_000) == 401
    assert fake_api.calls == []
