"""The web channel's session API against the real aiohttp server: tokens, history, limits, events, page."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import re
import secrets
import time
import uuid
from pathlib import Path

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from botkit import Bot, ConfigError
from botkit.engine.lifecycle import KEEP_EXPIRED
from botkit.storage.memory import MemoryStore
from tests.support import Served, counter, make_config

JWT_KEY = "a-site-login-secret-of-at-least-32-bytes!"
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def web_bot(tmp_path: Path, handler=counter, clock=time.time, session=None, server=None, **web) -> Bot:
    config = make_config(tmp_path, channels={"web": web}, session=session or {}, server=server or {})
    return Bot(config, handler=handler, clock=clock)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_session(served: Served, **body) -> tuple[str, str]:
    response = await served.post("/api/session", json=body or None)
    assert response.status == 201, await response.text()
    data = await response.json()
    return data["session_id"], data["token"]


async def chat(served: Served, token: str, **body):
    return await served.post("/api/chat", json=body, headers=bearer(token))


async def texts(served: Served, token: str, text: str) -> list[str]:
    response = await chat(served, token, text=text)
    assert response.status == 200, await response.text()
    return [m["text"] for m in (await response.json())["messages"]]


async def history(served: Served, token: str) -> list[dict]:
    response = await served.get("/api/history", headers=bearer(token))
    assert response.status == 200, await response.text()
    return (await response.json())["messages"]


def login(sub: str | None = "user-42", key=JWT_KEY, algorithm: str = "HS256", **claims) -> str:
    body = {"exp": int(time.time()) + 300, **claims}
    if sub is not None:
        body["sub"] = sub
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


# -- sessions, chat, history ------------------------------------------------------------------------

async def test_a_session_chats_and_reads_its_history(tmp_path):
    async with Served(web_bot(tmp_path)) as served:
        session_id, token = await new_session(served)
        assert uuid.UUID(session_id).version == 4 and str(uuid.UUID(session_id)) == session_id
        assert await texts(served, token, "hi") == ["Count: 1"]
        assert await texts(served, token, "again") == ["Count: 2"]
        _, other = await new_session(served)
        assert await texts(served, other, "hi") == ["Count: 1"]
        entries = await history(served, token)
    assert [(e["dir"], e["text"]) for e in entries] == [("in", "hi"), ("out", "Count: 1"), ("in", "again"), ("out", "Count: 2")]
    stamps = [e["at"] for e in entries]
    assert stamps == sorted(stamps) and all(abs(at - time.time()) < 60 for at in stamps)


async def test_tokens_are_url_safe_carry_256_random_bits_and_differ(tmp_path):
    async with Served(web_bot(tmp_path)) as served:
        sessions = [await new_session(served) for _ in range(3)]
    for session_id, token in sessions:
        assert URL_SAFE.fullmatch(token.replace(".", ""))
        named, secret = token.split(".")
        assert named == session_id and len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert len({token for _, token in sessions}) == 3


@pytest.mark.parametrize("route", [("POST", "/api/chat"), ("GET", "/api/history"), ("GET", "/api/events"), ("DELETE", "/api/session")])
@pytest.mark.parametrize("kind", ["missing", "not bearer", "malformed", "unknown", "other session's"])
async def test_a_missing_unknown_or_foreign_token_is_401_and_runs_nothing(tmp_path, route, kind):
    ran = []

    async def handler(context):
        ran.append(context.event)

    async with Served(web_bot(tmp_path, handler)) as served:
        first_id, first = await new_session(served)
        second_id, second = await new_session(served)
        headers = {
            "missing": {},
            "not bearer": {"Authorization": f"Basic {first}"},
            "malformed": bearer("not-a-token"),
            "unknown": bearer(f"{uuid.uuid4()}.{secrets.token_urlsafe(32)}"),
            "other session's": bearer(f"{second_id}.{first.split('.')[1]}"),
        }[kind]
        method, path = route
        response = await served.client.request(method, path, json={"text": "hi"}, headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "error" in await response.json()
        assert (await chat(served, second, text="still mine")).status == 200
    assert [e.text for e in ran] == ["still mine"]


async def test_an_anonymous_session_expires_days_after_its_last_message(tmp_path):
    clock = Clock()
    async with Served(web_bot(tmp_path, clock=clock, anonymous_expiry=7)) as served:
        _, token = await new_session(served)
        clock.advance(6 * 86400)
        assert await texts(served, token, "day 6") == ["Count: 1"]
        clock.advance(7 * 86400 - 10)
        assert len(await history(served, token)) == 2
        clock.advance(11)
        for response in [await served.get("/api/history", headers=bearer(token)), await chat(served, token, text="late")]:
            assert response.status == 401
            assert "expired" in (await response.json())["error"]


async def test_after_the_idle_timeout_the_state_starts_afresh_and_the_history_stays(tmp_path):
    clock = Clock()
    async with Served(web_bot(tmp_path, clock=clock, idle_timeout=30)) as served:
        _, token = await new_session(served)
        assert await texts(served, token, "a") == ["Count: 1"]
        clock.advance(29 * 60)
        assert await texts(served, token, "b") == ["Count: 2"]
        clock.advance(31 * 60)
        assert await texts(served, token, "c") == ["Count: 1"]
        assert [e["text"] for e in await history(served, token)] == ["a", "Count: 1", "b", "Count: 2", "c", "Count: 1"]


async def test_ending_a_session_revokes_its_token_and_closes_its_pages(tmp_path):
    async with Served(web_bot(tmp_path)) as served:
        _, token = await new_session(served)
        events = await served.get("/api/events", headers=bearer(token))
        assert (await next_event(events))[0] == "ready"
        response = await served.client.delete("/api/session", headers=bearer(token))
        assert response.status == 204
        assert await asyncio.wait_for(events.content.read(), 5) == b""
        assert (await chat(served, token, text="hi")).status == 401
        assert (await served.get("/api/history", headers=bearer(token))).status == 401


# -- authenticated sessions -------------------------------------------------------------------------

async def test_a_login_links_the_session_to_the_user_and_it_does_not_expire(tmp_path):
    clock = Clock(time.time())
    seen = []

    async def handler(context):
        seen.append(context.event.user_id)
        await counter(context)

    async with Served(web_bot(tmp_path, handler, clock=clock, jwt_key=JWT_KEY)) as served:
        _, token = await new_session(served, login=login("user-42"))
        _, anonymous = await new_session(served)
        assert await texts(served, token, "hi") == ["Count: 1"]
        assert await texts(served, anonymous, "hi") == ["Count: 1"]
        clock.advance(30 * 86400)
        assert len(await history(served, token)) == 2
        assert (await served.get("/api/history", headers=bearer(anonymous))).status == 401
    assert seen == ["user-42", None]


async def test_an_rs256_login_is_checked_with_the_public_key(tmp_path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with Served(web_bot(tmp_path, jwt_key=public_pem)) as served:
        assert (await served.post("/api/session", json={"login": login(key=private, algorithm="RS256")})).status == 201
        assert (await served.post("/api/session", json={"login": login(key=other, algorithm="RS256")})).status == 401


@pytest.mark.parametrize("token, why", [
    (lambda: login(exp=int(time.time()) - 5, aud="my-site"), "expired"),
    (lambda: jwt.encode({"sub": "u", "aud": "my-site"}, JWT_KEY, algorithm="HS256"), "exp"),
    (lambda: login(sub=None, aud="my-site"), "sub"),
    (lambda: login(key="another-secret-that-is-also-long-enough", aud="my-site"), "Signature"),
    (lambda: login(aud="another-site"), "aud"),
    (lambda: "not.a.jwt", "login rejected"),
])
async def test_a_bad_login_is_401(tmp_path, token, why):
    async with Served(web_bot(tmp_path, jwt_key=JWT_KEY, jwt_audience="my-site")) as served:
        response = await served.post("/api/session", json={"login": token()})
        assert response.status == 401
        assert why.lower() in (await response.json())["error"].lower()
        good = await served.post("/api/session", json={"login": login(aud="my-site")})
        assert good.status == 201


async def test_a_login_to_a_bot_without_jwt_key_is_400(tmp_path):
    async with Served(web_bot(tmp_path)) as served:
        response = await served.post("/api/session", json={"login": login()})
        assert response.status == 400 and "jwt_key" in (await response.json())["error"]


# -- limits and malformed requests ------------------------------------------------------------------

async def test_the_61st_message_in_a_minute_is_429_with_retry_after(tmp_path):
    clock = Clock()
    ran = []

    async def handler(context):
        ran.append(context.event.text)

    async with Served(web_bot(tmp_path, handler, clock=clock)) as served:
        _, token = await new_session(served)
        _, other = await new_session(served)
        for n in range(60):
            assert (await chat(served, token, text=str(n))).status == 200
        clock.advance(20)
        response = await chat(served, token, text="61st")
        assert response.status == 429
        assert response.headers["Retry-After"] == "40"
        assert "60 messages a minute" in (await response.json())["error"]
        assert (await chat(served, other, text="another session")).status == 200
        clock.advance(40)
        assert (await chat(served, token, text="next minute")).status == 200
    assert len(ran) == 62 and "61st" not in ran


@pytest.mark.parametrize("body", [
    b"not json", b"[1, 2]", b'"text"', b"{}", b'{"text": 5}', b'{"payload": ["x"]}', b'{"text": ""}',
    b'{"text": "   "}', b'{"text": "hi", "id": 5}', b'{"text": "hi", "id": "spaces are not ids"}',
])
async def test_a_malformed_message_is_400_and_runs_nothing(tmp_path, body):
    ran = []

    async def handler(context):
        ran.append(context.event)

    async with Served(web_bot(tmp_path, handler)) as served:
        _, token = await new_session(served)
        response = await served.post("/api/chat", data=body, headers={**bearer(token), "Content-Type": "application/json"})
        assert response.status == 400
        assert (await response.json())["error"]
    assert ran == []


async def test_an_oversize_message_is_413_with_a_clear_error(tmp_path):
    async with Served(web_bot(tmp_path, max_message_size=10, server={"client_max_size": 2048})) as served:
        _, token = await new_session(served)
        assert await texts(served, token, "é" * 5) == ["Count: 1"]
        response = await chat(served, token, text="é" * 6)
        assert response.status == 413
        assert (await response.json())["error"] == "the message's text is 12 bytes; the limit is 10"
        huge = await chat(served, token, payload="x" * 4096)
        assert huge.status == 413 and "client_max_size" in (await huge.json())["error"]
        assert len(await history(served, token)) == 2


async def test_a_retried_message_id_runs_the_handler_once(tmp_path):
    async with Served(web_bot(tmp_path)) as served:
        _, token = await new_session(served)
        first = await chat(served, token, text="hi", id="msg-1")
        again = await chat(served, token, text="hi", id="msg-1")
        assert [m["text"] for m in (await first.json())["messages"]] == ["Count: 1"]
        assert await again.json() == {"messages": [], "duplicate": True}
        assert await texts(served, token, "next") == ["Count: 2"]


async def test_an_unreachable_store_is_503(tmp_path):
    class Broken(MemoryStore):
        async def load(self, key):
            if key.startswith("web:") and self.broken:
                raise ConnectionError("store down")
            return await super().load(key)

    store = Broken({"max_size": 10}, clock=time.time)
    store.broken = False
    bot = Bot(make_config(tmp_path, channels={"web": {}}), handler=counter, store=store)
    async with Served(bot) as served:
        _, token = await new_session(served)
        store.broken = True
        response = await chat(served, token, text="hi")
        assert response.status == 503 and response.headers["Retry-After"] == "1"


# -- what the bot sends -----------------------------------------------------------------------------

async def test_quick_replies_buttons_and_images_come_as_small_json_messages(tmp_path):
    seen = []

    async def handler(context):
        event = context.event
        seen.append((event.type, event.text, event.payload))
        if event.is_text:
            await context.send_typing()
            await context.send_quick_replies("Again?", ["Yes", ("No", "NO")])
            await context.send_buttons("Or", [("Count", "COUNT"), {"title": "Docs", "url": "https://example.com/docs"}])
            await context.send_image("https://example.com/cat.png", caption="A cat")

    async with Served(web_bot(tmp_path, handler)) as served:
        _, token = await new_session(served)
        response = await chat(served, token, text="hi")
        messages = (await response.json())["messages"]
        for message in messages:
            assert isinstance(message.pop("at"), float)
        assert messages == [
            {"type": "quick_replies", "text": "Again?", "replies": [{"title": "Yes", "payload": "Yes"}, {"title": "No", "payload": "NO"}]},
            {"type": "buttons", "text": "Or", "buttons": [{"title": "Count", "payload": "COUNT"}, {"title": "Docs", "url": "https://example.com/docs"}]},
            {"type": "image", "url": "https://example.com/cat.png", "caption": "A cat"},
        ]
        assert (await chat(served, token, payload="NO", text="No")).status == 200
        assert (await chat(served, token, payload="COUNT")).status == 200
        entries = await history(served, token)
    assert seen == [("text", "hi", None), ("payload", "No", "NO"), ("payload", None, "COUNT")]
    assert [(e["dir"], e["type"]) for e in entries] == [
        ("in", "text"), ("out", "quick_replies"), ("out", "buttons"), ("out", "image"), ("in", "payload"), ("in", "payload")]


async def test_a_raising_handler_leaves_the_session_as_it_was(tmp_path, caplog):
    async def handler(context):
        if context.event.text == "boom":
            context.set_state({"count": 99})
            await context.send_text("about to fail")
            raise ValueError("oops in handler")
        await counter(context)

    async with Served(web_bot(tmp_path, handler)) as served:
        _, token = await new_session(served)
        response = await chat(served, token, text="boom")
        answer = await response.json()
        assert response.status == 200 and [m["text"] for m in answer["messages"]] == ["about to fail"]
        assert "failed" in answer["error"]
        assert await texts(served, token, "hi") == ["Count: 1"]
    assert "oops in handler" in caplog.text


# -- messages the bot starts ------------------------------------------------------------------------

async def next_event(response, timeout: float = 5.0) -> tuple[str, dict]:
    while True:
        block = (await asyncio.wait_for(response.content.readuntil(b"\n\n"), timeout)).decode()
        if block.startswith(":"):
            continue
        fields = dict(line.split(": ", 1) for line in block.strip().split("\n"))
        return fields["event"], orjson.loads(fields["data"])


async def test_a_message_the_bot_starts_reaches_the_open_page_and_the_history(tmp_path):
    bot = web_bot(tmp_path)
    async with Served(bot) as served:
        session_id, token = await new_session(served)
        _, other = await new_session(served)
        events = await served.get("/api/events", headers=bearer(token))
        assert events.status == 200 and events.headers["Content-Type"].startswith("text/event-stream")
        elsewhere = await served.get("/api/events", headers=bearer(other))
        assert (await next_event(events))[0] == "ready" and (await next_event(elsewhere))[0] == "ready"
        await bot.send_text(f"web:{session_id}", "Your order has shipped")
        kind, message = await next_event(events)
        assert kind == "message" and message["type"] == "text" and message["text"] == "Your order has shipped"
        events.close()
        await bot.send("web:" + session_id, "quick_replies", "Rate us?", ["Good", "Bad"])
        assert [(e["dir"], e["text"]) for e in await history(served, token)] == [
            ("out", "Your order has shipped"), ("out", "Rate us?")]
        with pytest.raises(asyncio.TimeoutError):
            await next_event(elsewhere, timeout=0.3)
        elsewhere.close()


async def test_sending_to_a_web_session_that_does_not_exist_raises_and_stores_nothing(tmp_path):
    bot = web_bot(tmp_path)
    async with Served(bot):
        with pytest.raises(Exception, match="not an open web session"):
            await bot.send_text(f"web:{uuid.uuid4()}", "hello?")
        assert await bot.store.keys() == []


# -- the store never holds a usable token -----------------------------------------------------------

def redis_available() -> str | None:
    try:
        importlib.import_module("botkit.storage.redis")
    except ImportError as exc:
        return f"the Redis session driver is not there yet ({exc})"
    try:
        import redis

        redis.Redis.from_url("redis://127.0.0.1:6379/15", socket_connect_timeout=1).ping()
    except Exception as exc:
        return f"Redis is not reachable on 127.0.0.1:6379 ({exc})"
    return None


def session_config(driver: str, tmp_path: Path) -> dict:
    if driver == "redis":
        reason = redis_available()
        if reason:
            pytest.skip(reason)
        prefix = f"botkit-test-web-{uuid.uuid4().hex[:8]}:"
        return {"driver": "redis", "stores": {"redis": {"url": "redis://127.0.0.1:6379/15", "prefix": prefix}}}
    if driver == "file":
        return {"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "sessions")}}}
    return {"driver": "memory"}


async def dump(store, driver: str, tmp_path: Path) -> bytes:
    records = [orjson.dumps(await store.load(key)) for key in await store.keys()]
    if driver == "file":
        records += [p.read_bytes() for p in (tmp_path / "sessions").rglob("*") if p.is_file()]
    return b"\n".join(records)


@pytest.mark.parametrize("driver", ["memory", "file", "redis"])
async def test_the_store_holds_no_token_in_clear(tmp_path, driver):
    bot = web_bot(tmp_path, session=session_config(driver, tmp_path))
    async with Served(bot) as served:
        session_id, token = await new_session(served)
        assert await texts(served, token, "hi") == ["Count: 1"]
        stored = await dump(bot.store, driver, tmp_path)
        for key in await bot.store.keys():
            await bot.store.delete(key)
    secret = token.split(".")[1]
    assert session_id.encode() in stored and hashlib.sha256(token.encode()).hexdigest().encode() in stored
    assert token.encode() not in stored and secret.encode() not in stored


async def test_the_61st_message_is_429_also_when_messages_alternate_between_two_workers_on_redis(tmp_path):
    session = session_config("redis", tmp_path)
    first, second = web_bot(tmp_path, session=session), web_bot(tmp_path, session=session)
    async with Served(first) as one, Served(second) as two:
        _, token = await new_session(one)
        statuses = [(await chat(worker, token, text=str(n))).status for n, worker in zip(range(61), [one, two] * 31)]
        assert statuses == [200] * 60 + [429]
        response = await chat(two, token, text="again")
        assert response.status == 429 and 1 <= int(response.headers["Retry-After"]) <= 60
        for key in await first.store.keys():
            await first.store.delete(key)


# -- the page and the settings ----------------------------------------------------------------------

async def test_the_chat_page_and_its_assets_are_served(tmp_path):
    async with Served(web_bot(tmp_path, title="Shop <help>")) as served:
        page = await served.get("/")
        body = await page.text()
        assert page.status == 200 and page.content_type == "text/html"
        assert "<title>Shop &lt;help&gt;</title>" in body and 'src="static/chat.js"' in body
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert "http" not in re.sub(r"<meta[^>]*>", "", body)
        script = await served.get("/static/chat.js")
        style = await served.get("/static/chat.css")
        assert script.status == 200 and "javascript" in script.content_type and "api/chat" in await script.text()
        assert style.status == 200 and style.content_type == "text/css"


async def test_the_api_and_page_move_under_a_path_and_the_page_can_be_off(tmp_path):
    async with Served(web_bot(tmp_path, path="/chat")) as served:
        assert (await served.get("/chat/")).status == 200
        moved = await served.get("/chat", allow_redirects=False)
        assert moved.status == 308 and moved.headers["Location"] == "/chat/"
        response = await served.post("/chat/api/session")
        assert response.status == 201
        assert (await served.get("/")).status == 404
    async with Served(web_bot(tmp_path, page=False)) as served:
        assert (await served.get("/")).status == 404
        assert (await served.post("/api/session")).status == 201


@pytest.mark.parametrize("settings, setting", [
    ({"rate_limit": 0}, "rate_limit"),
    ({"rate_limit": "60"}, "rate_limit"),
    ({"idle_timeout": "30"}, "idle_timeout"),
    ({"anonymous_expiry": -1}, "anonymous_expiry"),
    ({"max_message_size": True}, "max_message_size"),
    ({"jwt_key": "too-short"}, "jwt_key"),
    ({"jwt_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"}, "jwt_key"),
    ({"jwt_key": "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----"}, "jwt_key"),
    ({"path": "chat"}, "path"),
    ({"page": "yes"}, "page"),
    ({"rate_limt": 10}, "rate_limt"),
    ({"sessions_per_client": 0}, "sessions_per_client"),
    ({"sessions_per_minute": "300"}, "sessions_per_minute"),
    ({"client_rate_limit": 1.5}, "client_rate_limit"),
    ({"max_streams": None}, "max_streams"),
    ({"allowed_origins": "https://shop.example.com"}, "allowed_origins"),
    ({"allowed_origins": ["shop.example.com"]}, "allowed_origins"),
    ({"allowed_origins": ["https://shop.example.com/chat"]}, "allowed_origins"),
])
def test_a_config_mistake_names_the_setting(tmp_path, settings, setting):
    with pytest.raises(ConfigError) as caught:
        web_bot(tmp_path, **settings)
    assert caught.value.setting == f"channels.web.{setting}"


# -- abuse: floods of sessions, cross-site requests, streams ------------------------------------------------

TELEGRAM = {"access_token": "123456:web-flood", "secret_token": "web-flood-secret"}


def update(update_id: int, chat_id: int = 16423) -> dict:
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 1700000000, "text": "hi",
                                                "chat": {"id": chat_id, "type": "private"},
                                                "from": {"id": chat_id, "is_bot": False, "first_name": "Ada"}}}


async def telegram_says(served: Served, fake_api, update_id: int) -> str:
    response = await served.post("/webhooks/telegram", json=update(update_id),
                                 headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM["secret_token"]})
    assert response.status == 200
    return fake_api.calls_to("sendMessage")[-1].json["text"]


def from_client(address: str) -> dict[str, str]:
    """Headers of a request a trusted proxy (127.0.0.1 in these tests) forwards for ``address``."""
    return {"X-Forwarded-For": address}


@pytest.mark.parametrize("limits", ["default limits", "limits off, 600 clients"])
async def test_a_flood_of_new_web_sessions_leaves_a_telegram_conversation_where_it_was(fake_api, tmp_path, limits):
    """The web chat's defaults over a memory store of 500 sessions: 600 anonymous POST /api/session from one
    client are mostly refused; and with the limits off, from 600 clients, they evict web sessions only."""
    web, server = {}, {}
    if limits != "default limits":
        web, server = {"sessions_per_client": None, "sessions_per_minute": None}, {"trusted_proxies": ["127.0.0.1"]}
    config = make_config(tmp_path, channels={"web": web, "telegram": {**TELEGRAM, "api_base": fake_api.url}}, server=server,
                         session={"stores": {"memory": {"max_size": 500}}})
    async with Served(Bot(config, handler=counter)) as served:
        for n in range(1, 4):
            assert await telegram_says(served, fake_api, n) == f"Count: {n}"
        flood = [await served.post("/api/session", headers=from_client(f"198.51.{n // 250}.{n % 250}") if server else {})
                 for n in range(600)]
        assert await telegram_says(served, fake_api, 4) == "Count: 4"
        created = sum(response.status == 201 for response in flood)
        assert created == (10 if limits == "default limits" else 600)
        assert {r.status for r in flood} == ({201, 429} if limits == "default limits" else {201})


async def test_a_cross_site_page_cannot_create_sessions_through_its_visitors_browsers(tmp_path):
    bot = web_bot(tmp_path)
    async with Served(bot) as served:
        own = f"http://{served.client.host}:{served.client.port}"
        no_cors = {"Content-Type": "text/plain;charset=UTF-8", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "cross-site"}
        refused = [
            await served.post("/api/session", data=b"{}", headers={**no_cors, "Origin": "https://evil.example"}),
            await served.post("/api/session", headers={"Sec-Fetch-Mode": "no-cors", "Origin": "null"}),
            await served.post("/api/session", data=b"{}", headers={**no_cors, "Origin": own, "Sec-Fetch-Site": "same-origin"}),
            await served.post("/api/session", json={}, headers={"Origin": "https://evil.example"}),
        ]
        assert [r.status for r in refused] == [403, 403, 415, 403]
        assert all("error" in body for body in [await r.json() for r in refused])
        assert await bot.store.keys() == []
        # the page's own fetch, and a client that is no browser
        for headers in ({"Origin": own}, {}):
            assert (await served.post("/api/session", json={}, headers=headers)).status == 201
        assert (await served.post("/api/session")).status == 201
        _, token = await new_session(served)
        elsewhere = await served.post("/api/chat", json={"text": "hi"}, headers={**bearer(token), "Origin": "https://evil.example"})
        assert elsewhere.status == 403
        assert await texts(served, token, "hi") == ["Count: 1"]


async def test_a_site_listed_in_allowed_origins_may_use_the_api(tmp_path):
    async with Served(web_bot(tmp_path, allowed_origins=["https://shop.example.com"])) as served:
        assert (await served.post("/api/session", json={}, headers={"Origin": "https://shop.example.com"})).status == 201
        assert (await served.post("/api/session", json={}, headers={"Origin": "https://shop.example.com:8443"})).status == 403
    async with Served(web_bot(tmp_path, allowed_origins=["*"])) as served:
        assert (await served.post("/api/session", json={}, headers={"Origin": "https://anywhere.example"})).status == 201


async def test_behind_a_proxy_that_rewrites_host_the_page_is_recognised_by_x_forwarded_host(tmp_path):
    async with Served(web_bot(tmp_path)) as served:
        headers = {"Origin": "https://chat.example.com", "X-Forwarded-Host": "chat.example.com"}
        assert (await served.post("/api/session", json={}, headers=headers)).status == 201
        assert (await served.post("/api/session", json={}, headers={"Origin": "https://chat.example.com"})).status == 403


async def test_new_sessions_are_limited_per_client_and_in_all(tmp_path):
    clock = Clock()
    bot = web_bot(tmp_path, clock=clock, sessions_per_client=3, sessions_per_minute=5,
                  server={"trusted_proxies": ["127.0.0.0/8"]})
    async with Served(bot) as served:
        one = [(await served.post("/api/session", headers=from_client("203.0.113.1"))).status for _ in range(4)]
        assert one == [201, 201, 201, 429]
        spoofed = await served.post("/api/session", headers=from_client("203.0.113.9, 203.0.113.1"))
        assert spoofed.status == 429  # the proxy appended the real address; what the client wrote is ignored
        refused = await served.post("/api/session", headers=from_client("203.0.113.1"))
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "3 new sessions a minute" in (await refused.json())["error"]
        two = [(await served.post("/api/session", headers=from_client("2001:db8::1"))).status,
               (await served.post("/api/session", headers=from_client("2001:db8::2"))).status]
        assert two == [201, 201]
        everyone = await served.post("/api/session", headers=from_client("198.51.100.4"))
        assert everyone.status == 429 and "this minute" in (await everyone.json())["error"]
        clock.advance(61)
        assert (await served.post("/api/session", headers=from_client("203.0.113.1"))).status == 201
        assert len(await bot.store.keys()) == 6


async def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(tmp_path):
    async with Served(web_bot(tmp_path, sessions_per_client=2)) as served:
        statuses = [(await served.post("/api/session", headers=from_client(f"203.0.113.{n}"))).status for n in range(3)]
    assert statuses == [201, 201, 429]


async def test_a_session_per_message_does_not_escape_the_rate_limit(tmp_path):
    ran = []

    async def handler(context):
        ran.append(context.event.text)

    bot = web_bot(tmp_path, handler, sessions_per_client=None, server={"trusted_proxies": ["127.0.0.1"]})
    async with Served(bot) as served:
        tokens = [(await new_session(served))[1] for _ in range(30)]
        statuses = [(await chat(served, token, text=f"{n}")).status for token in tokens for n in range(30)]
        assert statuses == [200] * 120 + [429] * 780
        refused = await chat(served, tokens[0], text="again")
        assert "120 messages a minute from your address" in (await refused.json())["error"]
        assert (await served.post("/api/chat", json={"text": "elsewhere"},
                                  headers={**bearer(tokens[0]), **from_client("198.51.100.4")})).status == 200
    assert len(ran) == 121


async def test_an_anonymous_session_is_stored_with_a_ttl_and_a_logged_in_one_is_not(tmp_path):
    import redis.asyncio as aioredis

    session = session_config("redis", tmp_path)
    store = session["stores"]["redis"]
    bot = web_bot(tmp_path, session=session, anonymous_expiry=7, jwt_key=JWT_KEY)
    client = aioredis.Redis.from_url(store["url"])
    try:
        async with Served(bot) as served:
            anonymous, token = await new_session(served)
            member, _ = await new_session(served, login=login("user-42"))
            week = 7 * 86400 * 1000 + int(KEEP_EXPIRED * 1000)  # and the hour kept for the end sweep
            assert week - 60_000 < await client.pttl(f"{store['prefix']}session:web:{anonymous}") <= week
            assert await client.pttl(f"{store['prefix']}session:web:{member}") == -1
            assert await texts(served, token, "hi") == ["Count: 1"]
            assert week - 60_000 < await client.pttl(f"{store['prefix']}session:web:{anonymous}") <= week
            for key in await bot.store.keys():
                await bot.store.delete(key)
        shorter = web_bot(tmp_path, session={**session, "expires_in": 30}, anonymous_expiry=7)
        async with Served(shorter) as served:
            anonymous, _ = await new_session(served)
            kept = int(KEEP_EXPIRED * 1000)
            assert 29 * 60_000 + kept < await client.pttl(f"{store['prefix']}session:web:{anonymous}") <= 30 * 60_000 + kept
            for key in await shorter.store.keys():
                await shorter.store.delete(key)
    finally:
        await client.aclose()


async def test_event_streams_are_capped_in_all(tmp_path):
    async with Served(web_bot(tmp_path, max_streams=2)) as served:
        tokens = [(await new_session(served))[1] for _ in range(3)]
        first, second = [await served.get("/api/events", headers=bearer(token)) for token in tokens[:2]]
        assert (await next_event(first))[0] == "ready" and (await next_event(second))[0] == "ready"
        full = await served.get("/api/events", headers=bearer(tokens[2]))
        assert full.status == 503 and int(full.headers["Retry-After"]) > 0
        assert "too many open event streams" in (await full.json())["error"]
        second.close()
        for _ in range(50):
            third = await served.get("/api/events", headers=bearer(tokens[2]))
            if third.status == 200:
                break
            await asyncio.sleep(0.05)
        assert third.status == 200 and (await next_event(third))[0] == "ready"
        first.close()
        third.close()


async def test_sessions_made_in_process_count_only_in_all(tmp_path):
    """botkit.testing calls the channel in-process, with no client address: only sessions_per_minute counts."""
    from botkit.core.requests import Request

    bot = web_bot(tmp_path, sessions_per_client=2, sessions_per_minute=3)
    async with bot:
        [create] = [route.handler for _, route in bot.routes() if route.method == "POST" and route.path == "/api/session"]
        answers = [await create(Request("POST", "/api/session")) for _ in range(4)]
    assert [answer.status for answer in answers] == [201, 201, 201, 429]
