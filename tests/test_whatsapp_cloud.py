"""The WhatsApp Cloud API adapter (channel "whatsapp", "provider": "cloud") against the real aiohttp server
and a fake Graph API on 127.0.0.1.

Payloads follow Meta's messages webhook reference: ``{"object": "whatsapp_business_account", "entry": [{"id",
"changes": [{"field": "messages", "value": {"metadata", "contacts", "messages" | "statuses"}}]}]}``.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import orjson
import pytest

from botkit import Bot, SendError
from botkit.adapters.whatsapp_cloud import WhatsAppCloudAdapter
from botkit.core.errors import ConfigError
from tests.support import Served, counter, make_config

TOKEN = "EAAGsystem-user-token"
APP_SECRET = "fedcba9876543210fedcba9876543210"
VERIFY_TOKEN = "wa-verify"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
WA_ID = "16505551234"
USER = "+16505551234"
PATH = "/webhooks/whatsapp"
NOW = int(time.time())
"""The Cloud API's timestamps are seconds, as strings; a delivery older than the replay window (8 days) is refused."""


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def value(messages=(), statuses=(), wa_id: str = WA_ID, name: str = "Sheena Nelson") -> dict:
    body: dict = {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID}}
    if messages:
        body["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id}]
        body["messages"] = list(messages)
    if statuses:
        body["statuses"] = list(statuses)
    return body


def webhook(*values: dict) -> dict:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": v, "field": "messages"} for v in values]}]}


def text(body: str = "hi", wa_id: str = WA_ID, message_id: str = "wamid.1") -> dict:
    return {"from": wa_id, "id": message_id, "timestamp": str(NOW), "type": "text", "text": {"body": body}}


def status(state: str, message_id: str = "wamid.out1", wa_id: str = WA_ID, **extra) -> dict:
    return {"id": message_id, "status": state, "timestamp": str(NOW + 17), "recipient_id": wa_id, **extra}


def whatsapp_bot(fake_api, tmp_path, handler=counter, **settings) -> Bot:
    channel = {"provider": "cloud", "access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
               "phone_number_id": PHONE_NUMBER_ID, "api_base": fake_api.url, **settings}
    config = make_config(tmp_path, channels={"whatsapp": channel}, http={"attempts": 3, "backoff": 0.01})
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


async def test_a_signed_message_is_answered_through_the_messages_api(fake_api, tmp_path):
    bot = whatsapp_bot(fake_api, tmp_path)
    assert isinstance(bot.adapters["whatsapp"], WhatsAppCloudAdapter)
    async with Served(bot) as served:
        assert (await post(served, webhook(value([text("hello")])))).status == 200
        assert (await bot.store.load(f"whatsapp:{USER}"))["state"] == {"count": 1}
    [call] = fake_api.calls
    assert call.method == "POST" and call.path == f"/{PHONE_NUMBER_ID}/messages"
    assert call.headers["Authorization"] == f"Bearer {TOKEN}" and call.query == {}
    assert call.json == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": USER,
                         "type": "text", "text": {"body": "Count: 1"}}


@pytest.mark.parametrize("tamper", ["body", "signature", "missing", "other-secret"])
async def test_a_changed_or_unsigned_request_is_401_and_runs_nothing(fake_api, tmp_path, tamper):
    seen, handler = recorder()
    body = orjson.dumps(webhook(value([text("hello")])))
    headers = {"X-Hub-Signature-256": sign(body)}
    if tamper == "body":
        body = body.replace(b"hello", b"jello")
    elif tamper == "signature":
        good = headers["X-Hub-Signature-256"]
        headers["X-Hub-Signature-256"] = good[:-1] + ("1" if good[-1] == "0" else "0")
    elif tamper == "missing":
        headers = {}
    else:
        headers["X-Hub-Signature-256"] = sign(body, "someone-elses-secret")
    async with Served(whatsapp_bot(fake_api, tmp_path, handler)) as served:
        assert (await served.post(PATH, data=body, headers=headers)).status == 401
    assert seen == [] and fake_api.calls == []


