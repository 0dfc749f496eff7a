"""The Teams adapter against the real aiohttp server, with a FakeAPI playing the Bot Framework: OpenID
metadata, signing keys (a local RSA key served as JWKS), the token endpoint and the connector
(the activities' serviceUrl points at it)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import orjson
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from botkit import Bot, SendError
from botkit.core.errors import BotkitError, ConfigError
from tests.support import FakeAPI, Served, counter, make_config

APP_ID = "0a6ab4a3-6c6d-4e46-9a79-0b1c8b5e2f10"
APP_PASSWORD = "app-p4ssword~secret"
ISSUER = "https://api.botframework.com"
CONVERSATION = "19:3c8ab2@thread.tacv2;messageid=1700000000001"
BOT = {"id": f"28:{APP_ID}", "name": "Counter"}
USER = {"id": "29:1GpH-user", "name": "Ada Lovelace", "aadObjectId": "c33aafc4-646d-4543-9d4c-abd28e4d2110"}
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
METADATA_PATH = "/v1/.well-known/openidconfiguration"
KEYS_PATH = "/v1/.well-known/keys"
TOKEN_PATH = "/botframework.com/oauth2/v2.0/token"


@pytest.fixture(scope="module")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


def now_iso(seconds_ago: float = 0.0) -> str:
    """An activity timestamp as the Bot Framework writes it: ISO 8601 in UTC with seven decimals."""
    moment = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def jwk(private_key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True), "kid": kid, "use": "sig", **extra}


class BotFramework:
    """The Bot Framework side of the fake: what keys it publishes and which tokens it has issued."""

    def __init__(self, api: FakeAPI, keys: list[rsa.RSAPrivateKey]) -> None:
        self.api = api
        self.keys = keys
        self.published = [jwk(keys[0], "k1", endorsements=["msteams", "webchat"])]
        self.keys_status = 200
        self.tokens_issued = 0
        self.service_url = f"{api.url}/amer/"
        api.on(f"{METADATA_PATH}$", json={
            "issuer": ISSUER, "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": f"{api.url}{KEYS_PATH}", "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"]})
        api.on(f"{KEYS_PATH}$", handler=lambda request, call: web.json_response({"keys": self.published}, status=self.keys_status))
        api.on(f"{TOKEN_PATH}$", handler=self._issue_token)

    async def _issue_token(self, request: web.Request, call: Any) -> web.Response:
        self.tokens_issued += 1
        await asyncio.sleep(0.05)  # slow enough for concurrent sends to overlap the fetch
        return web.json_response({"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                                  "access_token": f"bot-token-{self.tokens_issued}"})

    def token(self, key: int = 0, kid: str = "k1", **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": APP_ID, "nbf": now - 10, "exp": now + 3600, "serviceurl": self.service_url, **claims}
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, self.keys[key], algorithm="RS256",
                          headers={"kid": kid})

    def headers(self, token: str | None = None, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token(**claims)}"}

    def activity(self, kind: str = "message", activity_id: str = "1700000000123", **fields: Any) -> dict[str, Any]:
        body = {
            "type": kind, "id": activity_id, "timestamp": now_iso(), "channelId": "msteams",
            "serviceUrl": self.service_url, "from": USER, "recipient": BOT, "locale": "en-US",
            "conversation": {"id": CONVERSATION, "conversationType": "channel", "isGroup": True, "tenantId": TENANT},
            "channelData": {"tenant": {"id": TENANT}},
        }
        if kind == "message":
            body["text"] = "hi"
        body.update(fields)
        return body

    def connector_calls(self) -> list[Any]:
        return self.api.calls_to(r"^/amer/v3/")


@pytest.fixture
def framework(fake_api, rsa_keys) -> BotFramework:
    return BotFramework(fake_api, rsa_keys)


def teams_bot(framework: BotFramework, tmp_path, handler=counter, clock=time.time, **settings: Any) -> Bot:
    url = framework.api.url
    channel = {"app_id": APP_ID, "app_password": APP_PASSWORD, "openid_metadata_url": f"{url}{METADATA_PATH}",
               "token_url": f"{url}{TOKEN_PATH}", **settings}
    config = make_config(tmp_path, channels={"teams": channel}, http={"attempts": 3, "backoff": 0.01})
    return Bot(config, handler=handler, clock=clock)


def recorder(seen: list) -> Any:
    async def handler(context) -> None:
        seen.append(context.event)
    return handler


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()
    return f"{part(header)}.{part(payload)}"


def hs256_with_public_key(framework: BotFramework) -> str:
    """The algorithm-confusion attack: HMAC over the token with the published public key as the secret."""
    pem = framework.keys[0].public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": "k1"},
                             {"iss": ISSUER, "aud": APP_ID, "exp": now + 3600, "serviceurl": framework.service_url})
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def alg_none(framework: BotFramework) -> str:
    now = int(time.time())
    return unsigned({"alg": "none", "typ": "JWT", "kid": "k1"},
                    {"iss": ISSUER, "aud": APP_ID, "exp": now + 3600, "serviceurl": framework.service_url}) + "."


async def test_a_signed_activity_runs_the_handler_and_the_reply_reaches_the_connector(framework, tmp_path):
    framework.api.on(r"^/amer/v3/", 201, {"id": "1700000000999"}, times=1)
    async with Served(teams_bot(framework, tmp_path)) as served:
        response = await served.post("/webhooks/teams", json=framework.activity(), headers=framework.headers())
        assert response.status == 200
    [token_call] = framework.api.calls_to(f"{TOKEN_PATH}$")
    assert token_call.form == {"grant_type": "client_credentials", "client_id": APP_ID, "client_secret": APP_PASSWORD,
                               "scope": "https://api.botframework.com/.default"}
    [reply] = framework.connector_calls()
    assert reply.method == "POST"
    assert reply.path == f"/amer/v3/conversations/{CONVERSATION}/activities/1700000000123"
    assert reply.headers["Authorization"] == "Bearer bot-token-1"
    assert reply.json == {
        "type": "message", "text": "Count: 1", "from": BOT, "recipient": USER, "replyToId": "1700000000123",
        "conversation": {"id": CONVERSATION, "conversationType": "channel", "isGroup": True, "tenantId": TENANT},
    }


async def test_a_token_a_little_past_exp_is_within_the_five_minutes_of_leeway(framework, tmp_path):
    late = framework.token(exp=int(time.time()) - 120)
    async with Served(teams_bot(framework, tmp_path)) as served:
        assert (await served.post("/webhooks/teams", json=framework.activity(), headers=framework.headers(late))).status == 200


def _rejected_requests():
    now = int(time.time())
    return {
        "wrong audience": lambda f: f.headers(aud="another-bots-app-id"),
        "wrong issuer": lambda f: f.headers(iss="https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"),
        "expired": lambda f: f.headers(exp=now - 600, nbf=now - 4000),
        "not yet valid": lambda f: f.headers(nbf=now + 600),
        "no exp": lambda f: f.headers(exp=None),
        "unknown kid": lambda f: f.headers(f.token(key=1, kid="k-unknown")),
        "known kid, other key": lambda f: f.headers(f.token(key=1, kid="k1")),
        "alg none": lambda f: f.headers(alg_none(f)),
        "HS256 with the public key": lambda f: f.headers(hs256_with_public_key(f)),
        "mismatched serviceUrl": lambda f: f.headers(serviceurl="https://attacker.example/amer/"),
        "no serviceurl claim": lambda f: f.headers(serviceurl=None),
        "missing Authorization": lambda f: {},
        "not Bearer": lambda f: {"Authorization": f"Basic {f.token()}"},
        "garbage token": lambda f: {"Authorization": "Bearer not.a.jwt"},
    }


@pytest.mark.parametrize("case", list(_rejected_requests()))
async def test_a_request_failing_any_token_check_is_401_and_runs_nothing(framework, tmp_path, case):
    seen: list = []
    headers = _rejected_requests()[case](framework)
    async with Served(teams_bot(framework, tmp_path, recorder(seen))) as served:
        response = await served.post("/webhooks/teams", json=framework.activity(), headers=headers)
        assert response.status == 401
    assert seen == [] and framework.connector_calls() == []


async def test_a_key_endorsed_for_other_channels_is_refused_for_this_one(framework, tmp_path):
    seen: list = []
    async with Served(teams_bot(framework, tmp_path, recorder(seen))) as served:
        refused = await served.post("/webhooks/teams", json=framework.activity(channelId="slack"), headers=framework.headers())
        accepted = await served.post("/webhooks/teams", json=framework.activity(channelId="webchat"), headers=framework.headers())
    assert (refused.status, accepted.status) == (401, 200)
    assert len(seen) == 1


async def test_unknown_kids_make_one_jwks_refetch_not_one_each(framework, tmp_path):
    async with Served(teams_bot(framework, tmp_path)) as served:
        assert (await served.post("/webhooks/teams", json=framework.activity(), headers=framework.headers())).status == 200
        statuses = await asyncio.gather(*(
            served.post("/webhooks/teams", json=framework.activity(), headers=framework.headers(framework.token(key=1, kid=f"made-up-{n}")))
            for n in range(5)))
        assert [r.status for r in statuses] == [401] * 5
    assert len(framework.api.calls_to(f"{KEYS_PATH}$")) == 2
    assert len(framework.api.calls_to(f"{METADATA_PATH}$")) == 2


async def test_a_rotated_key_is_accepted_after_the_refetch(framework, tmp_path):
    async with Served(teams_bot(framework, tmp_path)) as served:
        assert (await served.post("/webhooks/teams", json=framework.activity("message", "a1"), headers=framework.headers())).status == 200
        framework.published = [jwk(framework.keys[1], "k2")]
        rotated = framework.headers(framework.token(key=1, kid="k2"))
        assert (await served.post("/webhooks/teams", json=framework.activity("message", "a2"), headers=rotated)).status == 200
        assert (await served.post("/webhooks/teams", json=framework.activity("message", "a3"), headers=rotated)).status == 200
    assert len(framework.api.calls_to(f"{KEYS_PATH}$")) == 2
    assert [c.json["text"] for c in framework.connector_calls()] == ["Count: 1", "Count: 2", "Count: 3"]


async def test_signing_keys_that_cannot_be_fetched_answer_503_and_run_nothing(framework, tmp_path):
    framework.keys_status = 500
    seen: list = []
    async with Served(teams_bot(framework, tmp_path, recorder(seen))) as served:
        response = await served.post("/webhooks/teams", json=framework.activity(), headers=framework.headers())
        assert response.status == 503
    assert seen == [] and framework.connector_calls() == []


@pytest.mark.parametrize("body", [
    b"not json",
    b"[]",
    b'{"type": "message"}',
    b'{"type": "message", "serviceUrl": "x", "conversation": {}}',
    b'{"serviceUrl": "x", "conversation": {"id": "c"}}',
])
async def test_a_verified_request_whose_body_is_not_an_activity_is_400(framework, tmp_path, body):
    async with Served(teams_bot(framework, tmp_path)) as served:
        response = await served.post("/webhooks/teams", data=body, headers=framework.headers())
        assert response.status == 400
    assert framework.connector_calls() == []


async def test_the_bot_token_is_fetched_once_for_many_sends_and_again_after_it_expires(framework, tmp_path):
    now = [time.time()]

    async def chatty(context) -> None:
        await asyncio.gather(*(context.send_text(f"part {n}") for n in range(3)))
        await context.send_typing()

    bot = teams_bot(framework, tmp_path, chatty, clock=lambda: now[0])
    async with Served(bot) as served:
        await served.post("/webhooks/teams", json=framework.activity("message", "a1"), headers=framework.headers())
        await served.post("/webhooks/teams", json=framework.activity("message", "a2"), headers=framework.headers())
        assert framework.tokens_issued == 1
        now[0] += 3600  # an hour later, by the bot's clock and the activity's
        later = framework.activity("message", "a3", timestamp=now_iso(seconds_ago=-3600))
        await served.post("/webhooks/teams", json=later, headers=framework.headers())
    assert framework.tokens_issued == 2
    calls = framework.connector_calls()
    assert len(calls) == 12
    assert {c.headers["Authorization"] for c in calls[:8]} == {"Bearer bot-token-1"}
    assert {c.headers["Authorization"] for c in calls[8:]} == {"Bearer bot-token-2"}
    assert calls[-1].json["type"] == "typing"


async def test_members_added_and_removed_become_join_leave_follow_unfollow(framework, tmp_path):
    seen: list = []
    other = {"id": "29:other-user", "name": "Grace"}
    updates = [
        framework.activity("conversationUpdate", "u1", membersAdded=[BOT], channelData={"eventType": "teamMemberAdded"}),
        framework.activity("conversationUpdate", "u2", membersAdded=[other]),
        framework.activity("conversationUpdate", "u3", membersRemoved=[other]),
        framework.activity("conversationUpdate", "u4", membersRemoved=[BOT]),
        framework.activity("conversationUpdate", "u5", channelData={"eventType": "channelRenamed"}),
    ]
    async with Served(teams_bot(framework, tmp_path, recorder(seen))) as served:
        for update in updates:
            assert (await served.post("/webhooks/teams", json=update, headers=framework.headers())).status == 200
    assert [e.type for e in seen] == ["follow", "join", "leave", "unfollow", "unknown"]
    assert seen[1].data["members"] == [other] and seen[1].user_id == USER["id"]
    assert seen[4].data["event_type"] == "channelRenamed" and seen[4].raw == updates[4]
    assert {e.session_key for e in seen} == {f"teams:{CONVERSATION}"}
    assert [e.id for e in seen] == ["u1", "u2", "u3", "u4", "u5"]


@pytest.mark.parametrize("fields, kind, check", [
    ({"text": "<at>Counter</at> hello there", "entities": [
        {"type": "mention", "mentioned": BOT, "text": "<at>Counter</at>"}]},
     "text", lambda e: e.text == "hello there" and e.data["mentioned"] is True),
    ({"text": "plain", "attachments": [{"contentType": "text/html", "content": "<p>plain</p>"}]},
     "text", lambda e: e.text == "plain"),
    ({"text": "", "value": {"payload": "BUY"}}, "payload", lambda e: e.payload == "BUY"),
    ({"text": None, "value": {"choice": "red", "qty": "2"}}, "payload",
     lambda e: e.payload == '{"choice":"red","qty":"2"}' and e.data["value"] == {"choice": "red", "qty": "2"}),
    ({"text": None, "attachments": [{"contentType": "image/png", "contentUrl": "https://smba.example/img/1"}]},
     "image", lambda e: e.data["url"] == "https://smba.example/img/1"),
    ({"text": "report", "attachments": [{"contentType": "application/vnd.microsoft.teams.file.download.info",
                                         "name": "q3.xlsx", "content": {"downloadUrl": "https://files.example/q3"}}]},
     "file", lambda e: e.data["url"] == "https://files.example/q3" and e.data["name"] == "q3.xlsx" and e.text == "report"),
    ({"text": None, "entities": [{"type": "GeoCoordinates", "latitude": 52.5, "longitude": 13.4}]},
     "location", lambda e: e.data["latitude"] == 52.5),
])
async def test_messages_become_typed_events(framework, tmp_path, fields, kind, check):
    seen: list = []
    body = framework.activity(**fields)
    if body["text"] is None:
        del body["text"]
    async with Served(teams_bot(framework, tmp_path, recorder(seen))) as served:
        assert (await served.post("/webhooks/teams", json=body, headers=framework.headers())).status == 200
    [event] = seen
    assert event.type == kind and check(event)
    assert event.session_key == f"teams:{CONVERSATION}" and event.user_id == USER["id"] and event.id == "1700000000123"
    assert event.raw == body


async def test_reactions_invokes_typing_installs_and_unmodelled_activities_reach_the_handler(framework, tmp_path):
    seen: list = []
    bodies = [
        framework.activity("messageReaction", "r1", reactionsAdded=[{"type": "like"}], replyToId="1575667808184"),
        framework.activity("invoke", "i1", name="adaptiveCard/action", value={"action": {"type": "Action.Execute", "verb": "ok"}}),
        framework.activity("typing", "t1"),
        framework.activity("installationUpdate", "n1", action="add"),
        framework.activity("event", "e1", name="application/vnd.microsoft.meetingStart"),
    ]
    async with Served(teams_bot(framework, tmp_path, recorder(seen))) as served:
        answers = [await served.post("/webhooks/teams", json=body, headers=framework.headers()) for body in bodies]
        assert [a.status for a in answers] == [200] * 5
        assert (await answers[1].json())["statusCode"] == 200
    assert [e.type for e in seen] == ["reaction", "invoke", "typing", "installation", "unknown"]
    assert seen[0].data["added"] == ["like"] and seen[0].data["reply_to_id"] == "1575667808184"
    assert seen[1].data["name"] == "adaptiveCard/action" and seen[1].data["value"]["action"]["verb"] == "ok"
    assert seen[3].data["action"] == "add"
    assert seen[4].data["activity_type"] == "event" and seen[4].raw == bodies[4]


async def test_image_buttons_and_quick_replies_are_bot_framework_activities(framework, tmp_path):
    async def handler(context) -> None:
        await context.send_image("https://example.com/cat.jpg", caption="cat")
        await context.send_buttons("Pick one", [("Buy", "BUY"), {"title": "Docs", "url": "https://example.com/docs"}])
        await context.send_quick_replies("More?", ["yes", "no"])

    async with Served(teams_bot(framework, tmp_path, handler)) as served:
        await served.post("/webhooks/teams", json=framework.activity(), headers=framework.headers())
    image, buttons, quick = (c.json for c in framework.connector_calls())
    assert image["text"] == "cat" and image["attachments"] == [{"contentType": "image/jpeg", "contentUrl": "https://example.com/cat.jpg"}]
    assert buttons["attachments"] == [{"contentType": "application/vnd.microsoft.card.hero", "content": {
        "text": "Pick one", "buttons": [
            {"type": "messageBack", "title": "Buy", "displayText": "Buy", "text": "BUY", "value": {"payload": "BUY"}},
            {"type": "openUrl", "title": "Docs", "value": "https://example.com/docs"}]}}]
    assert quick["text"] == "More?" and quick["suggestedActions"] == {"actions": [
        {"type": "imBack", "title": "yes", "value": "yes"}, {"type": "imBack", "title": "no", "value": "no"}]}
    assert all(c.json["replyToId"] == "1700000000123" and c.json["from"] == BOT for c in framework.connector_calls())


async def test_a_button_press_comes_back_as_the_payload_it_was_sent_with(framework, tmp_path):
    """The inbound side of send_buttons: Teams posts a messageBack's text and value as a message."""
    seen: list = []
    press = framework.activity(text="BUY", value={"payload": "BUY"}, replyToId="1700000000123")
    async with Served(teams_bot(framework, tmp_path, recorder(seen))) as served:
        await served.post("/webhooks/teams", json=press, headers=framework.headers())
    assert (seen[0].type, seen[0].payload) == ("payload", "BUY")


