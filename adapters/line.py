"""LINE: Messaging API webhooks and sends (https://developers.line.biz/en/reference/messaging-api/).

Replies go out through the reply token first: the sends of one handler run are held and delivered as one
reply call of up to 5 messages when the handler returns (the dispatcher awaits ``Sender.flush``); what does
not fit, and everything once the token is used or stale, goes by push in calls of up to 5.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botkit.adapters.base import REQUIRED, Adapter, Sender, parse_json, require, same_secret
from botkit.adapters.guards import credential, epoch_seconds, refuse_stale
from botkit.core.errors import SendError, Unauthorized
from botkit.core.events import Event
from botkit.core.keys import SessionKey
from botkit.core.messages import Button, ButtonLike, Card, as_button, shorten
from botkit.core.requests import Request

SIGNATURE_HEADER = "X-Line-Signature"
SIGNATURE_SHAPE = re.compile(r"[A-Za-z0-9+/]{43}=")
"""Base64 of the 32 bytes of an HMAC-SHA256."""
MAX_BODY_SIZE = 1024 * 1024
"""LINE publishes no maximum. One event is at most about 25 KB (a 5,000-character text with its mentions
and emojis) and a webhook carries the few events that happened together: 1 MiB is room for forty."""
REPLAY_WINDOW = 24 * 3600
"""LINE does not publish how long webhook redelivery (off unless turned on in the console) keeps trying;
an event's ``timestamp`` stays the time it happened, redelivered or not. A day of room."""
MAX_MESSAGES = 5
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
MAX_POSTBACK_DATA = 300
MAX_TEMPLATE_ACTIONS = 4
MAX_TEMPLATE_TITLE = 40
MAX_TEMPLATE_TEXT = 160
MAX_TEMPLATE_TEXT_SHORT = 60
"""A buttons template's text with a title or an image."""
MAX_COLUMNS = 10
MAX_COLUMN_ACTIONS = 3
MAX_COLUMN_TEXT_SHORT = 60
MAX_BUBBLES = 12
MAX_ALT_TEXT = 400
MAX_LOCATION_TEXT = 100
"""The Messaging API's limits (https://developers.line.biz/en/reference/messaging-api/): quick reply items,
action labels, postback data, template and carousel fields, Flex carousel bubbles, alt text."""
"""Message objects one reply or push call may carry."""
REPLY_WINDOW = 50.0
"""Seconds after the webhook arrived during which the reply token is used. LINE: "Reply tokens must be
used within one minute after receiving the webhook"; the rest of the minute is a margin."""
NO_CHAT_KEY = "line:_"
"""The session of events that come from no chat (e.g. a module channel's activated/deactivated)."""
CHAT_ID_FIELDS = {"user": "userId", "group": "groupId", "room": "roomId"}
MEDIA_TYPES = {"image": "image", "video": "video", "audio": "audio", "file": "file"}


def signature(body: bytes, channel_secret: str) -> str:
    """The ``X-Line-Signature`` LINE sends with ``body``: base64 of HMAC-SHA256 keyed with the secret."""
    return base64.b64encode(hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()).decode()


