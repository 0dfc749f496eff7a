"""What Meta's two chat channels share: Messenger and the WhatsApp Cloud API.

Both receive Meta webhooks: a GET ``hub.mode=subscribe`` handshake answered with ``hub.challenge`` when
``hub.verify_token`` matches, then POSTs signed with ``X-Hub-Signature-256`` (``sha256=`` + the hex HMAC-SHA256
of the raw body keyed with the app secret) whose JSON is ``{"object": …, "entry": [...]}``. Both answer
through the Graph API. See https://developers.facebook.com/docs/graph-api/webhooks/getting-started.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

from botkit.adapters.base import Adapter, Route, parse_json, require, same_secret
from botkit.adapters.guards import credential, refuse_stale
from botkit.core.errors import BadRequest, ConfigError, Unauthorized
from botkit.core.events import Event
from botkit.core.requests import Reply, Request

SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_SHAPE = re.compile(r"sha256=[0-9a-f]{64}", re.IGNORECASE)
GRAPH_API = "https://graph.facebook.com/v19.0"
MAX_BODY_SIZE = 4 * 1024 * 1024
"""Meta batches up to 1,000 updates in one webhook, and the WhatsApp Cloud API documents payloads of up to
3 MB; a megabyte more for room. (The server's ``client_max_size``, 1 MiB by default, still applies.)"""


def signature(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_header(request: Request) -> str:
    """The ``X-Hub-Signature-256`` header, lower-cased; Unauthorized when it is missing or could not be a
    signature (this needs no body: it runs before the body is read)."""
    header = credential(request, SIGNATURE_HEADER)
    if header is None:
        raise Unauthorized(f"missing {SIGNATURE_HEADER}")
    if not SIGNATURE_SHAPE.fullmatch(header):
        raise Unauthorized(f"wrong {SIGNATURE_HEADER}: not sha256= and 64 hex digits")
    return header.lower()


def check_signature(header: str, body: bytes, app_secret: str) -> None:
    """Unauthorized unless ``header`` is Meta's signature of ``body`` (compared in constant time)."""
    if not same_secret(header, signature(body, app_secret)):
        raise Unauthorized(f"wrong {SIGNATURE_HEADER}: the body was changed or app_secret differs")


class MetaAdapter(Adapter):
    """The webhook half both Meta channels share: handshake, signature, the ``entry`` envelope."""

    object_type: ClassVar[str]
    """The ``object`` of this channel's webhooks: ``page`` or ``whatsapp_business_account``."""
    default_api_base = GRAPH_API
    max_body_size = MAX_BODY_SIZE

    def routes(self) -> list[Route]:
        return [Route("GET", self.path, self.handshake), Route("POST", self.path)]

    async def handshake(self, request: Request) -> Reply:
        """Meta's verification request when the callback URL is saved: echo the challenge, or 403."""
        query = request.query
        challenge = query.get("hub.challenge")
        if (
            query.get("hub.mode") == "subscribe"
            and challenge is not None
            and same_secret(query.get("hub.verify_token"), str(self.settings["verify_token"]))
        ):
            return Reply.text(challenge)
        return Reply.text("hub.verify_token does not match this channel's verify_token", 403)

    async def check_headers(self, request: Request) -> None:
        signature_header(request)

    async def verify(self, request: Request) -> None:
        check_signature(signature_header(request), request.body, str(self.settings["app_secret"]))

    def fresh(self, events: list[Event]) -> list[Event]:
        """``events``, unless the delivery is older than ``replay_window`` (Unauthorized: a replay)."""
        refuse_stale(events, self.settings["replay_window"], self.clock())
        return events

    def entries(self, body: bytes) -> list[dict[str, Any]]:
        """The ``entry`` list of a webhook body; BadRequest when the body is not this channel's."""
        document = require(parse_json(body), dict, "the webhook body")
        kind = require(document.get("object"), str, '"object"')
        if kind != self.object_type:
            raise BadRequest(f'"object" is {kind!r}, not {self.object_type!r}: not a {self.name} webhook')
        return [require(entry, dict, "entry[]") for entry in require(document.get("entry"), list, '"entry"')]


class GraphClient:
    """Graph API calls with one token, sent where the channel's docs put it (the ``access_token`` query
    parameter, or ``Authorization: Bearer``). Retries and SendError come from the bot's HttpClient, which
    masks the token in what it logs and raises; Meta's throttling errors are retried like a 429."""

    def __init__(self, adapter: Adapter, token: str, *, bearer: bool) -> None:
        self.adapter = adapter
        self.token = token
        self.bearer = bearer

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        """``method {api_base}/{path}``; returns the parsed answer."""
        token = token or self.token
        query = dict(params or {})
        headers = None
        if self.bearer:
            headers = {"Authorization": f"Bearer {token}"}
        else:
            query["access_token"] = token
        url = f"{self.adapter.api_base}/{path.lstrip('/')}"
        if query:
            url += "?" + urlencode(query, quote_via=quote)
        return await self.adapter.http.request(
            method, url, json=json, data=data, headers=headers, retryable=throttled
        )

    async def api(self, path: str, payload: Any = None, *, verb: str = "POST") -> Any:
        """``context.api``: any Graph path with the channel's token; ``payload`` is the JSON body, or the
        query of a GET."""
        verb = verb.upper()
        if verb == "GET":
            return await self.call(verb, path, params=payload)
        return await self.call(verb, path, json=payload)


THROTTLING_CODES = frozenset({4, 17, 32, 613, 80001, 130429, 131048, 131056})
"""Graph API error codes that mean "too many calls, try later", sent with a 400 rather than a 429."""


def throttled(status: int, body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") in THROTTLING_CODES


def plain_id(value: Any, setting: str) -> str:
    """A Graph object id from config (an int or a string of digits)."""
    text = str(value).strip()
    if not re.fullmatch(r"\d+", text):
        raise ConfigError(setting, f"must be the numeric id Meta shows in the dashboard, not {value!r}")
    return text


# -- the `botkit <channel> webhook …` commands ------------------------------------------------------


def webhook_parser(
    channel: str, set_help: str, extra: Mapping[str, str] | None = None, fields: tuple[str, ...] = ()
) -> argparse.ArgumentParser:
    """``botkit <channel> webhook set URL | info | delete`` plus ``extra`` actions (name → help); with
    ``fields``, ``set`` and the extra actions take ``--fields`` (comma-separated, ``fields`` by default)."""
    parser = argparse.ArgumentParser(prog=f"botkit {channel}")
    sub = parser.add_subparsers(dest="what", required=True)
    webhook = sub.add_parser("webhook", help="set, show or remove Meta's webhook subscription").add_subparsers(
        dest="action", required=True)
    setter = webhook.add_parser("set", help=set_help)
    setter.add_argument("url", help="the public HTTPS URL of this channel's webhook route")
    webhook.add_parser("info", help="what Meta knows of the subscription")
    webhook.add_parser("delete", help="stop webhook delivery")
    subscribers = [setter] + [webhook.add_parser(action, help=text) for action, text in (extra or {}).items()]
    if fields:
        for command in subscribers:
            command.add_argument("--fields", default=",".join(fields),
                                 help=f"comma-separated webhook fields (default {','.join(fields)})")
    return parser


def public_url_problem(url: str) -> str | None:
    """Why Meta would refuse ``url`` as a callback (it must be HTTPS), or None."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        return f"{url!r} is not an https:// URL; Meta only calls HTTPS callbacks with a valid certificate"
    return None


def show(result: Any) -> None:
    print(json.dumps(result, indent=2, ensure_ascii=False) if isinstance(result, (dict, list)) else result)