async def test_the_handshake_echoes_the_challenge_only_for_the_verify_token(fake_api, tmp_path):
    async with Served(whatsapp_bot(fake_api, tmp_path)) as served:
        ok = await served.get(PATH, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                            "hub.challenge": "98765"})
        assert ok.status == 200 and await ok.text() == "98765" and ok.content_type == "text/plain"
        wrong = await served.get(PATH, params={"hub.mode": "subscribe", "hub.verify_token": "nope",
                                               "hub.challenge": "98765"})
        assert wrong.status == 403 and await wrong.text() != "98765"


@pytest.mark.parametrize("document", [
    b"{oops",
    b'"a string"',
    b'{"entry": []}',
    b'{"object": "page", "entry": []}',
    b'{"object": "whatsapp_business_account", "entry": [{"changes": {"value": {}}}]}',
    b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": []}]}]}',
    b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",'
    b' "value": {"messages": [{"id": "wamid.x", "type": "text", "text": {"body": "no sender"}}]}}]}]}',
])
async def test_a_body_that_is_not_a_whatsapp_webhook_is_400(fake_api, tmp_path, document):
    seen, handler = recorder()
    async with Served(whatsapp_bot(fake_api, tmp_path, handler)) as served:
        response = await served.post(PATH, data=document, headers={"X-Hub-Signature-256": sign(document)})
        assert response.status == 400
    assert seen == [] and fake_api.calls == []


@pytest.mark.parametrize("message, kind, check", [
    (text("Does it come in another color?"), "text", lambda e: e.text == "Does it come in another color?"),
    ({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "CHANGE", "title": "Change"}}},
     "payload", lambda e: e.payload == "CHANGE" and e.data["title"] == "Change"),
    ({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {
        "id": "priority_express", "title": "Express Shipping", "description": "Next day"}}},
     "payload", lambda e: e.payload == "priority_express" and e.data["description"] == "Next day"),
    ({"type": "button", "button": {"payload": "STOP_PROMOS", "text": "Stop promotions"}},
     "payload", lambda e: e.payload == "STOP_PROMOS" and e.data["title"] == "Stop promotions"),
    ({"type": "image", "image": {"caption": "my cat", "mime_type": "image/jpeg", "sha256": "abc", "id": "1003383421387256"}},
     "image", lambda e: e.data["media_id"] == "1003383421387256" and e.text == "my cat"),
    ({"type": "audio", "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "55", "voice": True}},
     "audio", lambda e: e.data["media_id"] == "55" and e.data["voice"] is True and e.text is None),
    ({"type": "video", "video": {"mime_type": "video/mp4", "sha256": "x", "id": "66"}}, "video",
     lambda e: e.data["mime_type"] == "video/mp4"),
    ({"type": "document", "document": {"filename": "invoice.pdf", "mime_type": "application/pdf", "sha256": "x", "id": "77"}},
     "file", lambda e: e.data["filename"] == "invoice.pdf"),
    ({"type": "sticker", "sticker": {"mime_type": "image/webp", "sha256": "x", "id": "88", "animated": False}},
     "sticker", lambda e: e.data["media_id"] == "88"),
    ({"type": "location", "location": {"latitude": 37.4611978, "longitude": -122.2164385, "name": "Facebook HQ",
                                       "address": "1 Hacker Way, Menlo Park, CA 94025"}},
     "location", lambda e: (e.data["latitude"], e.data["longitude"], e.data["name"]) == (37.4611978, -122.2164385, "Facebook HQ")),
    ({"type": "reaction", "reaction": {"message_id": "wamid.out1", "emoji": "\U0001F44D"}}, "unknown",
     lambda e: e.data["message_type"] == "reaction"),
    ({"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]}, "unknown",
     lambda e: e.data["errors"][0]["code"] == 131051),
])
async def test_every_message_type_becomes_a_typed_event(fake_api, tmp_path, message, kind, check):
    seen, handler = recorder()
    message = {"from": WA_ID, "timestamp": str(NOW), **message, "id": "wamid.HBgL"}
    async with Served(whatsapp_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, webhook(value([message])))).status == 200
    [event] = seen
    assert event.type == kind and check(event)
    assert (event.platform, event.session_key, event.user_id) == ("whatsapp", f"whatsapp:{USER}", USER)
    assert event.id == "wamid.HBgL" and event.timestamp == float(NOW) and event.raw == message
    assert event.data["profile_name"] == "Sheena Nelson"


