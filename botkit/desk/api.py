"""The desk API, every call with ``Authorization: Bearer <desk.secret>`` (401 otherwise):

``GET  {path}/api/conversations``                 the conversations in human mode
``GET  {path}/api/conversations/<key>``           one, with its ``messages`` (the transcript)
``POST {path}/api/conversations/<key>/claim``     ``{"agent"}``: 200, or 409 when another agent holds it
``POST {path}/api/conversations/<key>/reply``     ``{"agent", "text"}``: sent through the conversation's channel
``POST {path}/api/conversations/<key>/handback``  ``{"agent"}``: the handler then gets a ``handback`` event
``GET  {path}/api/events``                        server-sent events: handoffs, claims, messages, handbacks,
                                                  from every worker (the store's bus)
"""
from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import orjson

from botkit.adapters.base import Route, RouteHandler
from botkit.adapters.web_events import Hub, HubFull, stream
from botkit.app.bot import Bot
from botkit.app.handoffs import TOPIC, Verdict
from botkit.core.errors import BotkitError, StoreUnavailable
from botkit.core.requests import Reply, Request
from botkit.desk.page import page_routes

log = logging.getLogger("botkit.desk")

MAX_AGENT = 100
MAX_TEXT = 4096
MAX_STREAMS = 200
KEEPALIVE = 20.0
STREAM = "desk"
NO_STORE = {"Cache-Control": "no-store"}


class Desk:
    """The desk of one bot: its routes, and the event streams open in this process."""

    def __init__(self, bot: Bot) -> None:
        assert bot.config.desk is not None
        self.bot = bot
        self.path: str = bot.config.desk["path"]
        self.secret = str(bot.config.desk["secret"]).encode()
        self.hub = Hub(queue_size=256, per_session=MAX_STREAMS, max_streams=MAX_STREAMS)
        bot.bus.subscribe(TOPIC, self._heard)

    def routes(self) -> list[Route]:
        api = f"{self.path}/api"
        one = f"{api}/conversations/{{key}}"
        return [
            *page_routes(self.path),
            Route("GET", f"{api}/conversations", self._guarded(self._list)),
            Route("GET", one, self._guarded(self._one)),
            Route("POST", f"{one}/claim", self._guarded(self._claim)),
            Route("POST", f"{one}/reply", self._guarded(self._reply)),
            Route("POST", f"{one}/handback", self._guarded(self._handback)),
            Route("GET", f"{api}/events", self._guarded(self._events)),
        ]

    def _heard(self, notice: Any) -> None:
        """A notice from any worker (the store's bus): to every desk stream open in this process."""
        self.hub.publish(STREAM, notice)

    def shutdown(self) -> None:
        """End the event streams, so that the server's shutdown does not wait on them."""
        self.hub.close()

    # -- the guard ----------------------------------------------------------------------------------

    def _guarded(self, route: Callable[[Request], Awaitable[Reply]]) -> RouteHandler:
        async def guarded(request: Request) -> Reply:
            if not self._allowed(request):
                return Reply.json({"error": "the desk's secret is needed: Authorization: Bearer <desk.secret>"}, 401,
                                  {"WWW-Authenticate": 'Bearer realm="desk"', **NO_STORE})
            try:
                return await route(request)
            except BadInput as exc:
                return Reply.json({"error": str(exc)}, 400, NO_STORE)
            except StoreUnavailable as exc:
                log.warning("desk: %s %s: %s", request.method, request.path, exc)
                return Reply.json({"error": "the session store is unavailable; try again"}, 503, {"Retry-After": "1"})
            except BotkitError as exc:
                log.error("desk: %s %s: %s", request.method, request.path, exc)
                return Reply.json({"error": str(exc)}, 500, NO_STORE)

        return guarded

    def _allowed(self, request: Request) -> bool:
        header = request.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            token = request.query.get("access_token", "") if request.path.endswith("/events") else ""
        return bool(token) and hmac.compare_digest(token.strip().encode(), self.secret)

    # -- the calls ----------------------------------------------------------------------------------

    async def _list(self, request: Request) -> Reply:
        found = await self.bot.handoffs.conversations()
        return Reply.json({"conversations": [conversation.to_dict() for conversation in found]}, headers=NO_STORE)

    async def _one(self, request: Request) -> Reply:
        key = _key(request)
        found = await self.bot.handoffs.conversation(key)
        if found is None:
            return _gone(key)
        conversation, messages = found
        return Reply.json({**conversation.to_dict(), "messages": messages}, headers=NO_STORE)

    async def _claim(self, request: Request) -> Reply:
        key, body = _key(request), _body(request)
        agent = _agent(body)
        return _answer(key, agent, await self.bot.handoffs.claim(key, agent))

    async def _reply(self, request: Request) -> Reply:
        key, body = _key(request), _body(request)
        agent = _agent(body)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text.encode()) > MAX_TEXT:
            raise BadInput(f'"text" must be a message of 1 to {MAX_TEXT} bytes')
        return _answer(key, agent, await self.bot.handoffs.reply(key, agent, text))

    async def _handback(self, request: Request) -> Reply:
        key, body = _key(request), _body(request)
        agent = _agent(body)
        return _answer(key, agent, await self.bot.handoffs.hand_back(key, agent))

    async def _events(self, request: Request) -> Reply:
        try:
            queue = self.hub.subscribe(STREAM)
        except HubFull:
            return Reply.json({"error": "too many desk streams open in this process"}, 503, {"Retry-After": "5"})

        async def chunks() -> Any:
            try:
                async for chunk in stream(queue, keepalive=KEEPALIVE):
                    yield chunk
            finally:
                self.hub.unsubscribe(STREAM, queue)

        return Reply(200, b"", "text/event-stream", {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}, chunks())


class BadInput(Exception):
    """A desk request without what it must carry: 400."""


def _key(request: Request) -> str:
    key = unquote(request.match.get("key", ""))
    if ":" not in key:
        raise BadInput("the path must name a session key, such as telegram%3A42")
    return key


def _body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError:
        raise BadInput("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    return body


def _agent(body: dict[str, Any]) -> str:
    agent = body.get("agent")
    if not isinstance(agent, str) or not agent.strip() or len(agent) > MAX_AGENT:
        raise BadInput(f'"agent" must name the agent (1 to {MAX_AGENT} characters)')
    return agent.strip()


def _gone(key: str) -> Reply:
    return Reply.json({"error": f"{key} is not waiting for a human"}, 404, NO_STORE)


def _answer(key: str, agent: str, verdict: Verdict) -> Reply:
    if verdict is Verdict.TAKEN:
        return Reply.json({"error": f"another agent holds {key}"}, 409, NO_STORE)
    if verdict is Verdict.GONE:
        return _gone(key)
    return Reply.json({"ok": True, "session_key": key, "agent": agent}, headers=NO_STORE)
