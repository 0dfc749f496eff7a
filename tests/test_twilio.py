"""SMS and WhatsApp through Twilio, against the real aiohttp server and a fake Twilio API on 127.0.0.1.

Requests are signed with twilio's own RequestValidator; webhook parameters follow Twilio's "request to
your incoming message Webhook URL" and status callback pages.
"""
from __future__ import annotations

import asyncio
import base64
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from botkit import Bot, SendError
from botkit.core.errors import ConfigError
from tests.support import Served, counter, make_config

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "12345678901234567890123456789012"
NUMBER = "+15557654321"
USER = "+15551234567"
MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
validator = RequestValidator(TOKEN)


def inbound(n: int = 1, body: str | None = "hi", channel: str = "sms", **extra: str) -> dict[str, str]:
    prefix = "whatsapp:" if channel == "whatsapp" else ""
    sid = f"SM{n:032x}"
    params = {"ToCountry": "US", "SmsMessageSid": sid, "NumMedia": "0", "SmsSid": sid, "SmsStatus": "received",
              "To": prefix + NUMBER, "NumSegments": "1", "MessageSid": sid, "AccountSid": SID,
              "From": prefix + USER, "ApiVersion": "2010-04-01"}
    if body is not None:
        params["Body"] = body
    if channel == "whatsapp":
        params.update(ProfileName="Ada", WaId=USER[1:], MessageType="text")
    params.update(extra)
    return params


def status(sid: str, state: str, channel: str = "sms") -> dict[str, str]:
    prefix = "whatsapp:" if channel == "whatsapp" else ""
    return {"SmsSid": sid, "SmsStatus": state, "MessageStatus": state, "To": prefix + USER, "MessageSid": sid,
            "AccountSid": SID, "From": prefix + NUMBER, "ApiVersion": "2010-04-01"}


def twilio_bot(fake_api, tmp_path, handler=counter, channel: str = "sms", **settings) -> Bot:
    config = make_config(
        tmp_path,
        channels={channel: {"account_sid": SID, "auth_token": TOKEN, "phone_number": NUMBER,
                            "api_base": fake_api.url, **settings}},
        http={"attempts": 3, "backoff": 0.01},
    )
    return Bot(config, handler=handler)


async def post(served: Served, params: dict[str, str], channel: str = "sms", url: str | None = None,
               headers: dict[str, str] | None = None, signature: str | None = None):
    """POST as Twilio does: form-encoded, signed with RequestValidator over the URL Twilio called."""
    path = f"/webhooks/{channel}"
    signed = validator.compute_signature(url or served.url + path, params)
    return await served.post(path, data=urlencode(params).encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signed if signature is None else signature, **(headers or {})})


def recorder():
    seen = []

    async def handler(context):
        seen.append(context.event)

    return seen, handler


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


async def test_a_signed_sms_is_answered_with_empty_twiml_and_the_messages_api(fake_api, tmp_path):
    bot = twilio_bot(fake_api, tmp_path)
    async with Served(bot) as served:
        response = await post(served, inbound())
        assert response.status == 200
        assert response.content_type == "text/xml" and await response.text() == TWIML
        assert (await bot.store.load(f"sms:{USER}"))["state"] == {"count": 1}
    [call] = fake_api.calls
    assert call.method == "POST" and call.path == MESSAGES
    assert call.headers["Authorization"] == basic_auth()
    assert call.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert call.form == {"To": USER, "From": NUMBER, "Body": "Count: 1"}


async def test_a_signed_whatsapp_message_answers_with_whatsapp_addresses(fake_api, tmp_path):
    seen = []

    async def handler(context):
        seen.append(context.event)
        await counter(context)

    async with Served(twilio_bot(fake_api, tmp_path, handler, channel="whatsapp")) as served:
        response = await post(served, inbound(channel="whatsapp"), channel="whatsapp")
        assert response.status == 200 and await response.text() == TWIML
    [event] = seen
    assert event.session_key == f"whatsapp:{USER}" and event.user_id == USER and event.text == "hi"
    assert event.data["profile_name"] == "Ada"
    assert fake_api.calls[0].form == {"To": f"whatsapp:{USER}", "From": f"whatsapp:{NUMBER}", "Body": "Count: 1"}