async def test_429_with_retry_after_is_retried_after_it(framework, tmp_path):
    framework.api.on(r"^/amer/v3/", 429, {"error": {"code": "Throttled"}}, headers={"Retry-After": "1"}, times=1)
    loop = asyncio.get_running_loop()
    async with Served(teams_bot(framework, tmp_path)) as served:
        started = loop.time()
        assert (await served.post("/webhooks/teams", json=framework.activity(), headers=framework.headers())).status == 200
        elapsed = loop.time() - started
    assert len(framework.connector_calls()) == 2 and elapsed >= 1.0


async def test_a_connector_failing_every_time_raises_send_error_in_the_handler(framework, tmp_path):
    framework.api.on(r"^/amer/v3/", 500, {"error": {"code": "ServiceError", "message": "Unknown"}})
    caught: list = []

    async def handler(context) -> None:
        try:
            await context.send_text("hello")
        except SendError as exc:
            caught.append(exc)

    async with Served(teams_bot(framework, tmp_path, handler)) as served:
        assert (await served.post("/webhooks/teams", json=framework.activity(), headers=framework.headers())).status == 200
    assert len(framework.connector_calls()) == 3
    assert caught[0].status == 500 and caught[0].body == {"error": {"code": "ServiceError", "message": "Unknown"}}


