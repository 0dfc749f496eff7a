"""Fuzzing webhooks: bodies from hypothesis, a table of channels (how each signs, what a valid body is),
and a bot served from a thread, so a plain (sync) hypothesis test can post to it example after example.

A channel enters the table's run once its adapter module imports; until then its tests skip, naming it.
"""
from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import http.client
import importlib
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from aiohttp import web
from hypothesis import strategies as st

from botkit import Bot, BotkitError
from botkit.shell.server import create_app
from tests.support import FakeAPI, make_config

# -- bodies ---------------------------------------------------------------------------------------------

class Body(bytes):
    """A request body that shows as its first 300 bytes and its length: a falsifying example with a huge
    field stays readable."""

    def __repr__(self) -> str:
        head = bytes(self[:300])
        return f"Body({head!r}{'…' if len(self) > 300 else ''}, {len(self):,} bytes)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
HUGE = {
    "string": lambda: "x" * 300_000,
    "unicode": lambda: "\U0001f600\u202e\u0000" * 40_000,
    "list": lambda: list(range(20_000)),
    "object": lambda: {f"k{n}": n for n in range(5_000)},
}
DEEP_MARK = "\u0000deep-nesting\u0000"


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a document that a mutation can hit (not the root)."""
    found = []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found.append(prefix + (key,))
        found.extend(_paths(child, prefix + (key,)))
    return found


def _parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def mutated_json(draw: st.DrawFn, valid: Any) -> bytes:
    """The valid document with one to three of: a field missing, a value of the wrong type, a huge value,
    deep nesting."""
    doc = copy.deepcopy(valid)
    depth = 0
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(doc, path), path[-1]
        kind = draw(st.sampled_from(["missing", "wrong type", "huge", "deep"]))
        if kind == "missing":
            del parent[key]
        elif kind == "wrong type":
            parent[key] = draw(JSON_VALUES)
        elif kind == "huge":
            parent[key] = HUGE[draw(st.sampled_from(sorted(HUGE)))]()
        else:
            parent[key] = DEEP_MARK
            depth = draw(st.sampled_from([64, 500, 1023, 1025, 5_000, 100_000]))
    body = orjson.dumps(doc)
    if depth:
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        body = body.replace(orjson.dumps(DEEP_MARK), opener * depth + b"1" + closer * depth, 1)
    return body


def json_bodies(valid: Any) -> st.SearchStrategy[Body]:
    return st.one_of(
        st.binary(max_size=512),
        JSON_VALUES.map(orjson.dumps),
        mutated_json(valid),
        mutated_json(valid),
        st.just(orjson.dumps(valid)),
    ).map(Body)


@st.composite
def mutated_form(draw: st.DrawFn, valid: dict[str, str]) -> bytes:
    """Twilio's form with fields missing, odd values (not numbers, not E.164), huge values, extra fields."""
    form = dict(valid)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["missing", "odd value", "huge", "extra"]))
        key = draw(st.sampled_from(sorted(form))) if form else "Body"
        if kind == "missing":
            form.pop(key, None)
        elif kind == "odd value":
            form[key] = draw(st.one_of(st.text(max_size=30), st.sampled_from(["", "-1", "abc", "99999", "nan", "whatsapp:"])))
        elif kind == "huge":
            form[key] = "x" * 300_000
        else:
            form[draw(st.sampled_from(["NumMedia", "MediaUrl0", "MediaContentType0", "Latitude", "Longitude",
                                        "ButtonPayload", "MessageStatus", "ErrorCode"]))] = draw(st.text(max_size=30))
    return urlencode(form).encode()


def form_bodies(valid: dict[str, str]) -> st.SearchStrategy[Body]:
    return st.one_of(
        st.binary(max_size=512),
        st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=8).map(lambda d: urlencode(d).encode()),
        mutated_form(valid),
        mutated_form(valid),
        st.just(urlencode(valid).encode()),
    ).map(Body)


# -- channels -------------------------------------------------------------------------------------------

