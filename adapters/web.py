"""The web channel, BotServer style: a session API with bearer tokens, history, a rate limit, server-sent
events for messages the bot starts, and a chat page at ``GET /``. Reference: docs/channels/web.md.

Session key ``web:<session id>``. The channel keeps in the session's ``address`` only the SHA-256 of the
token and the user id of an authenticated session; everything else is the Bot's session record.
"""
from __future__ import annotations

import functools
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botkit.adapters.base import Adapter, ChannelHost, Middleware, Route, RouteHandler, parse_json
from botkit.adapters.web_events import Hub, stream
from botkit.adapters.web_messages import Message, WebSender
from botkit.adapters.web_page import page_routes
from botkit.adapters.web_tokens import LoginVerifier, bearer, mint, new_session_id, same_hash, session_of, token_hash
from botkit.core.errors import BadRequest, BotkitError, ConfigError, RequestRejected, SkipSave, StoreUnavailable, Unauthorized
from botkit.core.events import MESSAGE_TYPES, Event
from botkit.core.keys import SessionKey
from botkit.core.requests import Reply, Request
from botkit.core.session import Session
from botkit.engine.context import Context
from botkit.engine.dispatcher import Outcome

log = logging.getLogger("botkit.adapters.web")

RATE_WINDOW = 60.0
FAILED = "the bot failed while handling this message; the conversation is as it was before it"
MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class TooManyRequests(RequestRejected):
    status = 429

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class SessionGone(SkipSave):
    """The session ended or lost its token between the token check and the handler's turn."""


@dataclass(slots=True)
class Visitor:
    """Who a request with a valid token speaks for."""

    session: Session
    session_id: str
    token_hash: str
    user_id: str | None