async def test_statuses_are_typed_and_kept_in_the_recipients_session(fake_api, tmp_path):
    seen, handler = recorder()
    failed = status("failed", errors=[{"code": 131026, "title": "Message undeliverable"}])
    document = webhook(value(statuses=[status("sent"), status("delivered"), status("read"), failed]))
    async with Served(whatsapp_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, document)).status == 200
    assert [(e.type, e.data["status"], e.session_key, e.text, e.is_message) for e in seen] == [
        ("status", state, f"whatsapp:{USER}", None, False) for state in ("sent", "delivered", "read", "failed")]
    assert seen[0].id == "status:sent:wamid.out1" and seen[0].data["message_id"] == "wamid.out1"
    assert seen[3].data["errors"][0]["code"] == 131026
    assert fake_api.calls == []


async def test_a_batched_body_yields_every_event_in_order_per_user(fake_api, tmp_path):
    seen, handler = recorder()
    document = {"object": "whatsapp_business_account", "entry": [
        {"id": WABA_ID, "changes": [
            {"field": "messages", "value": value([text("a1", message_id="w1"), text("a2", message_id="w2")])},
            {"field": "messages", "value": value([text("b1", wa_id="447700900123", message_id="w3")], wa_id="447700900123")},
        ]},
        {"id": WABA_ID, "changes": [
            {"field": "messages", "value": value([text("a3", message_id="w4")], statuses=[status("read")])},
            {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1}},
        ]},
    ]}
    async with Served(whatsapp_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, document)).status == 200
    assert [(e.session_key, e.type, e.text) for e in seen if e.session_key == f"whatsapp:{USER}"] == [
        (f"whatsapp:{USER}", "text", "a1"), (f"whatsapp:{USER}", "text", "a2"), (f"whatsapp:{USER}", "text", "a3"),
        (f"whatsapp:{USER}", "status", None)]
    assert [(e.type, e.text) for e in seen if e.session_key == "whatsapp:+447700900123"] == [("text", "b1")]
    assert [(e.type, e.raw["field"]) for e in seen if e.session_key == "whatsapp:_"] == [
        ("unknown", "message_template_status_update")]


async def test_a_redelivered_message_is_handled_once(fake_api, tmp_path):
    async with Served(whatsapp_bot(fake_api, tmp_path)) as served:
        for _ in range(2):
            assert (await post(served, webhook(value([text("hi", message_id="wamid.same")])))).status == 200
    assert [c.json["text"]["body"] for c in fake_api.calls] == ["Count: 1"]


async def test_image_buttons_quick_replies_and_typing_call_the_messages_api(fake_api, tmp_path):
    async def handler(context):
        await context.send_typing()
        await context.send_image("https://example.com/cat.png", caption="a cat")
        await context.send_buttons("Change or cancel?", [("Change", "CHANGE"), {"title": "Cancel", "payload": "CANCEL"}])
        await context.send_quick_replies("Size?", ["S", "M", "L"])

    async with Served(whatsapp_bot(fake_api, tmp_path, handler)) as served:
        await post(served, webhook(value([text("hi", message_id="wamid.in7")])))
    assert all(c.path == f"/{PHONE_NUMBER_ID}/messages" and c.headers["Authorization"] == f"Bearer {TOKEN}"
               for c in fake_api.calls)
    typing, image, buttons, quick = (c.json for c in fake_api.calls)
    assert typing == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.in7",
                      "typing_indicator": {"type": "text"}}
    assert image == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": USER, "type": "image",
                     "image": {"link": "https://example.com/cat.png", "caption": "a cat"}}
    assert buttons["type"] == "interactive" and buttons["to"] == USER
    assert buttons["interactive"] == {"type": "button", "body": {"text": "Change or cancel?"}, "action": {"buttons": [
        {"type": "reply", "reply": {"id": "CHANGE", "title": "Change"}},
        {"type": "reply", "reply": {"id": "CANCEL", "title": "Cancel"}}]}}
    assert [b["reply"] for b in quick["interactive"]["action"]["buttons"]] == [
        {"id": "S", "title": "S"}, {"id": "M", "title": "M"}, {"id": "L", "title": "L"}]