@pytest.mark.parametrize("tamper", ["body", "signature", "missing", "other token", "other url"])
async def test_a_changed_request_or_signature_is_401_and_runs_nothing(fake_api, tmp_path, tamper):
    seen, handler = recorder()
    params = inbound()
    async with Served(twilio_bot(fake_api, tmp_path, handler)) as served:
        url = served.url + "/webhooks/sms"
        good = validator.compute_signature(url, params)
        signature = {"body": good, "signature": good[:-4] + "AAA=", "missing": "",
                     "other token": RequestValidator("x" * 32).compute_signature(url, params),
                     "other url": validator.compute_signature("https://elsewhere.example.com/webhooks/sms", params)}[tamper]
        sent = {**params, "Body": "give me everything"} if tamper == "body" else params
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature:
            headers["X-Twilio-Signature"] = signature
        response = await served.post("/webhooks/sms", data=urlencode(sent).encode(), headers=headers)
        assert response.status == 401
    assert seen == [] and fake_api.calls == []


@pytest.mark.parametrize("params", [{}, {"Body": "hi", "From": USER, "To": NUMBER}, {"MessageSid": "SM1", "Body": "hi"}])
async def test_a_signed_body_that_is_not_a_twilio_message_is_400(fake_api, tmp_path, params):
    seen, handler = recorder()
    async with Served(twilio_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, params)).status == 400
    assert seen == []


async def test_a_whatsapp_message_at_the_sms_webhook_is_refused(fake_api, tmp_path):
    seen, handler = recorder()
    async with Served(twilio_bot(fake_api, tmp_path, handler)) as served:
        response = await post(served, inbound(channel="whatsapp"))
        assert response.status == 400 and "whatsapp" in await response.text()
    assert seen == []


def test_request_validator_accepts_our_signatures():
    from botkit.adapters.twilio import signature

    params = {**inbound(body="Grüße & 100% ✓"), "MediaUrl0": "https://api.twilio.com/x?a=1&b=2"}
    for url in ["https://bot.example.com/webhooks/sms", "https://bot.example.com/webhooks/sms?route=a%20b",
                "http://127.0.0.1:8080/webhooks/sms"]:
        ours = signature(url, list(params.items()), TOKEN)
        assert ours == validator.compute_signature(url, params)
        assert validator.validate(url, params, ours)
        assert not validator.validate(url, {**params, "Body": "changed"}, ours)


async def test_behind_a_trusted_proxy_the_forwarded_url_is_the_signed_one(fake_api, tmp_path):
    seen, handler = recorder()
    public = "https://bot.example.com/webhooks/sms"
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.example.com"}
    async with Served(twilio_bot(fake_api, tmp_path, handler, trusted_proxies=["127.0.0.0/8"])) as served:
        assert (await post(served, inbound(1), url=public, headers=proxied)).status == 200
        assert (await post(served, inbound(2), url=public)).status == 401  # no forwarded headers: not that URL
        # the proxy appended its own values to what the client sent: the last ones count
        chained = {"X-Forwarded-Proto": "http, https", "X-Forwarded-Host": "other-app.example.com, bot.example.com"}
        assert (await post(served, inbound(3), url=public, headers=chained)).status == 200
        assert (await post(served, inbound(4), url="https://bot.example.com:443/webhooks/sms", headers=proxied)).status == 200
    assert [e.id for e in seen] == [f"SM{1:032x}", f"SM{3:032x}", f"SM{4:032x}"]


@pytest.mark.parametrize("trusted", [None, ["10.0.0.0/8", "192.0.2.7"]])
async def test_forwarded_headers_from_a_peer_that_is_no_trusted_proxy_are_ignored(fake_api, tmp_path, trusted):
    """A request Twilio signed for another app of the account, replayed here naming that app's URL in
    X-Forwarded-*: the URL checked stays this request's own, so the signature does not match."""
    seen, handler = recorder()
    other_app = "https://other-app.example.com/webhooks/sms"
    naming_it = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "other-app.example.com"}
    async with Served(twilio_bot(fake_api, tmp_path, handler, trusted_proxies=trusted)) as served:
        assert (await post(served, inbound(1), url=other_app, headers=naming_it)).status == 401
        assert (await post(served, inbound(2))).status == 200  # signed for this server's own URL
    assert [e.id for e in seen] == [f"SM{2:032x}"]