@dataclass
class Spec:
    """One channel: its settings, path, a valid body, and how the platform signs a request."""

    name: str
    channel: str
    module: str
    path: str
    content_type: str = "application/json"
    sends_to_api_base: bool = True
    """False when replies go to a URL the request names (Teams' serviceUrl): the fuzz handler then sends
    nothing, so no fuzzed URL is ever called."""

    def settings(self, live: LiveBot) -> dict[str, Any]:
        raise NotImplementedError

    def valid(self, n: int) -> Any:
        raise NotImplementedError

    def encode(self, doc: Any) -> bytes:
        return orjson.dumps(doc)

    def bodies(self) -> st.SearchStrategy[Body]:
        return json_bodies(self.valid(1))

    def sign(self, live: LiveBot, body: bytes) -> dict[str, str]:
        raise NotImplementedError

    def signable(self, body: bytes) -> bool:
        """False for a body the platform could not sign; its request may then get 401 too."""
        return True

    async def prepare_api(self, live: LiveBot) -> None:
        """Teach the fake platform API what this channel needs before the bot starts."""

    async def prepare(self, live: LiveBot) -> None:
        """What the channel needs once the bot serves (a web session's token)."""

    def available(self) -> str | None:
        try:
            importlib.import_module(self.module)
        except ImportError as exc:
            return f"the {self.name} adapter ({self.module}) does not import yet: {exc}"
        return None


class TelegramSpec(Spec):
    def settings(self, live):
        return {"access_token": "123:tg", "secret_token": "tg-secret", "api_base": live.api.url}

    def valid(self, n):
        chat = {"id": 16423, "type": "private"}
        return {"update_id": n, "message": {"message_id": n, "date": 1700000000, "chat": chat,
                                            "from": {"id": 16423, "is_bot": False, "first_name": "Ada"}, "text": "hi"}}

    def sign(self, live, body):
        return {"X-Telegram-Bot-Api-Secret-Token": "tg-secret"}


def hub_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


NO_REPLAY_WINDOW = {"replay_window": None}
"""The fuzzer puts any number where a signed timestamp goes, and an old one is a replay (401): each channel's
own tests check the window; here it is off, so that every signed body reaches the parser."""


class MessengerSpec(Spec):
    def settings(self, live):
        return {"access_token": "EAApage", "app_secret": "fb-app-secret", "verify_token": "v", "api_base": live.api.url,
                **NO_REPLAY_WINDOW}

    def valid(self, n):
        message = {"sender": {"id": "2468013579"}, "recipient": {"id": "1029384756"}, "timestamp": 1700000000123,
                   "message": {"mid": f"m_{n}", "text": "hi"}}
        return {"object": "page", "entry": [{"id": "1029384756", "time": 1700000000000, "messaging": [message]}]}

    def sign(self, live, body):
        return {"X-Hub-Signature-256": hub_signature("fb-app-secret", body)}