async def test_more_than_three_buttons_are_a_list_and_more_than_ten_fail_before_any_call(fake_api, tmp_path):
    caught = []

    async def handler(context):
        await context.send_buttons("Pick", ["a", "b", "c", "d"])
        try:
            await context.send_buttons("Pick", [str(n) for n in range(11)])
        except ValueError as exc:
            caught.append(exc)

    async with Served(whatsapp_bot(fake_api, tmp_path, handler)) as served:
        await post(served, webhook(value([text()])))
    [call] = fake_api.calls
    assert call.json["interactive"] == {"type": "list", "body": {"text": "Pick"}, "action": {
        "button": "Choose", "sections": [{"rows": [{"id": r, "title": r} for r in "abcd"]}]}}
    assert caught and "at most 10 rows" in str(caught[0])


async def test_429_with_retry_after_is_retried_after_a_second(fake_api, tmp_path):
    fake_api.on("/messages", 429, {"error": {"message": "(#130429) Rate limit hit", "code": 130429}},
                headers={"Retry-After": "1"}, times=1)
    loop = asyncio.get_running_loop()
    async with Served(whatsapp_bot(fake_api, tmp_path)) as served:
        started = loop.time()
        assert (await post(served, webhook(value([text()])))).status == 200
        elapsed = loop.time() - started
    assert len(fake_api.calls) == 2 and elapsed >= 1.0
    assert fake_api.calls[1].json["text"] == {"body": "Count: 1"}


async def test_a_send_that_keeps_failing_raises_send_error_with_the_graph_error(fake_api, tmp_path):
    error = {"error": {"message": "Service temporarily unavailable", "type": "OAuthException", "code": 2}}
    fake_api.on("/messages", 503, error)
    caught = []

    async def handler(context):
        try:
            await context.send_text("hello")
        except SendError as exc:
            caught.append(exc)

    async with Served(whatsapp_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, webhook(value([text()])))).status == 200
    assert len(fake_api.calls) == 3
    assert caught[0].status == 503 and caught[0].body == error


async def test_bot_send_text_reaches_the_number_in_the_session_key(fake_api, tmp_path):
    async with whatsapp_bot(fake_api, tmp_path) as bot:
        await bot.send_text("whatsapp:+15550001111", "Your table is ready")
    [call] = fake_api.calls
    assert call.path == f"/{PHONE_NUMBER_ID}/messages" and call.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.json == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+15550001111",
                         "type": "text", "text": {"body": "Your table is ready"}}


async def test_a_user_known_only_by_business_scoped_id_is_answered_by_recipient(fake_api, tmp_path):
    seen, handler = recorder()

    async def reply(context):
        await handler(context)
        await context.send_text("hello")

    message = {"from_user_id": "US.13491208655302741918", "id": "wamid.u", "timestamp": str(NOW),
               "type": "text", "text": {"body": "hi"}}
    async with Served(whatsapp_bot(fake_api, tmp_path, reply)) as served:
        assert (await post(served, webhook(value([message], wa_id="US.13491208655302741918")))).status == 200
    assert seen[0].session_key == "whatsapp:US.13491208655302741918"
    body = fake_api.calls[0].json
    assert body["recipient"] == "US.13491208655302741918" and "to" not in body