async def test_bot_send_text_after_one_message_starts_a_message_in_that_conversation(framework, tmp_path):
    async def quiet(context) -> None:
        pass

    bot = teams_bot(framework, tmp_path, quiet)
    async with Served(bot) as served:
        await served.post("/webhooks/teams", json=framework.activity(), headers=framework.headers())
        await bot.send_text(f"teams:{CONVERSATION}", "ping")
    [call] = framework.connector_calls()
    assert call.path == f"/amer/v3/conversations/{CONVERSATION}/activities"
    assert call.headers["Authorization"] == "Bearer bot-token-1"
    assert call.json == {"type": "message", "text": "ping", "from": BOT, "recipient": USER,
                         "conversation": {"id": CONVERSATION, "conversationType": "channel", "isGroup": True, "tenantId": TENANT}}


async def test_bot_send_text_to_a_conversation_never_seen_says_why_and_calls_nothing(framework, tmp_path):
    async with teams_bot(framework, tmp_path) as bot:
        with pytest.raises(BotkitError, match="activity it received"):
            await bot.send_text("teams:19:never-seen@thread.tacv2", "ping")
    assert framework.api.calls == []


@pytest.mark.parametrize("settings, setting", [
    ({"app_id": APP_ID}, "channels.teams.app_password"),
    ({"app_password": APP_PASSWORD}, "channels.teams.app_id"),
    ({"app_id": APP_ID, "app_password": APP_PASSWORD, "token_url": "login.example/token"}, "channels.teams.token_url"),
    ({"app_id": APP_ID, "app_password": APP_PASSWORD, "api_base": "https://smba.example"}, "channels.teams.api_base"),
])
def test_config_mistakes_name_the_setting(tmp_path, settings, setting):
    with pytest.raises(ConfigError) as raised:
        Bot(make_config(tmp_path, channels={"teams": settings}), handler=counter)
    assert raised.value.setting == setting