class WebAdapter(Adapter):
    platform = "web"
    settings_schema = {
        "rate_limit": 60,            # messages a minute per session
        "idle_timeout": 30,          # minutes without a message after which the state starts afresh
        "anonymous_expiry": 7,       # days without a message after which an anonymous session's token dies
        "max_message_size": 4096,    # bytes of UTF-8 in a message's text or payload
        "jwt_key": None,             # HS256 secret or PEM public key of the site's logins
        "jwt_audience": None,
        "jwt_issuer": None,
        "page": True,                # serve the chat page at GET <path>/
        "title": "Chat",             # the page's title and heading
    }
    keepalive = 15.0
    """Seconds between the comments that keep an idle event stream open through proxies (and notice a
    client that went away)."""

    def __init__(self, name: str, settings: Mapping[str, Any], host: ChannelHost) -> None:
        super().__init__(name, settings, host)
        self.path = (self.settings.get("path") or "").rstrip("/")
        self.rate_limit: int = self.settings["rate_limit"]
        self.idle_timeout: float | None = self.settings["idle_timeout"]
        self.anonymous_expiry: float | None = self.settings["anonymous_expiry"]
        self.max_message_size: int = self.settings["max_message_size"]
        self.login = LoginVerifier.from_settings(name, self.settings, host.clock)
        self.hub = Hub()

    @classmethod
    def validate(cls, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        merged = super().validate(name, settings)
        for key in ("rate_limit", "max_message_size"):
            _check_number(name, key, merged[key], whole=True)
        for key in ("idle_timeout", "anonymous_expiry"):
            if merged[key] is not None:
                _check_number(name, key, merged[key], whole=False)
        path = merged["path"]
        if path is not None and (not isinstance(path, str) or not path.startswith("/") or "?" in path or "#" in path):
            raise ConfigError(f"channels.{name}.path", f'must be a URL path such as "/chat" (the API then is /chat/api/…), not {path!r}')
        if not isinstance(merged["page"], bool):
            raise ConfigError(f"channels.{name}.page", "must be True (serve the chat page) or False (the API only)")
        if not isinstance(merged["title"], str):
            raise ConfigError(f"channels.{name}.title", "must be a string")
        LoginVerifier.from_settings(name, merged, time.time)
        return merged

    # -- routes --------------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        api = f"{self.path}/api"
        routes = [
            Route("POST", f"{api}/session", self._api(self.create_session)),
            Route("DELETE", f"{api}/session", self._api(self.end_session)),
            Route("POST", f"{api}/chat"),
            Route("GET", f"{api}/history", self._api(self.history)),
            Route("GET", f"{api}/events", self._api(self.events)),
        ]
        if self.settings["page"]:
            routes += page_routes(self.path, self.settings["title"])
        return routes

    def reject(self, error: RequestRejected) -> Reply:
        """JSON errors on every API route: 4xx with ``{"error": …}``, 503 when the store is unreachable."""
        headers = {}
        if error.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="botkit"'
        if isinstance(error, TooManyRequests):
            headers["Retry-After"] = str(error.retry_after)
        reason = error.reason
        if error.status == 503:
            headers["Retry-After"] = "1"
            reason = "the bot cannot reach its session store; try again shortly"
        return _json({"error": reason}, error.status, headers)

    def _api(self, route: RouteHandler) -> RouteHandler:
        @functools.wraps(route)
        async def guarded(request: Request) -> Reply:
            try:
                return await route(request)
            except RequestRejected as exc:
                return self.reject(exc)
            except StoreUnavailable as exc:
                log.error("%s: session store unavailable (%s); answered 503", self.name, exc)
                return self.reject(RequestRejected(str(exc), 503))

        return guarded

    # -- the session API -----------------------------------------------------------------------------

    async def create_session(self, request: Request) -> Reply:
        """``POST /api/session`` (body optional; ``{"login": "<JWT>"}`` for an authenticated session) → 201."""
        body = self._read_json(request, empty_ok=True)
        login = body.get("login")
        user_id = None
        if login is not None:
            if not isinstance(login, str):
                raise BadRequest("login must be the JWT your site's login issued, as a string")
            if self.login is None:
                raise BadRequest(f"this bot accepts no logins (channels.{self.name}.jwt_key is not set)")
            user_id = self.login.user_id(login)
        session_id = new_session_id()
        token = mint(session_id)
        address = {"token_hash": token_hash(token), "user_id": user_id}

        async def begin(context: Context) -> None:
            session = context.session
            session.address = address
            session.channel = self.name
            session.clear_history()
            session.message_count = 0

        outcome = await self.host.run(f"web:{session_id}", begin, event_type="session_created")
        if outcome is not Outcome.HANDLED:
            raise StoreUnavailable(f"creating web:{session_id} ended {outcome.value}")
        return _json({"session_id": session_id, "token": token}, 201)

    async def end_session(self, request: Request) -> Reply:
        """``DELETE /api/session``: the token stops working and the session's open pages are closed."""
        visitor = await self._authorize(request)

        async def end(context: Context) -> None:
            if _holds(context.session, visitor.token_hash):
                context.session.address = {"user_id": visitor.user_id, "ended_at": self.clock()}

        await self.host.run(f"web:{visitor.session_id}", end, event_type="session_ended")
        self.hub.close(visitor.session_id)
        return Reply(status=204, body=b"")

    async def history(self, request: Request) -> Reply:
        """``GET /api/history``: the session's stored messages, both directions, oldest first."""
        visitor = await self._authorize(request)
        entries = await visitor.session.load_history()
        messages = [m for m in entries if m.get("dir") == "out" or m.get("type") in MESSAGE_TYPES]
        return _json({"session_id": visitor.session_id, "messages": messages})

    async def events(self, request: Request) -> Reply:
        """``GET /api/events``: a ``text/event-stream`` of the messages the bot starts (same bearer token)."""
        visitor = await self._authorize(request)
        queue = self.hub.subscribe(visitor.session_id)
        topic = _topic(visitor.session_id)
        if not self.host.bus.listening(topic):
            self.host.bus.subscribe(topic, lambda message: self._to_pages(visitor.session_id, message))

        async def chunks() -> Any:
            try:
                async for chunk in stream(queue, keepalive=self.keepalive):
                    yield chunk
            finally:
                self.hub.unsubscribe(visitor.session_id, queue)
                if not self.hub.open_streams(visitor.session_id):
                    for listener in self.host.bus.listeners(topic):
                        self.host.bus.unsubscribe(topic, listener)

        return Reply(content_type="text/event-stream", body=b"", stream=chunks(),
                     headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"})

    # -- the chat webhook: ``POST /api/chat`` --------------------------------------------------------

    async def verify(self, request: Request) -> None:
        """A valid token (401 otherwise) and a message within the session's rate limit (429 otherwise)."""
        visitor = await self._authorize(request)
        await self._count_message(visitor.session_id)

    def parse(self, request: Request) -> list[Event]:
        """``{"text"}`` or ``{"payload", "text"?}``; ``"id"`` makes retries safe."""
        token = bearer(request.headers.get("Authorization")) or ""
        session_id = session_of(token) or ""
        body = self._read_json(request)
        text, payload, message_id = body.get("text"), body.get("payload"), body.get("id")
        for field, value in (("text", text), ("payload", payload)):
            if value is None:
                continue
            if not isinstance(value, str):
                raise BadRequest(f"{field} must be a string")
            size = len(value.encode())
            if size > self.max_message_size:
                raise RequestRejected(f"the message's {field} is {size} bytes; the limit is {self.max_message_size}", 413)
        if payload is None and (text is None or not text.strip()):
            raise BadRequest('send {"text": "…"} or {"payload": "…"}; the text must not be empty')
        if message_id is not None and (not isinstance(message_id, str) or not MESSAGE_ID.fullmatch(message_id)):
            raise BadRequest("id must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -")
        return [Event(
            platform=self.platform,
            type="payload" if payload is not None else "text",
            session_key=f"web:{session_id}",
            text=text,
            payload=payload,
            id=message_id or uuid.uuid4().hex,
            timestamp=self.clock(),
            raw=body,
            meta={"token_hash": token_hash(token)},
        )]

    def respond(self, events: list[Event], request: Request, inband: list[Any], outcomes: list[Outcome]) -> Reply:
        """What the handler sent, and an ``error`` when it failed (the session is then left as it was)."""
        event, outcome = events[0], outcomes[0]
        if event.meta.get("gone"):
            return self.reject(Unauthorized("the session ended"))
        if outcome is Outcome.DUPLICATE:
            return _json({"messages": [], "duplicate": True})
        if outcome is Outcome.FAILED:
            return _json({"messages": inband, "error": FAILED})
        return _json({"messages": inband})

    def middleware(self) -> list[Middleware]:
        return [self._guard]

    async def _guard(self, context: Context, call_next: Callable[[Context], Awaitable[Any]]) -> Any:
        """Under the session's lock, before the handler: once more sure the session still holds the token
        (it may have ended while the message waited its turn), and the state started afresh after
        ``idle_timeout`` minutes without a message."""
        session, event = context.session, context.event
        if event.channel != self.name or "token_hash" not in event.meta:
            return await call_next(context)
        if not _holds(session, event.meta["token_hash"]):
            event.meta["gone"] = True
            raise SessionGone(f"{session.id} ended while a message waited for its turn")
        if event.user_id is None and session.address:
            event.user_id = session.address.get("user_id")
        if self.idle_timeout is not None and self.clock() - session.last_activity > self.idle_timeout * 60:
            context.reset_state()
            session.slug = session.previous_slug = None
        return await call_next(context)

    # -- checks --------------------------------------------------------------------------------------

    async def _authorize(self, request: Request) -> Visitor:
        """Every API request: a well-formed token whose session exists, holds its hash and has not expired."""
        token = bearer(request.headers.get("Authorization"))
        if token is None:
            raise Unauthorized("missing Authorization: Bearer <token>; get a token with POST /api/session")
        session_id = session_of(token)
        if session_id is None:
            raise Unauthorized("malformed token")
        session = await self._load(f"web:{session_id}")
        hashed = token_hash(token)
        if session is None or session.address is None or not _holds(session, hashed):
            raise Unauthorized("unknown or revoked token")
        user_id = session.address.get("user_id")
        if user_id is None and self._anonymous_expired(session):
            raise Unauthorized("the session expired; start a new one with POST /api/session")
        return Visitor(session, session_id, hashed, user_id)

    def _anonymous_expired(self, session: Session) -> bool:
        if self.anonymous_expiry is None:
            return False
        return self.clock() - session.last_activity > self.anonymous_expiry * 86400

    async def _count_message(self, session_id: str) -> None:
        try:
            count, resets_in = await self.host.hit(f"web-rate:{session_id}", RATE_WINDOW)
        except Exception as exc:
            raise StoreUnavailable(f"rate-limit counter: {type(exc).__name__}: {exc}") from exc
        if count > self.rate_limit:
            wait = max(1, math.ceil(resets_in))
            raise TooManyRequests(f"more than {self.rate_limit} messages a minute; try again in {wait} s", wait)

    async def _load(self, key: str) -> Session | None:
        try:
            return await self.host.load_session(key)
        except StoreUnavailable:
            raise
        except Exception as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _read_json(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
        body = request.body
        if not body.strip() and empty_ok:
            return {}
        value = parse_json(body)
        if not isinstance(value, dict):
            raise BadRequest("the body must be a JSON object")
        return value

    # -- sending -------------------------------------------------------------------------------------

    def sender(self, event: Event, inband: list[Any] | None = None) -> WebSender:
        """A chat request's messages go back in its answer."""
        if inband is None:  # the chat request answered already: to the session's open pages
            return WebSender(functools.partial(self._publish, SessionKey(event.session_key).ident), self.clock)
        return WebSender(inband.append, self.clock)

    def push_sender(self, session_key: str, address: Mapping[str, Any] | None) -> WebSender:
        """Messages the bot starts go to the session's open pages; the history keeps them either way."""
        session_id = SessionKey(session_key).ident

        async def deliver(message: Message) -> None:
            if not address or not address.get("token_hash"):
                raise BotkitError(f"{session_key} is not an open web session (sessions start with POST /api/session)")
            await self._publish(session_id, message)

        return WebSender(deliver, self.clock)

    async def _publish(self, session_id: str, message: Message) -> None:
        await self.host.bus.publish(_topic(session_id), message)

    def _to_pages(self, session_id: str, message: Message) -> None:
        self.hub.publish(session_id, message)

    async def deliver_late(self, event: Event, inband: list[Any]) -> None:
        """A slow handler's messages reach the session's open pages through its event stream."""
        for message in inband:
            await self._publish(SessionKey(event.session_key).ident, message)

    # -- life cycle ----------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """The server stops taking requests: end the event streams now rather than at the drain timeout."""
        self.hub.close()

    async def stop(self) -> None:
        self.hub.close()


def _topic(session_id: str) -> str:
    """The live-bus topic of a web session's open pages, whichever process holds their streams."""
    return f"web:{session_id}"


def _holds(session: Session, hashed: str) -> bool:
    """True while the session keeps this token hash."""
    return same_hash((session.address or {}).get("token_hash"), hashed)


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply.json(data, status, {"Cache-Control": "no-store", **(headers or {})})


def _check_number(channel: str, key: str, value: Any, *, whole: bool) -> None:
    kinds: tuple[type, ...] = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        what = "a positive whole number" if whole else "a positive number (or None to turn it off)"
        raise ConfigError(f"channels.{channel}.{key}", f"must be {what}, not {value!r}")