async def test_webhook_set_overrides_the_wabas_callback(fake_api, tmp_path, capsys):
    fake_api.on("/subscribed_apps", json={"success": True})
    async with whatsapp_bot(fake_api, tmp_path, waba_id=WABA_ID) as bot:
        adapter = bot.adapters["whatsapp"]
        assert await adapter.command(["webhook", "set", "https://bot.example.com/webhooks/whatsapp"]) == 0
        assert await adapter.command(["webhook", "info"]) == 0
        assert await adapter.command(["webhook", "subscribe"]) == 0
        assert await adapter.command(["webhook", "delete"]) == 0
    assert [(c.method, c.path) for c in fake_api.calls] == [
        ("POST", f"/{WABA_ID}/subscribed_apps"), ("GET", f"/{WABA_ID}/subscribed_apps"),
        ("POST", f"/{WABA_ID}/subscribed_apps"), ("DELETE", f"/{WABA_ID}/subscribed_apps")]
    assert all(c.headers["Authorization"] == f"Bearer {TOKEN}" for c in fake_api.calls)
    assert fake_api.calls[0].json == {"override_callback_uri": "https://bot.example.com/webhooks/whatsapp",
                                      "verify_token": VERIFY_TOKEN}
    assert '"success": true' in capsys.readouterr().out


async def test_webhook_commands_need_the_waba_id(fake_api, tmp_path):
    async with whatsapp_bot(fake_api, tmp_path) as bot:
        with pytest.raises(ConfigError) as raised:
            await bot.adapters["whatsapp"].command(["webhook", "info"])
    assert raised.value.setting == "channels.whatsapp.waba_id" and fake_api.calls == []


@pytest.mark.parametrize("change, setting", [
    ({"phone_number_id": "+15550783881"}, "channels.whatsapp.phone_number_id"),
    ({"phone_number_id": None}, "channels.whatsapp.phone_number_id"),
    ({"app_secret": ""}, "channels.whatsapp.app_secret"),
    ({"waba_id": "my-waba"}, "channels.whatsapp.waba_id"),
])
def test_config_mistakes_name_the_setting(tmp_path, change, setting):
    channel = {"provider": "cloud", "access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
               "phone_number_id": PHONE_NUMBER_ID, **change}
    with pytest.raises(ConfigError) as raised:
        Bot(make_config(tmp_path, channels={"whatsapp": channel}), handler=counter)
    assert raised.value.setting == setting


# -- the security review's findings --------------------------------------------------------------------


async def test_a_signed_delivery_older_than_the_replay_window_is_401_and_runs_nothing(fake_api, tmp_path):
    """The Cloud API redelivers for up to 7 days: a signed body of nine days ago is a replay."""
    seen, handler = recorder()
    day = 86400
    stale = {**text("replayed", message_id="wamid.old"), "timestamp": str(NOW - 9 * day)}
    late = {**text("redelivered", message_id="wamid.late"), "timestamp": str(NOW - 6 * day)}
    async with Served(whatsapp_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, webhook(value([stale])))).status == 401
        assert (await post(served, webhook(value([late])))).status == 200
    async with Served(whatsapp_bot(fake_api, tmp_path, handler, replay_window=None)) as served:
        assert (await post(served, webhook(value([stale])))).status == 200
    assert [e.text for e in seen] == ["redelivered", "replayed"]
    assert seen[0].timestamp == NOW - 6 * day


async def test_a_stale_status_is_refused_like_a_stale_message(fake_api, tmp_path):
    seen, handler = recorder()
    old = {**status("read"), "timestamp": str(NOW - 30 * 86400)}
    async with Served(whatsapp_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, webhook(value(statuses=[old])))).status == 401
    assert seen == []


async def test_a_signature_header_of_non_ascii_bytes_is_401_not_400(fake_api, tmp_path):
    from tests.test_telegram import raw_status

    seen, handler = recorder()
    async with Served(whatsapp_bot(fake_api, tmp_path, handler)) as served:
        body = orjson.dumps(webhook(value([text()])))
        assert await raw_status(served.client.port, PATH, b"X-Hub-Signature-256: sha256=\xff\r\n", body) == 401
    assert seen == []
