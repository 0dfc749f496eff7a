"""SMS and WhatsApp through Twilio Programmable Messaging.

Twilio posts each incoming message (and each status callback) form-encoded, signed with
``X-Twilio-Signature`` (https://www.twilio.com/docs/usage/webhooks/webhooks-security); the webhook is
answered with an empty TwiML ``<Response/>`` and replies go through the Messages API
(https://www.twilio.com/docs/messaging/api/message-resource).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from botkit.adapters.base import REQUIRED, Adapter, ChannelHost, Sender, same_secret
from botkit.adapters.guards import credential
from botkit.core.errors import BadRequest, ConfigError, RequestRejected, Unauthorized
from botkit.core.events import Event
from botkit.core.keys import SessionKey
from botkit.core.requests import Reply, Request
from botkit.engine.dispatcher import Outcome

SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
MEDIA_KINDS = {"image", "audio", "video"}
WHATSAPP = "whatsapp:"
MAX_MEDIA = 10
"""Media items one message carries at most (an MMS)."""
MAX_BODY_SIZE = 128 * 1024
"""Twilio's largest posts: a message Body (1,600 characters by SMS, 4,096 by WhatsApp) percent-encoded
as UTF-8 (up to 12 bytes a character: 49 KB), ten media URLs and types, and some sixty other parameters
(WhatsApp's profile, referral and reply fields): under 64 KB. Twice that for room."""
MAX_FIELDS = 512
"""Parameters a form may carry: Twilio sends fewer than a hundred."""
SIGNATURE_SHAPE = re.compile(r"[A-Za-z0-9+/]{27}=")
"""Base64 of the 20 bytes of an HMAC-SHA1."""
IPNetwork = IPv4Network | IPv6Network


def signed_params(params: list[tuple[str, str]]) -> str:
    """What Twilio signs after the URL: every POST parameter's name and value, sorted by name (then
    value), as Twilio's own RequestValidator builds it. Built once per request, whatever the URL variants."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    return "".join(name + value for name in sorted(values) for value in sorted(values[name]))


def sign(url: str, signed: str, auth_token: str) -> str:
    """Base64 HMAC-SHA1, keyed with the auth token, of the URL followed by ``signed_params``."""
    digest = hmac.new(auth_token.encode(), (url + signed).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature(url: str, params: list[tuple[str, str]], auth_token: str) -> str:
    """Twilio's ``X-Twilio-Signature`` of a request to ``url`` carrying ``params``."""
    return sign(url, signed_params(params), auth_token)


def url_variants(url: str) -> list[str]:
    """``url`` as it is, then without or with its default port (at most two): Twilio signs either form,
    as its validator allows."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return [url]
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host = hostport if port is None else hostport.rsplit(":", 1)[0]
    prefix = f"{userinfo}@" if userinfo else ""
    default = 443 if parts.scheme == "https" else 80
    bare = str(urlunsplit(parts._replace(netloc=prefix + host)))
    ported = str(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port or default}")))
    return [url] + [u for u in dict.fromkeys((bare, ported)) if u != url]


def form_params(body: bytes) -> list[tuple[str, str]]:
    """The form's parameters, at most ``MAX_FIELDS`` of them; BadRequest for a body that is not a form."""
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("body is not a form-encoded Twilio request") from None


def trusted_networks(name: str, value: Any) -> list[IPNetwork]:
    """The ``trusted_proxies`` setting: IP addresses and CIDR blocks; ConfigError names a wrong one."""
    setting = f"channels.{name}.trusted_proxies"
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(setting, f'must be a list of IP addresses or CIDR blocks, like ["10.0.0.0/8"], not {value!r}')
    networks: list[IPNetwork] = []
    for item in value:
        try:
            networks.append(ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ConfigError(setting, f"{item!r} is not an IP address or CIDR block") from None
    return networks


def from_networks(remote: str | None, networks: list[IPNetwork]) -> bool:
    """Whether the peer address ``remote`` lies in one of ``networks``."""
    if not remote or not networks:
        return False
    try:
        address = ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def _last(header: str | None) -> str | None:
    """The last value of a header a chain of proxies may have appended to: the one the proxy that
    called us set (any before it may come from the client)."""
    if not header:
        return None
    return header.split(",")[-1].strip() or None


def _pascal(name: str) -> str:
    """``status_callback`` → ``StatusCallback``: Twilio's parameter names from Python keywords."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


class TwilioAdapter(Adapter):
    """One Twilio messaging channel; ``prefix`` marks its addresses (``whatsapp:`` or none for SMS)."""

    prefix: ClassVar[str] = ""
    settings_schema = {"account_sid": REQUIRED, "auth_token": REQUIRED, "phone_number": REQUIRED, "public_url": None,
                       "trusted_proxies": None}
    default_api_base = "https://api.twilio.com"
    max_body_size = MAX_BODY_SIZE

    def __init__(self, name: str, settings: Mapping[str, Any], host: ChannelHost) -> None:
        super().__init__(name, settings, host)
        self.trusted_proxies = trusted_networks(name, self.settings.get("trusted_proxies"))

    @classmethod
    def validate(cls, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        merged = super().validate(name, settings)
        if not str(merged["account_sid"]).startswith("AC"):
            raise ConfigError(f"channels.{name}.account_sid", "must be the Account SID (AC…) shown in the Twilio Console")
        number = str(merged["phone_number"]).removeprefix(cls.prefix)
        if not E164.match(number):
            raise ConfigError(f"channels.{name}.phone_number", f"must be an E.164 number like +15551234567, not {merged['phone_number']!r}")
        merged["phone_number"] = number
        public = merged["public_url"]
        parts = urlsplit(public) if isinstance(public, str) else None
        if public is not None and not (parts and parts.scheme in ("http", "https") and parts.netloc):
            raise ConfigError(f"channels.{name}.public_url", f"must be the http(s) URL Twilio calls, not {public!r}")
        trusted_networks(name, merged["trusted_proxies"])
        return merged

    # -- the webhook -------------------------------------------------------------------------------

    def signed_url(self, request: Request) -> str:
        """The URL Twilio signed: ``public_url`` (an origin alone gets the request's path appended, and the
        request's query string is kept); else the request's own URL, as X-Forwarded-Proto/-Host tell it
        when the request comes from one of ``trusted_proxies`` (from anyone else they are ignored: a
        client could name another app's URL and replay a request Twilio signed for it)."""
        raw_path, _, query = request.raw_path.partition("?")
        public = self.settings["public_url"]
        if public:
            parts = urlsplit(public)
            if parts.path in ("", "/"):
                parts = parts._replace(path=raw_path)
            if not parts.query and query:
                parts = parts._replace(query=query)
            return str(urlunsplit(parts))
        scheme, host = request.scheme, request.host
        if from_networks(request.remote, self.trusted_proxies):
            scheme = _last(request.headers.get("X-Forwarded-Proto")) or scheme
            host = _last(request.headers.get("X-Forwarded-Host")) or host
        return f"{scheme}://{host}{request.raw_path}"

    async def check_headers(self, request: Request) -> None:
        _signature_header(request)

    async def verify(self, request: Request) -> None:
        """One pass over the form, sorted once; one HMAC per URL variant, stopping at the first match."""
        given = _signature_header(request)
        try:
            signed = signed_params(form_params(request.body))
        except RequestRejected:
            raise Unauthorized(f"the body is not a form that {SIGNATURE_HEADER} could sign") from None
        url, token = self.signed_url(request), self.settings["auth_token"]
        if not any(same_secret(given, sign(variant, signed, token)) for variant in url_variants(url)):
            raise Unauthorized(f"wrong {SIGNATURE_HEADER}: the request was changed, auth_token differs, "
                               f"or {url} is not the URL Twilio calls (set public_url, or trusted_proxies)")

    def parse(self, request: Request) -> list[Event]:
        form = dict(form_params(request.body))
        sid = form.get("MessageSid") or form.get("SmsSid") or form.get("SmsMessageSid")
        if not sid or not form.get("From") or not form.get("To"):
            raise BadRequest("not a Twilio messaging webhook: MessageSid, From and To are required")
        if not self.prefix and (form["From"].startswith(WHATSAPP) or form["To"].startswith(WHATSAPP)):
            raise BadRequest("a WhatsApp message reached the sms webhook: point the WhatsApp sender at the whatsapp channel's URL")
        if "Body" not in form and (form.get("MessageStatus") or form.get("SmsStatus")):
            return [self._status_event(form, sid)]
        user = form["From"].removeprefix(WHATSAPP)
        event = Event(self.platform, "unknown", f"{self.platform}:{user}", user_id=user, id=sid, raw=form,
                      meta={"to": user, "message_sid": sid})
        if form.get("ProfileName"):
            event.data["profile_name"] = form["ProfileName"]
        _fill(event, form)
        return [event]

    def _status_event(self, form: dict[str, str], sid: str) -> Event:
        """A status callback of a message the bot sent: its session is the recipient's. The id carries
        the status, so "sent" then "delivered" of one message are two events, not a duplicate."""
        status = form.get("MessageStatus") or form.get("SmsStatus")
        user = form["To"].removeprefix(WHATSAPP)
        event = Event(self.platform, "status", f"{self.platform}:{user}", user_id=user, id=f"{sid}:{status}", raw=form,
                      meta={"to": user})
        event.data.update(status=status, message_sid=sid, error_code=form.get("ErrorCode"))
        return event

    def respond(self, events: list[Event], request: Request, inband: list[Any], outcomes: list[Outcome]) -> Reply:
        return Reply.text(EMPTY_TWIML, content_type="text/xml")

    # -- sending -------------------------------------------------------------------------------------

    def sender(self, event: Event, inband: list[Any] | None = None) -> TwilioSender:
        return TwilioSender(self, event.meta["to"], event.meta.get("message_sid"))

    def push_sender(self, session_key: str, address: Mapping[str, Any] | None) -> TwilioSender:
        return TwilioSender(self, SessionKey(session_key).ident)

    @property
    def auth(self) -> dict[str, str]:
        """HTTP Basic auth with the Account SID and auth token, as a header."""
        pair = f"{self.settings['account_sid']}:{self.settings['auth_token']}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    def account_url(self, path: str) -> str:
        return f"{self.api_base}/2010-04-01/Accounts/{self.settings['account_sid']}/{path}"

    async def create_message(self, params: list[tuple[str, str]]) -> Any:
        """``POST …/Messages.json``: returns Twilio's Message resource."""
        return await self.http.request("POST", self.account_url("Messages.json"), data=params, headers=self.auth)

    # -- CLI -----------------------------------------------------------------------------------------

    async def command(self, argv: list[str]) -> int:
        parser = argparse.ArgumentParser(prog=f"botkit {self.name}")
        sub = parser.add_subparsers(dest="what", required=True)
        webhook = sub.add_parser("webhook", help=f"set or show where Twilio posts {self.name} messages")
        actions = webhook.add_subparsers(dest="action", required=True)
        actions.add_parser("set", help=f"point {self.settings['phone_number']} at URL").add_argument("url")
        actions.add_parser("info", help="the URL Twilio posts to now")
        args = parser.parse_args(argv)
        result = await (self.set_webhook(args.url) if args.action == "set" else self.webhook_info())
        print(json.dumps(result, indent=2))
        return 0

    async def set_webhook(self, url: str) -> dict[str, Any]:
        raise NotImplementedError

    async def webhook_info(self) -> dict[str, Any]:
        raise NotImplementedError


class TwilioSmsAdapter(TwilioAdapter):
    platform = "sms"

    async def _phone_number(self) -> dict[str, Any]:
        """The IncomingPhoneNumber resource of ``phone_number``."""
        number = self.settings["phone_number"]
        query = urlencode({"PhoneNumber": number})
        found = await self.http.request("GET", self.account_url(f"IncomingPhoneNumbers.json?{query}"), headers=self.auth)
        numbers = (found or {}).get("incoming_phone_numbers") or []
        if not numbers:
            raise ConfigError(f"channels.{self.name}.phone_number",
                              f"{number} is not a phone number of account {self.settings['account_sid']}; "
                              "buy or port it in the Twilio Console")
        return dict(numbers[0])

    async def set_webhook(self, url: str) -> dict[str, Any]:
        number = await self._phone_number()
        params = [("SmsUrl", url), ("SmsMethod", "POST")]
        updated = await self.http.request("POST", self.account_url(f"IncomingPhoneNumbers/{number['sid']}.json"),
                                          data=params, headers=self.auth)
        return _number_summary(updated)

    async def webhook_info(self) -> dict[str, Any]:
        return _number_summary(await self._phone_number())


class TwilioWhatsAppAdapter(TwilioAdapter):
    """WhatsApp through Twilio. Its sender's webhook lives in Twilio's Senders API on another host,
    ``messaging_api_base``, which also serves the typing indicator."""

    platform = "whatsapp"
    prefix = WHATSAPP
    settings_schema = {**TwilioAdapter.settings_schema, "provider": "twilio", "messaging_api_base": "https://messaging.twilio.com"}

    @classmethod
    def validate(cls, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        merged = super().validate(name, settings)
        if merged["provider"] not in (None, "twilio"):
            raise ConfigError(f"channels.{name}.provider", f'must be "twilio" (the default) or "cloud", not {merged["provider"]!r}')
        merged["messaging_api_base"] = str(merged["messaging_api_base"]).rstrip("/")
        return merged

    async def messaging(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self.http.request(method, f"{self.settings['messaging_api_base']}{path}", headers=self.auth, **kwargs)

    async def _sender(self) -> dict[str, Any]:
        """The WhatsApp sender resource of ``phone_number`` (Senders API, v2)."""
        wanted = WHATSAPP + self.settings["phone_number"]
        path: str | None = "/v2/Channels/Senders?Channel=whatsapp&PageSize=100"
        while path:
            page = await self.messaging("GET", path) or {}
            for found in page.get("senders") or []:
                if found.get("sender_id") == wanted:
                    return dict(found)
            next_url = (page.get("meta") or {}).get("next_page_url")
            path = _path_of(next_url) if next_url else None
        raise ConfigError(
            f"channels.{self.name}.phone_number",
            f"{wanted} is not a WhatsApp sender of account {self.settings['account_sid']}; for the Sandbox set "
            "\"When a message comes in\" in Console > Messaging > Try it out > WhatsApp sandbox settings",
        )

    async def set_webhook(self, url: str) -> dict[str, Any]:
        found = await self._sender()
        updated = await self.messaging("POST", f"/v2/Channels/Senders/{found['sid']}",
                                       json={"webhook": {"callback_url": url, "callback_method": "POST"}})
        return _sender_summary(updated or found)

    async def webhook_info(self) -> dict[str, Any]:
        return _sender_summary(await self._sender())


class TwilioSender(Sender):
    """Sends to one phone number through the Messages API; each send returns Twilio's Message resource.
    Buttons, quick replies and cards are the numbered-list fallback (``botkit.core.sending``): WhatsApp
    through Twilio has buttons only as approved Content templates (``send_template``)."""

    def __init__(self, adapter: TwilioAdapter, to: str, reply_to: str | None = None) -> None:
        self.adapter = adapter
        self.to = to
        self.reply_to = reply_to

    async def api(self, method: str, payload: Any = None, *, verb: str = "POST") -> Any:
        """Any resource of the account (``Calls.json``, ``Messages/<sid>.json`` with ``verb="GET"``, …)
        with the account's credentials; ``payload`` is the form (the query of a GET)."""
        url = self.adapter.account_url(method.lstrip("/"))
        if verb.upper() == "GET":
            if payload:
                url += "?" + urlencode(payload)
            return await self.adapter.http.request("GET", url, headers=self.adapter.auth)
        return await self.adapter.http.request(verb.upper(), url, data=payload, headers=self.adapter.auth)

    async def send_text(self, text: str, **options: Any) -> Any:
        """``options`` are Messages API parameters, by their Twilio names or in snake_case
        (``status_callback``, ``content_sid``, ``content_variables``, ``messaging_service_sid``)."""
        return await self._create(text, **options)

    async def send_image(self, url: str, caption: str | None = None, **options: Any) -> Any:
        """An MMS (SMS, in the US and Canada) or a WhatsApp image: Twilio fetches ``url``."""
        return await self._create(caption or "", media_url=url, **options)

    async def send_file(self, url: str, name: str | None = None, **options: Any) -> Any:
        """WhatsApp: a document Twilio fetches from ``url``, ``name`` as its text. SMS: a link (MMS carries
        images, not documents)."""
        if not isinstance(self.adapter, TwilioWhatsAppAdapter):
            return await super().send_file(url, name, **options)
        return await self._create(name or "", media_url=url, **options)

    async def send_template(self, content_sid: str, variables: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """A Content API template (HX…): WhatsApp's buttons and quick replies, and what WhatsApp allows
        outside the 24-hour customer-service window."""
        if variables is not None:
            options["content_variables"] = json.dumps(dict(variables))
        return await self._create("", content_sid=content_sid, **options)

    async def send_typing(self, **options: Any) -> Any:
        """WhatsApp's typing indicator on the message being answered (it also marks it read). SMS has none,
        and neither has a message the bot starts: then this does nothing. ``options`` take nothing yet."""
        if not isinstance(self.adapter, TwilioWhatsAppAdapter) or not self.reply_to:
            return None
        return await self.adapter.messaging("POST", "/v2/Indicators/Typing.json",
                                            data=[("channel", "whatsapp"), ("messageId", self.reply_to)])

    async def _create(self, body: str, **options: Any) -> Any:
        prefix, settings = self.adapter.prefix, self.adapter.settings
        params = [("To", prefix + self.to), ("From", prefix + settings["phone_number"])]
        if body:
            params.append(("Body", body))
        for name, value in options.items():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                params.append((_pascal(name), str(item)))
        return await self.adapter.create_message(params)


def _signature_header(request: Request) -> str:
    """``X-Twilio-Signature``; Unauthorized when it is missing or could not be a signature (this needs no
    body: it runs before the body is read)."""
    given = credential(request, SIGNATURE_HEADER)
    if given is None:
        raise Unauthorized(f"missing {SIGNATURE_HEADER}")
    if not SIGNATURE_SHAPE.fullmatch(given):
        raise Unauthorized(f"wrong {SIGNATURE_HEADER}: not the base64 of an HMAC-SHA1")
    return given


def _fill(event: Event, form: dict[str, str]) -> None:
    """Type an incoming message: a button reply, a location, media, or text."""
    body = form.get("Body")
    if form.get("ButtonPayload"):
        event.type, event.payload = "payload", form["ButtonPayload"]
        event.data["title"] = form.get("ButtonText")
        return
    if form.get("Latitude") and form.get("Longitude"):
        event.type = "location"
        try:
            event.data.update(latitude=float(form["Latitude"]), longitude=float(form["Longitude"]))
        except ValueError:
            raise BadRequest("Latitude and Longitude must be numbers") from None
        event.data.update(address=form.get("Address"), label=form.get("Label"))
        return
    media = [{"url": form[f"MediaUrl{i}"], "content_type": form.get(f"MediaContentType{i}", "")}
             for i in range(min(_count(form.get("NumMedia")), MAX_MEDIA)) if form.get(f"MediaUrl{i}")]
    if media:
        kind = media[0]["content_type"].split("/")[0]
        event.type = kind if kind in MEDIA_KINDS else "file"
        event.data.update(url=media[0]["url"], content_type=media[0]["content_type"], media=media)
        event.text = body or None
        return
    if body is not None and (body or form.get("MessageType", "text") == "text"):
        event.type, event.text = "text", body
    elif form.get("MessageType"):
        event.data["message_type"] = form["MessageType"]


def _count(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _number_summary(number: Mapping[str, Any]) -> dict[str, Any]:
    return {k: number.get(k) for k in ("sid", "phone_number", "sms_url", "sms_method")}


def _sender_summary(found: Mapping[str, Any]) -> dict[str, Any]:
    return {"sid": found.get("sid"), "sender_id": found.get("sender_id"), "status": found.get("status"),
            "webhook": found.get("webhook")}