class LineAdapter(Adapter):
    platform = "line"
    settings_schema = {"access_token": REQUIRED, "channel_secret": REQUIRED, "replay_window": REPLAY_WINDOW}
    default_api_base = "https://api.line.me"
    max_body_size = MAX_BODY_SIZE

    async def check_headers(self, request: Request) -> None:
        _signature_header(request)

    async def verify(self, request: Request) -> None:
        given = _signature_header(request)
        if not same_secret(given, signature(request.body, self.settings["channel_secret"])):
            raise Unauthorized(f"wrong {SIGNATURE_HEADER}: the body was changed or channel_secret differs")

    def parse(self, request: Request) -> list[Event]:
        payload = require(parse_json(request.body), dict, "the webhook body")
        raws = require(payload.get("events"), list, "events")
        received_at = self.clock()
        events = [self._event(require(raw, dict, "events[]"), received_at) for raw in raws]
        refuse_stale(events, self.settings["replay_window"], received_at)
        return events

    def _event(self, raw: dict[str, Any], received_at: float) -> Event:
        kind = require(raw.get("type"), str, "events[].type")
        source = _dict(raw.get("source"))
        chat_type = source.get("type")
        chat_id = source.get(CHAT_ID_FIELDS.get(chat_type, "")) if isinstance(chat_type, str) else None
        if chat_id is not None:
            require(chat_id, str, "events[].source id")
        timestamp = raw.get("timestamp")
        event = Event(
            platform=self.platform,
            type="unknown",
            session_key=f"line:{chat_id}" if chat_id else NO_CHAT_KEY,
            user_id=source.get("userId") if isinstance(source.get("userId"), str) else None,
            id=raw.get("webhookEventId"),
            timestamp=epoch_seconds(timestamp, millis=True),
            raw=raw,
            meta={"reply_token": raw.get("replyToken"), "received_at": received_at, "to": chat_id, "chat_type": chat_type},
            address={"to": chat_id, "chat_type": chat_type} if chat_id else None,
        )
        event.data["redelivery"] = bool((raw.get("deliveryContext") or {}).get("isRedelivery"))
        EVENT_PARSERS.get(kind, _other)(event, raw)
        return event

    def sender(self, event: Event, inband: list[Any] | None = None) -> LineSender:
        meta = event.meta
        return LineSender(self, meta.get("to"), meta.get("chat_type"), meta.get("reply_token"), meta.get("received_at"))

    def push_sender(self, session_key: str, address: Mapping[str, Any] | None) -> LineSender:
        to = SessionKey(session_key).ident
        return LineSender(self, to, (address or {}).get("chat_type") or _chat_type_of(to))

    # -- the API -----------------------------------------------------------------------------------

    async def call(self, method: str, path: str, payload: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        """One Messaging API call with the channel access token."""
        auth = {"Authorization": f"Bearer {self.settings['access_token']}", **(headers or {})}
        return await self.http.request(method, f"{self.api_base}{path}", json=payload, headers=auth)

    async def reply(self, reply_token: str, messages: list[dict[str, Any]]) -> Any:
        return await self.call("POST", "/v2/bot/message/reply", {"replyToken": reply_token, "messages": messages})

    async def push(self, to: str, messages: list[dict[str, Any]]) -> None:
        """Push in calls of up to 5. Each call carries an ``X-Line-Retry-Key`` so that a retry after a
        lost answer is not delivered twice: LINE answers such a retry with 409, which means "sent"."""
        for start in range(0, len(messages), MAX_MESSAGES):
            chunk = messages[start:start + MAX_MESSAGES]
            try:
                await self.call("POST", "/v2/bot/message/push", {"to": to, "messages": chunk},
                                headers={"X-Line-Retry-Key": str(uuid.uuid4())})
            except SendError as exc:
                if exc.status != 409:
                    raise

    async def command(self, argv: list[str]) -> int:
        parser = argparse.ArgumentParser(prog=f"botkit {self.name}")
        sub = parser.add_subparsers(dest="what", required=True)
        webhook = sub.add_parser("webhook", help="set, show or test the channel's webhook URL").add_subparsers(dest="action", required=True)
        webhook.add_parser("set", help="point LINE at URL (then turn on \"Use webhook\" in the console)").add_argument("url")
        webhook.add_parser("info", help="the webhook URL LINE has and whether it is active")
        tester = webhook.add_parser("test", help="have LINE send a test request to the webhook URL")
        tester.add_argument("url", nargs="?", help="a URL to test instead of the one set")
        args = parser.parse_args(argv)
        path = "/v2/bot/channel/webhook/endpoint"
        if args.action == "set":
            result = await self.call("PUT", path, {"endpoint": args.url})
        elif args.action == "info":
            result = await self.call("GET", path)
        else:
            result = await self.call("POST", "/v2/bot/channel/webhook/test", {"endpoint": args.url} if args.url else {})
        print(json.dumps(result, indent=2) if isinstance(result, (dict, list)) else (result or "ok"))
        return 0


class LineSender(Sender):
    """Sends to one LINE chat. With a fresh reply token, messages are held until ``flush`` (the end of
    the handler run) and return None; without one, each send is pushed at once and raises on failure."""

    def __init__(
        self,
        adapter: LineAdapter,
        to: str | None,
        chat_type: str | None,
        reply_token: str | None = None,
        received_at: float | None = None,
    ) -> None:
        self.adapter = adapter
        self.to = to
        self.chat_type = chat_type
        self.reply_token = reply_token
        self.received_at = received_at
        self.pending: list[dict[str, Any]] = []

    async def api(self, method: str, payload: Any = None, *, verb: str = "POST") -> Any:
        """Any Messaging API path with the channel access token (``/v2/bot/profile/<userId>`` with
        ``verb="GET"``, ``/v2/bot/message/markAsRead``, …); ``payload`` is the JSON body."""
        return await self.adapter.call(verb.upper(), "/" + method.lstrip("/"), payload)

    def _token_fresh(self) -> bool:
        if not self.reply_token or self.received_at is None:
            return False
        return self.adapter.clock() - self.received_at < REPLY_WINDOW

    async def send_message(self, message: dict[str, Any]) -> Any:
        """Any LINE message object, as the Messaging API reference spells it."""
        if self._token_fresh():
            self.pending.append(message)
            return None
        await self.flush()  # what is held goes first, so the order is kept
        if not self.to:
            raise SendError("POST", f"{self.adapter.api_base}/v2/bot/message/push", None, None, "this event has no chat to push to")
        await self.adapter.push(self.to, [message])
        return None

    async def flush(self) -> None:
        """Deliver what is held: up to 5 through the reply token, the rest by push. A token LINE calls
        invalid (used, or expired early) sends everything by push instead."""
        messages, self.pending = self.pending, []
        if not messages:
            return
        token, fresh = self.reply_token, self._token_fresh()
        self.reply_token = None
        rest = messages
        if token and fresh:
            try:
                await self.adapter.reply(token, messages[:MAX_MESSAGES])
                rest = messages[MAX_MESSAGES:]
            except SendError as exc:
                if not _invalid_reply_token(exc):
                    raise
        if rest:
            if not self.to:
                raise SendError("POST", f"{self.adapter.api_base}/v2/bot/message/push", None, None, "this event has no chat to push to")
            await self.adapter.push(self.to, rest)

    async def send_text(self, text: str, quick_replies: Sequence[ButtonLike | Mapping[str, Any]] | None = None, **fields: Any) -> Any:
        """``quick_replies``: buttons shown under the message (up to 13). Other keyword arguments are LINE
        message fields (``quoteToken``, ``emojis``, ``sender``, ``quickReply``)."""
        message: dict[str, Any] = {"type": "text", "text": text, **fields}
        if quick_replies:
            items = [q if isinstance(q, Mapping) and "type" in q else as_button(q) for q in quick_replies]
            if len(items) > MAX_QUICK_REPLIES:
                raise ValueError(f"LINE shows at most {MAX_QUICK_REPLIES} quick replies, not {len(items)}")
            message["quickReply"] = {"items": [{"type": "action", "action": self._action(r)} for r in items]}
        return await self.send_message(message)

    async def send_quick_replies(self, text: str, replies: Sequence[Button], **fields: Any) -> Any:
        """Quick reply postback actions: a tap shows its title in the chat and sends a ``payload`` event."""
        return await self.send_text(text, quick_replies=replies, **fields)

    async def send_buttons(self, text: str, buttons: Sequence[Button], *, title: str | None = None,
                           image_url: str | None = None, alt_text: str | None = None, **fields: Any) -> Any:
        """A buttons template (1 to 4 buttons, text up to 160 characters, 60 with a title or image); more
        buttons or a longer text go as a Flex bubble. ``alt_text`` is what notifications show (``text`` by default)."""
        limit = MAX_TEMPLATE_TEXT_SHORT if title or image_url else MAX_TEMPLATE_TEXT
        alt = shorten(alt_text or text, MAX_ALT_TEXT)
        if len(buttons) > MAX_TEMPLATE_ACTIONS or len(text) > limit:
            bubble = _bubble(title, text, image_url, [self._flex_button(b) for b in buttons])
            return await self.send_message({"type": "flex", "altText": alt, "contents": bubble, **fields})
        template: dict[str, Any] = {"type": "buttons", "text": text, "actions": [self._action(b) for b in buttons]}
        if title is not None:
            template["title"] = shorten(title, MAX_TEMPLATE_TITLE)
        if image_url is not None:
            template["thumbnailImageUrl"] = image_url
        return await self.send_message({"type": "template", "altText": alt, "template": template, **fields})

    async def send_image(self, url: str, caption: str | None = None, preview_url: str | None = None, **fields: Any) -> Any:
        """``url`` and ``preview_url`` must be HTTPS; the preview defaults to the image itself. LINE's image
        has no caption: a caption follows as text."""
        sent = await self.send_message(
            {"type": "image", "originalContentUrl": url, "previewImageUrl": preview_url or url, **fields})
        if caption:
            await self.send_text(caption)
        return sent

    async def send_card(self, card: Card, **fields: Any) -> Any:
        return await self.send_cards([card], **fields)

    async def send_cards(self, cards: Sequence[Card], **fields: Any) -> Any:
        """A carousel template when every card has a subtitle and 1 to 3 buttons, as many on each card,
        and all or none an image (the template's rules), and fits its lengths; else a Flex carousel (up to
        12 bubbles a message)."""
        alt = shorten(", ".join(card.title for card in cards), MAX_ALT_TEXT)
        counts = {len(card.button_list) for card in cards}
        fits = (len(counts) == 1 and 1 <= counts.pop() <= MAX_COLUMN_ACTIONS and len(cards) <= MAX_COLUMNS
                and len({bool(c.image) for c in cards}) == 1
                and all(c.subtitle and len(c.subtitle) <= MAX_COLUMN_TEXT_SHORT for c in cards))
        if fits:
            columns = [self._column(card) for card in cards]
            return await self.send_message({"type": "template", "altText": alt,
                                            "template": {"type": "carousel", "columns": columns}, **fields})
        sent = None
        for start in range(0, len(cards), MAX_BUBBLES):
            bubbles = [_bubble(c.title, c.subtitle, c.image, [self._flex_button(b) for b in c.button_list])
                       for c in cards[start:start + MAX_BUBBLES]]
            contents = bubbles[0] if len(bubbles) == 1 else {"type": "carousel", "contents": bubbles}
            sent = await self.send_message({"type": "flex", "altText": alt, "contents": contents, **fields})
        return sent

    async def send_location(self, latitude: float, longitude: float, name: str | None = None,
                            address: str | None = None, **fields: Any) -> Any:
        """A location message: its title and address are required (up to 100 characters each)."""
        return await self.send_message({
            "type": "location", "title": shorten(name or "Location", MAX_LOCATION_TEXT),
            "address": shorten(address or f"{latitude}, {longitude}", MAX_LOCATION_TEXT),
            "latitude": latitude, "longitude": longitude, **fields})

    def _column(self, card: Card) -> dict[str, Any]:
        column: dict[str, Any] = {"title": shorten(card.title, MAX_TEMPLATE_TITLE), "text": card.subtitle,
                                  "actions": [self._action(b) for b in card.button_list]}
        if card.image:
            column["thumbnailImageUrl"] = card.image
        return column

    def _action(self, item: Button | Mapping[str, Any]) -> dict[str, Any]:
        """A LINE action; a dict with a ``type`` is a LINE action already and is sent as it is."""
        if not isinstance(item, Button):
            return dict(item)
        label = shorten(item.title, MAX_LABEL)
        if item.url is not None:
            return {"type": "uri", "label": label, "uri": item.url}
        return {"type": "postback", "label": label, "data": self.fit_payload(item.payload or "", MAX_POSTBACK_DATA),
                "displayText": shorten(item.title, MAX_POSTBACK_DATA)}

    def _flex_button(self, item: Button) -> dict[str, Any]:
        return {"type": "button", "style": "link", "height": "sm", "action": self._action(item)}

    async def send_sticker(self, package_id: str | int, sticker_id: str | int, **fields: Any) -> Any:
        return await self.send_message({"type": "sticker", "packageId": str(package_id), "stickerId": str(sticker_id), **fields})

    async def send_typing(self, seconds: int | None = None, **options: Any) -> Any:
        """LINE's loading animation, shown until the next message or ``seconds`` (5 to 60, a multiple of 5).
        LINE shows it in one-on-one chats only; in groups and rooms this does nothing. ``options`` take
        nothing yet: the API has no other parameter."""
        if self.chat_type != "user" or not self.to:
            return None
        payload: dict[str, Any] = {"chatId": self.to}
        if seconds is not None:
            payload["loadingSeconds"] = seconds
        return await self.adapter.call("POST", "/v2/bot/chat/loading/start", payload)


def _signature_header(request: Request) -> str:
    """The ``X-Line-Signature`` header; Unauthorized when it is missing or could not be a signature (this
    needs no body: it runs before the body is read)."""
    given = credential(request, SIGNATURE_HEADER)
    if given is None:
        raise Unauthorized(f"missing {SIGNATURE_HEADER}")
    if not SIGNATURE_SHAPE.fullmatch(given):
        raise Unauthorized(f"wrong {SIGNATURE_HEADER}: not the base64 of an HMAC-SHA256")
    return given


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _invalid_reply_token(exc: SendError) -> bool:
    message = exc.body.get("message") if isinstance(exc.body, dict) else exc.body
    return exc.status == 400 and isinstance(message, str) and "reply token" in message.lower()


def _chat_type_of(chat_id: str) -> str | None:
    """LINE ids start with U (user), C (group chat) or R (multi-person chat)."""
    return {"U": "user", "C": "group", "R": "room"}.get(chat_id[:1])


def _bubble(title: str | None, text: str | None, image: str | None, buttons: list[dict[str, Any]]) -> dict[str, Any]:
    """A Flex bubble: an image on top, the title in bold, the text, the buttons at the foot."""
    body = [{"type": "text", "text": title, "weight": "bold", "size": "lg", "wrap": True}] if title else []
    if text:
        body.append({"type": "text", "text": text, "wrap": True})
    bubble: dict[str, Any] = {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": body}}
    if image:
        bubble["hero"] = {"type": "image", "url": image, "size": "full", "aspectMode": "cover"}
    if buttons:
        bubble["footer"] = {"type": "box", "layout": "vertical", "contents": buttons}
    return bubble


# -- event parsers: each fills in an Event from its LINE webhook event ------------------------------

def _message(event: Event, raw: dict[str, Any]) -> None:
    message = _dict(raw.get("message"))
    kind = message.get("type")
    event.data.update(message_id=message.get("id"), quote_token=message.get("quoteToken"))
    if kind == "text":
        event.type, event.text = "text", message.get("text")
        if message.get("mention"):
            event.data["mention"] = message["mention"]
    elif kind in MEDIA_TYPES:
        event.type = MEDIA_TYPES[kind]
        event.data["content_provider"] = message.get("contentProvider")
        for field, name in (("duration", "duration"), ("fileName", "file_name"), ("fileSize", "file_size")):
            if field in message:
                event.data[name] = message[field]
    elif kind == "location":
        event.type = "location"
        event.data.update({k: message.get(k) for k in ("title", "address", "latitude", "longitude")})
    elif kind == "sticker":
        event.type = "sticker"
        event.data.update(package_id=message.get("packageId"), sticker_id=message.get("stickerId"),
                          keywords=message.get("keywords"), text=message.get("text"))
    else:
        event.data["line_type"] = f"message.{kind}"


def _postback(event: Event, raw: dict[str, Any]) -> None:
    postback = _dict(raw.get("postback"))
    event.type, event.payload = "payload", postback.get("data")
    if postback.get("params"):
        event.data["params"] = postback["params"]


def _typed(kind: str, **fields: Callable[[dict[str, Any]], Any]) -> Callable[[Event, dict[str, Any]], None]:
    def parse(event: Event, raw: dict[str, Any]) -> None:
        event.type = kind
        for name, read in fields.items():
            event.data[name] = read(raw)
    return parse


def _members(group: str) -> Callable[[dict[str, Any]], list[str | None]]:
    def read(raw: dict[str, Any]) -> list[str | None]:
        members = (raw.get(group) or {}).get("members") or []
        return [m.get("userId") for m in members if isinstance(m, dict)]
    return read


def _other(event: Event, raw: dict[str, Any]) -> None:
    event.data["line_type"] = raw.get("type")


EVENT_PARSERS: dict[str, Callable[[Event, dict[str, Any]], None]] = {
    "message": _message,
    "postback": _postback,
    "follow": _typed("follow", unblocked=lambda raw: bool((raw.get("follow") or {}).get("isUnblocked"))),
    "unfollow": _typed("unfollow"),
    "join": _typed("join", bot=lambda raw: True),
    "leave": _typed("leave", bot=lambda raw: True),
    "memberJoined": _typed("join", bot=lambda raw: False, members=_members("joined")),
    "memberLeft": _typed("leave", bot=lambda raw: False, members=_members("left")),
    "beacon": _typed("beacon", hwid=lambda raw: (raw.get("beacon") or {}).get("hwid"),
                     beacon_type=lambda raw: (raw.get("beacon") or {}).get("type"),
                     dm=lambda raw: (raw.get("beacon") or {}).get("dm")),
    "accountLink": _typed("account_link", result=lambda raw: (raw.get("link") or {}).get("result"),
                          nonce=lambda raw: (raw.get("link") or {}).get("nonce")),
    "things": _typed("things", things=lambda raw: raw.get("things")),
    "unsend": _typed("unsend", message_id=lambda raw: (raw.get("unsend") or {}).get("messageId")),
    "videoPlayComplete": _typed("video_play_complete",
                                tracking_id=lambda raw: (raw.get("videoPlayComplete") or {}).get("trackingId")),
}