async def test_a_trusted_proxy_may_be_an_ipv6_block(fake_api, tmp_path):
    from botkit.adapters.twilio import from_networks, trusted_networks

    networks = trusted_networks("sms", ["::1", "fd00::/8", "10.0.0.0/8"])
    assert from_networks("::1", networks) and from_networks("fd12::3", networks)
    assert from_networks("::ffff:10.1.2.3", networks)  # an IPv4 peer on a dual-stack socket
    assert not from_networks("127.0.0.1", networks) and not from_networks(None, networks)
    assert not from_networks("not-an-address", networks)


@pytest.mark.parametrize("public_url, twilio_calls", [
    ("https://bot.example.com/bot/webhooks/sms", "https://bot.example.com/bot/webhooks/sms"),
    ("https://bot.example.com", "https://bot.example.com/webhooks/sms"),
    ("https://bot.example.com/bot/webhooks/sms", "https://bot.example.com/bot/webhooks/sms?tenant=7"),
])
async def test_public_url_is_the_url_twilio_signs(fake_api, tmp_path, public_url, twilio_calls):
    seen, handler = recorder()
    query = twilio_calls.partition("?")[2]
    async with Served(twilio_bot(fake_api, tmp_path, handler, public_url=public_url)) as served:
        path = "/webhooks/sms" + (f"?{query}" if query else "")
        params = inbound()
        signed = validator.compute_signature(twilio_calls, params)
        response = await served.post(path, data=urlencode(params).encode(), headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signed,
            "X-Forwarded-Host": "ignored.example.com"})
        assert response.status == 200
        local = validator.compute_signature(served.url + path, params)
        assert (await served.post(path, data=urlencode(params).encode(), headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": local})).status == 401
    assert len(seen) == 1


@pytest.mark.parametrize("extra, kind, check", [
    ({"NumMedia": "1", "MediaUrl0": "https://api.twilio.com/m/ME1", "MediaContentType0": "image/jpeg", "Body": "look"},
     "image", lambda e: e.data["url"] == "https://api.twilio.com/m/ME1" and e.text == "look"),
    ({"NumMedia": "1", "MediaUrl0": "https://api.twilio.com/m/ME2", "MediaContentType0": "audio/ogg", "Body": ""},
     "audio", lambda e: e.data["content_type"] == "audio/ogg" and e.text is None),
    ({"NumMedia": "2", "MediaUrl0": "https://x/1", "MediaContentType0": "video/mp4", "MediaUrl1": "https://x/2",
      "MediaContentType1": "image/png"}, "video", lambda e: [m["url"] for m in e.data["media"]] == ["https://x/1", "https://x/2"]),
    ({"NumMedia": "1", "MediaUrl0": "https://x/3", "MediaContentType0": "application/pdf"}, "file", lambda e: True),
    ({"Latitude": "52.52", "Longitude": "13.405", "Address": "Berlin", "Label": "Office", "Body": "", "MessageType": "location"},
     "location", lambda e: (e.data["latitude"], e.data["longitude"], e.data["label"]) == (52.52, 13.405, "Office")),
    ({"ButtonPayload": "ORDER_YES", "ButtonText": "Yes please", "Body": "Yes please", "MessageType": "button"},
     "payload", lambda e: e.payload == "ORDER_YES" and e.data["title"] == "Yes please" and e.text is None),
    ({"Body": "hello there"}, "text", lambda e: e.text == "hello there"),
    ({"Body": "", "MessageType": "reaction"}, "unknown", lambda e: e.data["message_type"] == "reaction" and e.text is None),
])
async def test_incoming_messages_become_typed_events(fake_api, tmp_path, extra, kind, check):
    seen, handler = recorder()
    params = inbound(channel="whatsapp", **extra)
    async with Served(twilio_bot(fake_api, tmp_path, handler, channel="whatsapp")) as served:
        assert (await post(served, params, channel="whatsapp")).status == 200
    [event] = seen
    assert event.type == kind and check(event)
    assert event.id == params["MessageSid"] and event.session_key == f"whatsapp:{USER}" and event.raw == params


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
async def test_status_callbacks_are_typed_per_status_and_never_user_text(fake_api, tmp_path, channel):
    seen, handler = recorder()
    sent = "SM" + "f" * 32
    async with Served(twilio_bot(fake_api, tmp_path, handler, channel=channel)) as served:
        for state in ("sent", "delivered", "delivered"):
            response = await post(served, status(sent, state, channel), channel=channel)
            assert response.status == 200 and await response.text() == TWIML
    assert [(e.type, e.data["status"], e.text) for e in seen] == [("status", "sent", None), ("status", "delivered", None)]
    assert {e.session_key for e in seen} == {f"{channel}:{USER}"}
    assert fake_api.calls == []


async def test_the_same_message_sid_twice_is_handled_once(fake_api, tmp_path):
    bot = twilio_bot(fake_api, tmp_path)
    async with Served(bot) as served:
        for _ in range(2):
            assert (await post(served, inbound(9))).status == 200
        assert (await bot.store.load(f"sms:{USER}"))["state"] == {"count": 1}
    assert len(fake_api.calls) == 1


async def test_image_template_options_and_typing(fake_api, tmp_path):
    async def handler(context):
        await context.send_typing()
        await context.send_image("https://example.com/cat.jpg", caption="a cat")
        await context.send_native("template", "HX" + "1" * 32, {"1": "12/1"})
        await context.send_text("tracked", status_callback="https://bot.example.com/status")

    async with Served(twilio_bot(fake_api, tmp_path, handler, channel="whatsapp", messaging_api_base=fake_api.url)) as served:
        await post(served, inbound(channel="whatsapp"), channel="whatsapp")
    typing, image, template, tracked = fake_api.calls
    assert typing.path == "/v2/Indicators/Typing.json" and typing.form == {"channel": "whatsapp", "messageId": f"SM{1:032x}"}
    assert typing.headers["Authorization"] == basic_auth()
    assert image.form == {"To": f"whatsapp:{USER}", "From": f"whatsapp:{NUMBER}", "Body": "a cat",
                          "MediaUrl": "https://example.com/cat.jpg"}
    assert template.form == {"To": f"whatsapp:{USER}", "From": f"whatsapp:{NUMBER}", "ContentSid": "HX" + "1" * 32,
                             "ContentVariables": '{"1": "12/1"}'}
    assert tracked.form["StatusCallback"] == "https://bot.example.com/status"


async def test_sms_typing_does_nothing(fake_api, tmp_path):
    async def handler(context):
        await context.send_typing()

    async with Served(twilio_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, inbound())).status == 200
    assert fake_api.calls == []


async def test_429_with_retry_after_is_retried_after_a_second(fake_api, tmp_path):
    fake_api.on("Messages.json", 429, {"code": 20429, "message": "Too Many Requests"}, headers={"Retry-After": "1"}, times=1)
    loop = asyncio.get_running_loop()
    async with Served(twilio_bot(fake_api, tmp_path)) as served:
        started = loop.time()
        assert (await post(served, inbound())).status == 200
        elapsed = loop.time() - started
    assert len(fake_api.calls) == 2 and elapsed >= 1.0


async def test_500_on_every_attempt_raises_send_error_in_the_handler(fake_api, tmp_path):
    fake_api.on("Messages.json", 500, {"code": 20500, "message": "Internal Server Error"})
    caught = []

    async def handler(context):
        try:
            await context.send_text("hello")
        except SendError as exc:
            caught.append(exc)

    async with Served(twilio_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, inbound())).status == 200
    assert len(fake_api.calls) == 3
    assert caught[0].status == 500 and caught[0].body == {"code": 20500, "message": "Internal Server Error"}