class WhatsAppCloudSpec(Spec):
    def settings(self, live):
        return {"provider": "cloud", "access_token": "EAAwa", "app_secret": "wa-app-secret", "verify_token": "v",
                "phone_number_id": "106540352242922", "api_base": live.api.url, **NO_REPLAY_WINDOW}

    def valid(self, n):
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                 "contacts": [{"profile": {"name": "Ada"}, "wa_id": "16505551234"}],
                 "messages": [{"from": "16505551234", "id": f"wamid.{n}", "timestamp": "1749416383", "type": "text",
                               "text": {"body": "hi"}}]}
        return {"object": "whatsapp_business_account",
                "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}

    def sign(self, live, body):
        return {"X-Hub-Signature-256": hub_signature("wa-app-secret", body)}


class LineSpec(Spec):
    def settings(self, live):
        return {"access_token": "line-token", "channel_secret": "line-channel-secret", "api_base": live.api.url,
                **NO_REPLAY_WINDOW}

    def valid(self, n):
        event = {"type": "message", "mode": "active", "timestamp": 1700000000000 + n,
                 "source": {"type": "user", "userId": "U4af4980629a0b1c2d3e4f5a6b7c8d9e0"},
                 "webhookEventId": f"01HEVENT{n:018d}", "deliveryContext": {"isRedelivery": False},
                 "replyToken": f"reply-token-{n}",
                 "message": {"type": "text", "id": str(468789577898262530 + n), "quoteToken": "q", "text": "hi"}}
        return {"destination": "U" + "0" * 32, "events": [event]}

    def sign(self, live, body):
        digest = hmac.new(b"line-channel-secret", body, hashlib.sha256).digest()
        return {"X-Line-Signature": base64.b64encode(digest).decode()}


TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "12345678901234567890123456789012"


@dataclass
class TwilioSpec(Spec):
    content_type: str = "application/x-www-form-urlencoded"
    prefix: str = ""

    def settings(self, live):
        return {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "phone_number": "+15557654321",
                "api_base": live.api.url}

    def valid(self, n):
        sid = f"SM{n:032x}"
        form = {"SmsMessageSid": sid, "NumMedia": "0", "SmsSid": sid, "SmsStatus": "received", "Body": "hi",
                "To": self.prefix + "+15557654321", "From": self.prefix + "+15551234567", "MessageSid": sid,
                "AccountSid": TWILIO_SID, "ApiVersion": "2010-04-01"}
        if self.prefix:
            form.update(ProfileName="Ada", WaId="15551234567")
        return form

    def encode(self, doc):
        return urlencode(doc).encode()

    def bodies(self):
        return form_bodies(self.valid(1))

    def signable(self, body):
        """Twilio posts UTF-8 forms of a few dozen fields; what the channel cannot read as one it cannot
        check a signature over (401)."""
        from botkit.adapters.twilio import MAX_FIELDS

        try:
            parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError):
            return False
        return True

    def sign(self, live, body):
        """Twilio's own RequestValidator over the URL and the parameters the body carries."""
        from multidict import MultiDict
        from twilio.request_validator import RequestValidator

        try:
            params = MultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):  # not a form at all: Twilio never sends it, nothing to sign
            params = MultiDict()
        url = f"http://127.0.0.1:{live.port}{self.path}"
        return {"X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, params)}


TEAMS_APP_ID = "0a6ab4a3-6c6d-4e46-9a79-0b1c8b5e2f10"
TEAMS_ISSUER = "https://api.botframework.com"
MAX_CLAIM = 2048


@lru_cache(maxsize=1)
def teams_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class TeamsSpec(Spec):
    """Signed as the Bot Framework signs: an RS256 JWT from a local key that the fake API publishes as
    the OpenID metadata's JWKS (without endorsements, so any channelId may be fuzzed)."""

    def settings(self, live):
        return {"app_id": TEAMS_APP_ID, "app_password": "teams-password",
                "openid_metadata_url": f"{live.api.url}/v1/.well-known/openidconfiguration",
                "token_url": f"{live.api.url}/botframework.com/oauth2/v2.0/token", **NO_REPLAY_WINDOW}

    async def prepare_api(self, live):
        from jwt.algorithms import RSAAlgorithm

        jwk = {**RSAAlgorithm.to_jwk(teams_key().public_key(), as_dict=True), "kid": "k1", "use": "sig"}
        live.api.on(r"/openidconfiguration$", json={"issuer": TEAMS_ISSUER, "jwks_uri": f"{live.api.url}/v1/.well-known/keys",
                                                    "id_token_signing_alg_values_supported": ["RS256"]})
        live.api.on(r"/keys$", json={"keys": [jwk]})
        live.api.on(r"/token$", json={"token_type": "Bearer", "expires_in": 3600, "access_token": "bot-token"})

    def valid(self, n):
        return {"type": "message", "id": f"17000000{n:05d}", "timestamp": "2024-05-01T10:00:00.123Z",
                "channelId": "msteams", "serviceUrl": "https://smba.trafficmanager.net/amer/",
                "from": {"id": "29:1GpH-user", "name": "Ada"}, "recipient": {"id": f"28:{TEAMS_APP_ID}", "name": "Bot"},
                "conversation": {"id": "19:3c8ab2@thread.tacv2", "conversationType": "channel"}, "text": "hi"}

    def sign(self, live, body):
        service_url = self._service_url(body)
        if not isinstance(service_url, str) or not self.signable(body):
            service_url = self.valid(1)["serviceUrl"]
        return {"Authorization": f"Bearer {teams_token(service_url)}"}

    def signable(self, body):
        """A token carries the activity's serviceUrl; one of a fuzzed length would not fit in a header."""
        try:
            activity = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False  # no serviceUrl to put in the token: the serviceurl check answers 401 first
        service_url = activity.get("serviceUrl") if isinstance(activity, dict) else None
        return not isinstance(service_url, str) or len(service_url) <= MAX_CLAIM

    @staticmethod
    def _service_url(body: bytes) -> Any:
        try:
            return orjson.loads(body).get("serviceUrl")
        except (orjson.JSONDecodeError, AttributeError):
            return None


@lru_cache(maxsize=256)
def teams_token(service_url: str) -> str:
    import jwt

    now = int(time.time())
    claims = {"iss": TEAMS_ISSUER, "aud": TEAMS_APP_ID, "nbf": now - 10, "exp": now + 3600, "serviceurl": service_url}
    return jwt.encode(claims, teams_key(), algorithm="RS256", headers={"kid": "k1"})


class WebSpec(Spec):
    """The web channel: "signed" is the session token of ``POST /api/session`` as a bearer token."""

    def settings(self, live):
        # many sessions and messages from one address (the test client): the channel's abuse limits off
        return {"rate_limit": 1_000_000, "client_rate_limit": None, "sessions_per_client": None, "sessions_per_minute": None}

    async def prepare(self, live):
        import aiohttp

        async with aiohttp.ClientSession() as client:
            async with client.post(f"http://127.0.0.1:{live.port}/api/session") as response:
                live.token = (await response.json())["token"]

    def valid(self, n):
        return {"text": "hi", "id": f"m{n}"}

    def sign(self, live, body):
        return {"Authorization": f"Bearer {live.token}"}


CHANNELS: list[Spec] = [
    TelegramSpec("telegram", "telegram", "adapters.telegram", "/webhooks/telegram"),
    MessengerSpec("messenger", "messenger", "adapters.messenger", "/webhooks/messenger"),
    WhatsAppCloudSpec("whatsapp-cloud", "whatsapp", "adapters.whatsapp_cloud", "/webhooks/whatsapp"),
    LineSpec("line", "line", "adapters.line", "/webhooks/line"),
    TwilioSpec("sms", "sms", "adapters.twilio", "/webhooks/sms"),
    TwilioSpec("whatsapp-twilio", "whatsapp", "adapters.twilio", "/webhooks/whatsapp", prefix="whatsapp:"),
    TeamsSpec("teams", "teams", "adapters.teams", "/webhooks/teams", sends_to_api_base=False),
    WebSpec("web", "web", "adapters.web", "/api/chat"),
]


# -- a bot served from a thread -----------------------------------------------------------------------------

@dataclass
class LiveBot:
    """The channel's bot on a real aiohttp server (and its FakeAPI) in a thread of its own, with a
    blocking ``post``. ``handled`` counts handler runs; ``crashes`` holds what a send raised that botkit
    does not raise on purpose (a BotkitError such as SendError, or "this event names no user to answer",
    is an answer; a KeyError is a crash)."""

    spec: Spec
    tmp_path: Path
    server: dict[str, Any] = field(default_factory=dict)
    handled: int = 0
    crashes: list[str] = field(default_factory=list)
    port: int = 0
    token: str | None = None

    def __enter__(self) -> LiveBot:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"live-{self.spec.name}", daemon=True)
        self.thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    def _call(self, coroutine: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _start(self) -> None:
        self.api = FakeAPI()
        await self.api.start()
        await self.spec.prepare_api(self)
        config = make_config(self.tmp_path, channels={self.spec.channel: self.spec.settings(self)},
                             http={"attempts": 2, "backoff": 0.01, "timeout": 5.0},
                             server={"access_log": False, **self.server})
        self.bot = Bot(config, handler=self._handler)
        self.runner = web.AppRunner(create_app(self.bot), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        await self.spec.prepare(self)

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.api.close()

    async def _handler(self, context: Any) -> None:
        self.handled += 1
        if not self.spec.sends_to_api_base:
            return
        try:
            await context.send_text("ok")
        except BotkitError:
            pass
        except Exception as exc:
            self.crashes.append(f"{type(exc).__name__}: {exc} on {context.event.type} event {context.event.raw!r:.300}")
            raise

    def post(self, body: bytes, *, signed: bool = True, extra: dict[str, str] | None = None) -> int:
        headers = {"Content-Type": self.spec.content_type, **(self.spec.sign(self, body) if signed else {}), **(extra or {})}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", self.spec.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def post_valid(self, n: int) -> int:
        return self.post(self.spec.encode(self.spec.valid(n)))


def channel_ids(specs: list[Spec]) -> list[str]:
    return [spec.name for spec in specs]

