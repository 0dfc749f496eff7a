"""What every channel adapter is: routes, verification, parsing into events, sending, answering.

A webhook walks through ``Adapter.handle_webhook``: ``verify`` (401/403 and nothing else runs), ``parse``
(400 for a body that is not the platform's format), the bot's dispatcher, then ``respond`` with what the
platform expects. Subclasses fill in those steps and a ``Sender``; they never touch a session store.
"""
from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import orjson
from aiohttp import web

from botkit.errors import BadRequest, ConfigError, RequestRejected, StoreUnavailable
from botkit.event import Event

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.adapters")

REQUIRED: Any = object()
"""Marks a setting with no default: a listed channel without it stops start-up."""

MALFORMED = (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError)
"""What parsing a body of the wrong shape raises; a 400, never a 500, whatever the adapter missed."""

COMMON_SETTINGS: dict[str, Any] = {"enabled": True, "path": None, "api_base": None}


class Sender:
    """Sends to one conversation. Subclasses add the platform's other sends (``send_image``, …)."""

    async def send_text(self, text: str, **options: Any) -> Any:
        raise NotImplementedError


class Adapter:
    platform: ClassVar[str]
    """The session-key prefix of this channel's sessions."""
    settings_schema: ClassVar[Mapping[str, Any]] = {}
    """Setting name → default (``REQUIRED`` when there is none)."""
    default_api_base: ClassVar[str | None] = None

    def __init__(self, name: str, settings: Mapping[str, Any], bot: "Bot") -> None:
        self.name = name
        self.settings = dict(settings)
        self.bot = bot
        self.http = bot.http
        self.path: str = self.settings.get("path") or f"/webhooks/{name}"
        self.api_base: str = (self.settings.get("api_base") or self.default_api_base or "").rstrip("/")

    @classmethod
    def validate(cls, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The channel's settings with defaults filled in; ConfigError names a missing or unknown one."""
        schema = {**COMMON_SETTINGS, **cls.settings_schema}
        for key in settings:
            if key not in schema:
                raise ConfigError(f"channels.{name}.{key}", f"unknown setting; known: {', '.join(schema)}")
        merged = {key: settings.get(key, default) for key, default in schema.items()}
        for key, value in merged.items():
            if value is REQUIRED or (cls.settings_schema.get(key) is REQUIRED and value in (None, "")):
                raise ConfigError(
                    f"channels.{name}.{key}",
                    "missing; set it in bot.config.py (or its environment variable), or set \"enabled\": False",
                )
        return merged

    # -- the webhook, step by step -------------------------------------------------------------------

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.post(self.path, self.handle_webhook)]

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.read()
            await self.verify(request, body)
            events = self.parse(body, request)
        except RequestRejected as exc:
            log.info("%s webhook rejected (%d): %s", self.name, exc.status, exc.reason)
            return web.Response(status=exc.status, text=exc.reason)
        except MALFORMED as exc:  # a verified body of the wrong shape that parse did not foresee
            log.warning("%s webhook rejected (400): malformed body (%s: %s)", self.name, type(exc).__name__, exc)
            return web.Response(status=400, text="malformed body")
        for event in events:
            if event.id is not None and not isinstance(event.id, str):
                log.info("%s webhook rejected (400): an event id that is not a string", self.name)
                return web.Response(status=400, text="event id is not a string")
            event.channel = self.name
        try:
            await self.bot.dispatch(events)
        except StoreUnavailable as exc:
            log.error("%s webhook: session store unavailable (%s); answering 503 so the platform redelivers", self.name, exc)
            return web.Response(status=503, text="session store unavailable", headers={"Retry-After": "1"})
        return self.respond(events, request)

    async def verify(self, request: web.Request, body: bytes) -> None:
        """Raise Unauthorized (401) or Forbidden (403) unless the request comes from the platform."""
        raise NotImplementedError

    def parse(self, body: bytes, request: web.Request) -> list[Event]:
        """Turn the body into events, in the platform's order. Raise BadRequest for a foreign body."""
        raise NotImplementedError

    def respond(self, events: list[Event], request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    # -- sending -----------------------------------------------------------------------------------

    def sender(self, event: Event) -> Sender:
        """A sender answering ``event`` (reply tokens and threads are the adapter's business)."""
        raise NotImplementedError

    def push_sender(self, session_key: str, address: Mapping[str, Any] | None) -> Sender:
        """A sender for a message the bot starts (scheduled steps, ``bot.send_text``)."""
        raise NotImplementedError(f"the {self.name} channel cannot start a conversation")

    # -- life cycle and CLI --------------------------------------------------------------------------

    async def start(self) -> None:
        """Called once the bot's HTTP client exists, before webhooks arrive."""

    async def shutdown(self) -> None:
        """Called when the server stops accepting requests: end long-lived responses (event streams)."""

    async def stop(self) -> None:
        """Called at shutdown, after running handlers finished."""

    async def command(self, argv: list[str]) -> int:
        """``botkit <channel> …``: the platform's set-up commands (webhook set/info/delete)."""
        print(f"the {self.name} channel has no commands")
        return 2


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None


def require(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is of ``kind``; BadRequest naming ``what`` otherwise."""
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise BadRequest(f"{what} is missing or of the wrong type")
    return value


def same_secret(given: str | bytes | None, expected: str | bytes) -> bool:
    """Constant-time comparison of a secret the request carries with the configured one."""
    if given is None:
        return False
    if isinstance(given, str):
        given = given.encode()
    if isinstance(expected, str):
        expected = expected.encode()
    return hmac.compare_digest(given, expected)