@pytest.mark.parametrize("channel, to, sender", [("sms", USER, NUMBER), ("whatsapp", f"whatsapp:{USER}", f"whatsapp:{NUMBER}")])
async def test_proactive_send_text_uses_the_messages_api(fake_api, tmp_path, channel, to, sender):
    async with twilio_bot(fake_api, tmp_path, channel=channel) as bot:
        await bot.send_text(f"{channel}:{USER}", "ping")
    [call] = fake_api.calls
    assert call.path == MESSAGES and call.form == {"To": to, "From": sender, "Body": "ping"}


async def test_cli_points_the_sms_number_at_the_webhook(fake_api, tmp_path, capsys):
    number = {"sid": "PN" + "2" * 32, "phone_number": NUMBER, "sms_url": "https://old.example.com", "sms_method": "POST"}
    fake_api.on(r"IncomingPhoneNumbers\.json$", json={"incoming_phone_numbers": [number], "page": 0})
    fake_api.on(r"IncomingPhoneNumbers/PN2+\.json$", json={**number, "sms_url": "https://bot.example.com/webhooks/sms"})
    async with twilio_bot(fake_api, tmp_path) as bot:
        assert await bot.adapters["sms"].command(["webhook", "set", "https://bot.example.com/webhooks/sms"]) == 0
    lookup, update = fake_api.calls
    assert lookup.method == "GET" and lookup.path == f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json"
    assert lookup.query == {"PhoneNumber": NUMBER} and lookup.headers["Authorization"] == basic_auth()
    assert update.method == "POST" and update.path == f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers/{number['sid']}.json"
    assert update.form == {"SmsUrl": "https://bot.example.com/webhooks/sms", "SmsMethod": "POST"}
    assert "https://bot.example.com/webhooks/sms" in capsys.readouterr().out


