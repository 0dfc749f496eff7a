"""What every channel is: settings, routes, verification, parsing into events, sending, answering.

A channel sees a plain ``Request`` and returns a ``Reply`` (botkit.core.requests); the server is the only
module that speaks HTTP. A webhook walks through ``verify`` (401/403 and nothing else runs), ``parse``
(400 for a body that is not the platform's format), the engine, then ``respond`` with what the platform
expects (botkit.app.webhook). Channels never touch a session store: what they need of the running bot
comes through ``ChannelHost``.
"""
from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import orjson

from botkit.adapters.guards import replay_window
from botkit.core import choices
from botkit.core.errors import BadRequest, ConfigError, RequestRejected
from botkit.core.events import Event
from botkit.core.requests import Reply, Request
from botkit.core.sending import Sender
from botkit.core.session import Session
from botkit.engine.context import Context
from botkit.engine.dispatcher import Outcome
from botkit.engine.middleware import Middleware
from botkit.http import HttpClient
from botkit.storage.live import Bus

__all__ = [
    "MALFORMED",
    "REQUIRED",
    "Adapter",
    "ChannelHost",
    "Middleware",
    "Route",
    "RouteHandler",
    "Sender",
    "parse_json",
    "require",
    "same_secret",
]

log = logging.getLogger("botkit.adapters")

REQUIRED: Any = object()
"""Marks a setting with no default: a listed channel without it stops start-up."""

MALFORMED = (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError)
"""What parsing a body of the wrong shape raises; a 400, never a 500, whatever the adapter missed."""

COMMON_SETTINGS: dict[str, Any] = {"enabled": True, "path": None, "api_base": None, "ack_within": "server", "adapter": None}
"""Every channel's settings. ``ack_within`` "server" takes ``server.ack_within``; ``adapter`` names the
registered channel a differently named one uses (``"wa_cloud": {"adapter": "whatsapp", "provider": "cloud"}``
beside a Twilio ``whatsapp``)."""

class ChannelHost(Protocol):
    """What a channel may use of the running bot (``botkit.Bot`` provides it)."""

    http: HttpClient
    clock: Callable[[], float]
    bus: Bus
    """Messages every process of the bot hears (a web page's stream may be held by another process)."""

    async def load_session(self, session_key: str) -> Session | None: ...

    async def run(self, session_key: str, handler: Callable[[Any], Awaitable[Any]], *, event_type: str = ...,
                  data: Mapping[str, Any] | None = ..., event_id: str | None = ...) -> Outcome: ...

    async def hit(self, name: str, window: float) -> tuple[int, float]: ...


RouteHandler = Callable[[Request], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Route:
    """One route of a channel. ``handler`` None: the webhook walk (verify, parse, handle, respond)."""

    method: str
    path: str
    handler: RouteHandler | None = None


class Adapter:
    platform: ClassVar[str]
    """The session-key prefix of this channel's sessions."""
    settings_schema: ClassVar[Mapping[str, Any]] = {}
    """Setting name → default (``REQUIRED`` when there is none)."""
    default_api_base: ClassVar[str | None] = None
    max_body_size: ClassVar[int | None] = None
    """Bytes a request to this channel may carry (its platform's real bodies, with room); None: the
    server's ``client_max_size``. Larger ones get 413 before they are read."""

    def __init__(self, name: str, settings: Mapping[str, Any], host: ChannelHost) -> None:
        self.name = name
        self.settings = dict(settings)
        self.host = host
        self.http = host.http
        self.clock = host.clock
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
        if "replay_window" in merged:
            merged["replay_window"] = replay_window(name, merged)
        ack = merged["ack_within"]
        if ack != "server" and ack is not None and (isinstance(ack, bool) or not isinstance(ack, (int, float)) or ack < 0):
            raise ConfigError(f"channels.{name}.ack_within", f"must be seconds (0 or more) or None, not {ack!r}")
        for key, value in merged.items():
            if value is REQUIRED or (cls.settings_schema.get(key) is REQUIRED and value in (None, "")):
                raise ConfigError(
                    f"channels.{name}.{key}",
                    "missing; set it in bot.config.py (or its environment variable), or set \"enabled\": False",
                )
        return merged

    # -- the webhook, step by step -------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route("POST", self.path)]

    async def check_headers(self, request: Request) -> None:
        """Called before the body is read (``request.body`` is empty): refuse early what the headers alone
        show to be foreign (a missing or wrong secret header, an invalid bearer token)."""

    async def verify(self, request: Request) -> None:
        """Raise Unauthorized (401) or Forbidden (403) unless the request comes from the platform."""
        raise NotImplementedError

    def parse(self, request: Request) -> list[Event]:
        """Turn the body into events, in the platform's order. Raise BadRequest for a foreign body."""
        raise NotImplementedError

    def respond(self, events: list[Event], request: Request, inband: list[Any], outcomes: list[Outcome]) -> Reply:
        """The answer to a handled webhook; ``inband`` holds what the handlers sent in-band."""
        return Reply()

    async def hand_off(self, session: Session, reason: str | None) -> None:
        """A conversation was handed to a human (``context.handoff``): the platform's own handover to its
        human inbox, where it has one (Messenger's Handover Protocol). Nothing by default."""

    async def hand_back(self, session: Session, by: str | None) -> None:
        """The conversation went back to the bot: take the platform's thread control back, if it has one."""

    def reject(self, error: RequestRejected) -> Reply:
        """The answer to a request refused before or while it was handled."""
        headers = {"Retry-After": "1"} if error.status == 503 else {}
        return Reply.text(error.reason, error.status, headers=headers)

    def middleware(self) -> list[Middleware]:
        """What this channel runs around the handler (the web chat's idle reset, say). Every channel
        maps the answer to a numbered list, and a long payload's token, back to the button's payload."""
        return [choice_replies(self.name)]

    # -- sending -----------------------------------------------------------------------------------

    def sender(self, event: Event, inband: list[Any] | None = None) -> Sender:
        """A sender answering ``event`` (reply tokens and threads are the adapter's business); ``inband``
        collects what may go back in the webhook's own answer, on channels that can."""
        raise NotImplementedError

    def push_sender(self, session_key: str, address: Mapping[str, Any] | None) -> Sender:
        """A sender for a message the bot starts (scheduled steps, ``bot.send_text``)."""
        raise NotImplementedError(f"the {self.name} channel cannot start a conversation")

    async def deliver_late(self, event: Event, inband: list[Any]) -> None:
        """What a handler sent in-band after its webhook had answered: send it through the push path.
        Channels that use no in-band answer never have any."""

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


def choice_replies(channel: str) -> Middleware:
    """Events of ``channel`` that answer a button the bot listed become that button's ``payload`` event
    (``botkit.core.choices``)."""

    async def answer_choices(context: Context, call_next: Callable[[Context], Awaitable[Any]]) -> Any:
        if context.event.channel == channel:
            choices.answer(context.session, context.event)
        return await call_next(context)

    return answer_choices


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None


def require(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is of ``kind``; BadRequest naming ``what`` otherwise."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
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