def test_a_single_tenant_bot_gets_its_token_from_its_tenant(tmp_path):
    bot = Bot(make_config(tmp_path, channels={"teams": {"app_id": APP_ID, "app_password": APP_PASSWORD, "tenant_id": TENANT}}),
              handler=counter)
    assert bot.adapters["teams"].token.url == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"


# -- the security review's findings --------------------------------------------------------------------


def alg_list(framework: BotFramework) -> str:
    """A token whose header names its algorithm as a list: signed with the real key, still not RS256."""
    now = int(time.time())
    header = {"alg": ["RS256"], "typ": "JWT", "kid": "k1"}
    claims = {"iss": ISSUER, "aud": APP_ID, "exp": now + 3600, "serviceurl": framework.service_url}
    return unsigned(header, claims) + ".c2lnbmF0dXJl"


@pytest.mark.parametrize("authorization", [
    lambda f: b"",
    lambda f: b"Authorization: Bearer not.a.jwt\r\n",
    lambda f: b"Authorization: Bearer " + f.token(key=1, kid="k1").encode() + b"\r\n",  # a known kid, another key
    lambda f: b"Authorization: Bearer " + f.token(aud="another-bots-app-id").encode() + b"\r\n",
])
async def test_a_token_that_fails_is_401_before_the_body_is_read(framework, tmp_path, authorization):
    """The body never finishes arriving: every check of the token that needs no body runs first."""
    from tests.test_telegram import raw_status

    seen: list = []
    async with Served(teams_bot(framework, tmp_path, recorder(seen))) as served:
        status = await raw_status(served.client.port, "/webhooks/teams", authorization(framework), b'{"type": ', length=100_000)
        assert status == 401
    assert seen == []