async def test_cli_says_when_the_number_is_not_in_the_account(fake_api, tmp_path):
    fake_api.on(r"IncomingPhoneNumbers\.json$", json={"incoming_phone_numbers": []})
    async with twilio_bot(fake_api, tmp_path) as bot:
        with pytest.raises(ConfigError) as error:
            await bot.adapters["sms"].command(["webhook", "info"])
    assert error.value.setting == "channels.sms.phone_number"


async def test_cli_points_the_whatsapp_sender_at_the_webhook(fake_api, tmp_path):
    other = {"sid": "XE" + "1" * 32, "sender_id": "whatsapp:+15550000000", "status": "ONLINE"}
    ours = {"sid": "XE" + "2" * 32, "sender_id": f"whatsapp:{NUMBER}", "status": "ONLINE", "webhook": {}}
    fake_api.on(r"^/v2/Channels/Senders$", json={"senders": [other], "meta": {
        "next_page_url": "https://messaging.twilio.com/v2/Channels/Senders?Channel=whatsapp&PageSize=100&PageToken=p2"}}, times=1)
    fake_api.on(r"^/v2/Channels/Senders$", json={"senders": [ours], "meta": {"next_page_url": None}}, times=1)
    fake_api.on(r"^/v2/Channels/Senders/XE2+$", json={**ours, "webhook": {"callback_url": "https://bot.example.com/webhooks/whatsapp", "callback_method": "POST"}})
    async with twilio_bot(fake_api, tmp_path, channel="whatsapp", messaging_api_base=fake_api.url) as bot:
        assert await bot.adapters["whatsapp"].command(["webhook", "set", "https://bot.example.com/webhooks/whatsapp"]) == 0
    first, second, update = fake_api.calls
    assert first.query == {"Channel": "whatsapp", "PageSize": "100"} and second.query["PageToken"] == "p2"
    assert update.method == "POST" and update.path == f"/v2/Channels/Senders/{ours['sid']}"
    assert update.json == {"webhook": {"callback_url": "https://bot.example.com/webhooks/whatsapp", "callback_method": "POST"}}
    assert update.headers["Authorization"] == basic_auth()


@pytest.mark.parametrize("setting, value", [("phone_number", "555-1234"), ("account_sid", "SK123"),
                                            ("public_url", "bot.example.com"), ("provider", "meta"),
                                            ("trusted_proxies", "10.0.0.1"), ("trusted_proxies", ["10.0.0.300"])])
