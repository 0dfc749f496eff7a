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
from botkit.adapters.web_events import Hub, HubFull, stream
from botkit.adapters.web_guard import Origins, Throttled, Warnings, check_limit, client_key, require_json
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
from botkit.engine.lifecycle import restart_session

log = logging.getLogger("botkit.adapters.web")

RATE_WINDOW = 60.0
FAILED = "the bot failed while handling this message; the conversation is as it was before it"
MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


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
        "client_rate_limit": 120,    # messages a minute from one client address, over all its sessions
        "sessions_per_client": 10,   # new sessions a minute from one client address
        "sessions_per_minute": 300,  # new sessions a minute in all (every worker, with a shared store)
        "allowed_origins": (),       # other sites whose pages may use the API ("*": any)
        "max_streams": 1000,         # open event streams in this process
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
        self.client_rate_limit: int | None = self.settings["client_rate_limit"]
        self.sessions_per_client: int | None = self.settings["sessions_per_client"]
        self.sessions_per_minute: int | None = self.settings["sessions_per_minute"]
        self.origins = Origins(name, self.settings["allowed_origins"])
        self.login = LoginVerifier.from_settings(name, self.settings, host.clock)
        self.hub = Hub(max_streams=self.settings["max_streams"])
        self.warnings = Warnings()

    @classmethod
    def validate(cls, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        merged = super().validate(name, settings)
        for key in ("rate_limit", "max_message_size", "max_streams"):
            _check_number(name, key, merged[key], whole=True)
        for key in ("client_rate_limit", "sessions_per_client", "sessions_per_minute"):
            check_limit(name, key, merged[key])
        merged["allowed_origins"] = Origins.validate(name, merged["allowed_origins"])
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
        reason = error.reason
        if isinstance(error, Throttled):
            headers["Retry-After"] = str(error.retry_after)
        elif error.status == 503:
            headers["Retry-After"] = "1"
            reason = "the bot cannot reach its session store; try again shortly"
        return _json({"error": reason}, error.status, headers)

    def _api(self, route: RouteHandler) -> RouteHandler:
        @functools.wraps(route)
        async def guarded(request: Request) -> Reply:
            try:
                self.origins.check(request)
                return await route(request)
            except RequestRejected as exc:
                return self.reject(exc)
            except StoreUnavailable as exc:
                log.error("%s: session store unavailable (%s); answered 503", self.name, exc)
                return self.reject(RequestRejected(str(exc), 503))

        return guarded

    # -- the session API -----------------------------------------------------------------------------

    async def create_session(self, request: Request) -> Reply:
        """``POST /api/session`` (body optional; ``{"login": "<JWT>"}`` for an authenticated session) → 201.
        Refused cross-site (403, 415) and beyond the new-session limits (429)."""
        require_json(request)
        await self._count_new_session(request)
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
                await context.end_session()

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
        try:
            queue = self.hub.subscribe(visitor.session_id)
        except HubFull:
            self.warnings.warn("streams", "%s: %d event streams open, channels.%s.max_streams; refusing new ones with 503",
                               self.name, self.hub.open, self.name)
            raise Throttled("this server has too many open event streams; try again shortly", 30, 503) from None
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

    async def check_headers(self, request: Request) -> None:
        """Before the body is read: not from another site's page (403)."""
        self.origins.check(request)

    async def verify(self, request: Request) -> None:
        """A valid token (401 otherwise) and a message within the session's and the client's rate limits
        (429 otherwise)."""
        visitor = await self._authorize(request)
        await self._count_message(visitor.session_id, request)

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
        return [*super().middleware(), self._guard]

    async def _guard(self, context: Context, call_next: Callable[[Context], Awaitable[Any]]) -> Any:
        """Under the session's lock, around the handler. Before a chat message: once more sure the session
        still holds the token (it may have ended while the message waited its turn), and the state started
        afresh after ``idle_timeout`` minutes without a message. After any run on an anonymous session of
        this channel: its record expires ``anonymous_expiry`` days after its last activity, in the store
        too (a Redis TTL), so sessions nobody uses do not pile up."""
        session, event = context.session, context.event
        if event.channel == self.name and "token_hash" in event.meta:
            if not _holds(session, event.meta["token_hash"]):
                event.meta["gone"] = True
                raise SessionGone(f"{SessionKey(session.id).platform} session ended while a message waited for its turn")
            if event.user_id is None and session.address:
                event.user_id = session.address.get("user_id")
            if self.idle_timeout is not None and self.clock() - session.last_activity > self.idle_timeout * 60:
                restart_session(context)  # the end hook, a fresh state, the start hook (engine/lifecycle.py)
        result = await call_next(context)
        self._expire_anonymous(context)
        return result

    def _expire_anonymous(self, context: Context) -> None:
        session = context.session
        if self.anonymous_expiry is None or session.channel != self.name or SessionKey(session.id).platform != self.platform:
            return
        if (session.address or {}).get("user_id") is not None:
            return
        minutes = self.anonymous_expiry * 24 * 60
        context.expires_in = minutes if context.expires_in is None else min(context.expires_in, minutes)

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
            raise Unauthorized("unknown, revoked or expired token; start a new session with POST /api/session")
        user_id = session.address.get("user_id")
        if user_id is None and self._anonymous_expired(session):
            raise Unauthorized("the session expired; start a new one with POST /api/session")
        return Visitor(session, session_id, hashed, user_id)

    def _anonymous_expired(self, session: Session) -> bool:
        if self.anonymous_expiry is None:
            return False
        return self.clock() - session.last_activity > self.anonymous_expiry * 86400

    async def _count_message(self, session_id: str, request: Request) -> None:
        count, wait = await self._hit(f"web-rate:{session_id}")
        if count > self.rate_limit:
            raise Throttled(f"more than {self.rate_limit} messages a minute; try again in {wait} s", wait)
        client = client_key(request.remote)
        if self.client_rate_limit is None or client is None:
            return
        count, wait = await self._hit(f"web-client-rate:{self.name}:{client}")
        if count > self.client_rate_limit:
            self.warnings.warn("client-rate", "%s: %s sent more than %d messages a minute (channels.%s.client_rate_limit); "
                               "refusing them with 429", self.name, client, self.client_rate_limit, self.name)
            raise Throttled(f"more than {self.client_rate_limit} messages a minute from your address; try again in {wait} s", wait)

    async def _count_new_session(self, request: Request) -> None:
        """Count a new session against the client's limit, then against everyone's."""
        client = client_key(request.remote)
        if self.sessions_per_client is not None and client is not None:
            count, wait = await self._hit(f"web-new:{self.name}:{client}")
            if count > self.sessions_per_client:
                self.warnings.warn("sessions-per-client", "%s: %s asked for more than %d new sessions a minute "
                                   "(channels.%s.sessions_per_client); refusing them with 429",
                                   self.name, client, self.sessions_per_client, self.name)
                raise Throttled(f"more than {self.sessions_per_client} new sessions a minute from your address; "
                                f"try again in {wait} s", wait)
        if self.sessions_per_minute is not None:
            count, wait = await self._hit(f"web-new:{self.name}")
            if count > self.sessions_per_minute:
                self.warnings.warn("sessions-per-minute", "%s: more than %d new sessions a minute (channels.%s.sessions_per_minute); "
                                   "refusing them with 429", self.name, self.sessions_per_minute, self.name)
                raise Throttled(f"the chat takes no more new conversations this minute; try again in {wait} s", wait)

    async def _hit(self, counter: str) -> tuple[int, int]:
        """Count one hit in the current minute of ``counter``: the hits so far and the whole seconds left."""
        try:
            count, resets_in = await self.host.hit(counter, RATE_WINDOW)
        except Exception as exc:
            raise StoreUnavailable(f"rate-limit counter: {type(exc).__name__}: {exc}") from exc
        return count, max(1, math.ceil(resets_in))

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
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or (whole and not isinstance(number, int)) or number <= 0:
        what = "a positive whole number" if whole else "a positive number (or None to turn it off)"
        raise ConfigError(f"channels.{channel}.{key}", f"must be {what}, not {value!r}")