@pytest.mark.parametrize("authorization", [
    lambda f: b"Authorization: Bearer \xff\xfe\r\n",
    lambda f: b"Authorization: Bearer " + alg_list(f).encode() + b"\r\n",
])
async def test_a_malformed_token_is_401_not_400(framework, tmp_path, authorization):
    from tests.test_telegram import raw_status

    seen: list = []
    async with Served(teams_bot(framework, tmp_path, recorder(seen))) as served:
        body = orjson.dumps(framework.activity())
        assert await raw_status(served.client.port, "/webhooks/teams", authorization(framework), body) == 401
    assert seen == []


async def test_an_activity_older_than_the_replay_window_is_401_and_runs_nothing(framework, tmp_path):
    """A captured activity and its token, replayed after the channel's retries are long over."""
    seen: list = []
    async with Served(teams_bot(framework, tmp_path, recorder(seen))) as served:
        old = framework.activity("message", "old", timestamp=now_iso(seconds_ago=40 * 60))
        recent = framework.activity("message", "recent", timestamp=now_iso(seconds_ago=2 * 60))
        assert (await served.post("/webhooks/teams", json=old, headers=framework.headers())).status == 401
        assert (await served.post("/webhooks/teams", json=recent, headers=framework.headers())).status == 200
    async with Served(teams_bot(framework, tmp_path, recorder(seen), replay_window=None)) as served:
        assert (await served.post("/webhooks/teams", json=old, headers=framework.headers())).status == 200
    assert [e.id for e in seen] == ["recent", "old"]
    assert seen[0].timestamp == pytest.approx(time.time() - 120, abs=30)


async def test_an_activity_over_the_channel_limit_is_413(framework, tmp_path):
    seen: list = []
    huge = framework.activity(text="x" * (600 * 1024))
    async with Served(teams_bot(framework, tmp_path, recorder(seen))) as served:
        assert (await served.post("/webhooks/teams", json=huge, headers=framework.headers())).status == 413
    assert seen == []