def test_config_mistakes_name_the_setting(tmp_path, setting, value):
    channel = "whatsapp" if setting == "provider" else "sms"
    settings = {"account_sid": SID, "auth_token": TOKEN, "phone_number": NUMBER, setting: value}
    with pytest.raises(ConfigError) as error:
        Bot(make_config(tmp_path, channels={channel: settings}), handler=counter)
    assert error.value.setting == f"channels.{channel}.{setting}"


def test_whatsapp_takes_its_number_with_or_without_the_prefix(tmp_path):
    settings = {"account_sid": SID, "auth_token": TOKEN, "phone_number": f"whatsapp:{NUMBER}", "provider": "twilio"}
    bot = Bot(make_config(tmp_path, channels={"whatsapp": settings}), handler=counter)
    assert bot.adapters["whatsapp"].settings["phone_number"] == NUMBER


# -- the security review's findings --------------------------------------------------------------------

WELL_FORMED = base64.b64encode(b"\0" * 20).decode()
"""A signature of the right shape (base64 of 20 bytes) that signs nothing."""


async def test_a_body_over_the_channel_limit_is_413_before_any_signature_is_computed(fake_api, tmp_path):
    """Twilio's posts are a few kilobytes: a 200 KiB form is refused on its Content-Length, unread."""
    seen, handler = recorder()
    params = inbound(Body="x" * 200 * 1024)
    async with Served(twilio_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, params, signature=WELL_FORMED)).status == 413
        assert (await post(served, params)).status == 413  # signed or not: no Twilio post is that large
    assert seen == []


async def test_a_form_of_too_many_fields_is_401_however_it_is_signed(fake_api, tmp_path):
    seen, handler = recorder()
    params = {**inbound(), **{f"F{n}": "v" for n in range(600)}}
    async with Served(twilio_bot(fake_api, tmp_path, handler)) as served:
        assert (await post(served, params)).status == 401
        assert (await post(served, {**inbound(2), **{f"F{n}": "v" for n in range(400)}})).status == 200
    assert [e.id for e in seen] == [f"SM{2:032x}"]


@pytest.mark.parametrize("header", [b"", b"X-Twilio-Signature: not-a-signature\r\n", b"X-Twilio-Signature: \xff\xfe\r\n"])
async def test_a_missing_or_malformed_signature_is_401_before_the_body_is_read(fake_api, tmp_path, header):
    from tests.test_telegram import raw_status

    seen, handler = recorder()
    async with Served(twilio_bot(fake_api, tmp_path, handler)) as served:
        status = await raw_status(served.client.port, "/webhooks/sms", header, b"Body=hi&", length=50_000,
                                  content_type=b"application/x-www-form-urlencoded")
        assert status == 401
    assert seen == []


async def test_a_body_that_is_not_a_form_is_401_not_400(fake_api, tmp_path):
    """What the signature covers cannot be read, so it cannot be checked: a failed verification."""
    seen, handler = recorder()
    async with Served(twilio_bot(fake_api, tmp_path, handler)) as served:
        response = await served.post("/webhooks/sms", data=b"\xff\xfe not utf-8", headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": WELL_FORMED})
        assert response.status == 401
    assert seen == []


def test_the_signature_is_twilios_for_every_url_variant():
    """Signing the sorted parameters once and the URL variants after them gives RequestValidator's values."""
    from botkit.adapters.twilio import sign, signed_params, url_variants

    params = {**inbound(body="Grüße"), "MediaUrl0": "https://api.twilio.com/x?a=1&b=2"}
    signed = signed_params(list(params.items()))
    variants = url_variants("https://bot.example.com/webhooks/sms")
    assert variants == ["https://bot.example.com/webhooks/sms", "https://bot.example.com:443/webhooks/sms"]
    for url in variants:
        assert sign(url, signed, TOKEN) == validator.compute_signature(url, params)
    assert url_variants("http://127.0.0.1:8080/x") == ["http://127.0.0.1:8080/x", "http://127.0.0.1/x"]
