"""LINE as the kit plays it: webhooks signed with ``X-Line-Signature`` (base64 HMAC-SHA256 with the
channel secret), one reply token per event (used once, within a minute), reply and push calls of up to
five messages (https://developers.line.biz/en/reference/messaging-api/)."""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from botkit.testing.http import HttpCall
from botkit.testing.messages import Button, Card, Message
from botkit.testing.platforms.base import Identity, Inbound, Platform

TOKEN = "test-line-channel-access-token"
CHANNEL_SECRET = "test-line-channel-secret"
DESTINATION = "U" + "0" * 31 + "1"
REPLY_TOKEN_LIFE = 60.0
"""Seconds LINE accepts a reply token for ("within one minute")."""
MAX_MESSAGES = 5
MEDIA = {"image": "image", "video": "video", "audio": "audio"}


def line_signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _error(status: int, message: str, details: list[dict[str, str]] | None = None) -> tuple[int, Any]:
    return status, {"message": message, **({"details": details} if details else {})}


class LinePlatform(Platform):
    adapters = ("botkit.adapters.line:LineAdapter",)
    secrets = ("access_token", "channel_secret")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reply_tokens: dict[str, tuple[str, float]] = {}
        """Reply token → (the user's address, when the event was sent); gone once used."""

    def test_settings(self) -> dict[str, Any]:
        return {"access_token": TOKEN, "channel_secret": CHANNEL_SECRET}

    def new_identity(self, name: str, n: int) -> Identity:
        user_id = f"U{self.base + n:032x}"
        return Identity(name, f"line:{user_id}", user_id)

    def _event(self, user: Identity, event: dict[str, Any]) -> Inbound:
        n = self.next()
        token = f"test-reply-token-{self.base}-{n}"
        self.reply_tokens[token] = (user.address, self.clock())
        full = {"mode": "active", "timestamp": int(self.clock() * 1000),
                "source": {"type": "user", "userId": user.address}, "webhookEventId": f"01TEST{self.base:012d}{n:08d}",
                "deliveryContext": {"isRedelivery": False}, "replyToken": token, **event}
        body = orjson.dumps({"destination": DESTINATION, "events": [full]})
        headers = {"Content-Type": "application/json", "X-Line-Signature": line_signature(body, CHANNEL_SECRET)}
        return Inbound(self.path, headers, body)

    def text(self, user: Identity, text: str) -> Inbound:
        message = {"type": "text", "id": str(468_789_577_898_000_000 + self.next()), "quoteToken": f"q{self.next()}",
                   "text": text}
        return self._event(user, {"type": "message", "message": message})

    def press(self, user: Identity, button: Button, message: Message | None) -> Inbound:
        if button.text is not None:  # a message action says its text
            return self.text(user, button.text)
        return self._event(user, {"type": "postback", "postback": {"data": button.payload}})

    # -- the Messaging API -------------------------------------------------------------------------

    def answer(self, call: HttpCall) -> tuple[int, Any]:
        if call.header("Authorization") != f"Bearer {TOKEN}":
            return _error(401, "Authentication failed. Confirm that the access token in the authorization header is valid.")
        body = call.json if isinstance(call.json, dict) else {}
        path = call.path
        if path.endswith("/v2/bot/message/reply"):
            token = body.get("replyToken")
            issued = self.reply_tokens.pop(token, None) if isinstance(token, str) else None
            if issued is None or self.clock() - issued[1] > REPLY_TOKEN_LIFE:
                return _error(400, "Invalid reply token")
            return self._send(issued[0], body)
        if path.endswith("/v2/bot/message/push"):
            to = body.get("to")
            if not isinstance(to, str) or not to:
                return _error(400, "The request body has 1 error(s)", [{"message": "Must not be empty", "property": "to"}])
            return self._send(to, body)
        if path.endswith("/v2/bot/chat/loading/start"):
            return 202, {}
        return 200, {}

    def _send(self, to: str, body: dict[str, Any]) -> tuple[int, Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
            return _error(400, "The request body has 1 error(s)",
                          [{"message": "Size must be between 1 and 5", "property": "messages"}])
        for index, message in enumerate(messages):
            problem = _problem(message)
            if problem:
                return _error(400, "The request body has 1 error(s)", [{"message": problem, "property": f"messages[{index}]"}])
        sent = []
        read = []
        for message in messages:
            message_id = str(500_000_000_000_000_000 + self.next())
            sent.append({"id": message_id, "quoteToken": f"q-out-{message_id}"})
            read.append(self._read(message, to, message_id))
        self.deliver(to, read)
        return 200, {"sentMessages": sent}

    def _read(self, message: dict[str, Any], to: str, message_id: str) -> Message:
        kind = message.get("type")
        quick = tuple(_action(item.get("action") or {}) for item in (message.get("quickReply") or {}).get("items") or [])
        if kind == "text":
            return self.message("quick_replies" if quick else "text", to, message, text=message.get("text"), buttons=quick,
                                id=message_id)
        if kind == "template":
            template = message.get("template") or {}
            shape = template.get("type")
            if shape in ("buttons", "confirm"):
                return self.message("buttons", to, message, text=template.get("text"),
                                    buttons=tuple(_action(a) for a in template.get("actions") or []), id=message_id)
            if shape == "carousel":
                cards = tuple(Card(c.get("title"), c.get("text"), c.get("thumbnailImageUrl"),
                                   tuple(_action(a) for a in c.get("actions") or [])) for c in template.get("columns") or [])
                return self.message("card" if len(cards) == 1 else "cards", to, message, cards=cards, id=message_id)
            return self.message("template", to, message, text=message.get("altText"), id=message_id)
        if kind in MEDIA:
            return self.message(MEDIA[kind], to, message, url=message.get("originalContentUrl"), buttons=quick, id=message_id)
        if kind == "sticker":
            return self.message("sticker", to, message, text=f"{message.get('packageId')}/{message.get('stickerId')}",
                                id=message_id)
        if kind == "location":
            return self.message("location", to, message, text=message.get("title"), id=message_id)
        if kind == "flex":
            return self.message("card", to, message, text=message.get("altText"), id=message_id)
        return self.message("other", to, message, id=message_id)


def _problem(message: Any) -> str | None:
    """What the Messaging API refuses in a message object, as it words it."""
    if not isinstance(message, dict):
        return "Must be an object"
    kind = message.get("type")
    if kind == "text":
        text = message.get("text")
        if not isinstance(text, str) or not text:
            return "Must not be empty"
        if len(text) > 5000:
            return "Length must be between 0 and 5000"
    if kind == "template":
        if not message.get("altText"):
            return "altText: Must not be empty"
        template = message.get("template") or {}
        actions = template.get("actions") or []
        if template.get("type") == "buttons" and not 1 <= len(actions) <= 4:
            return "template.actions: Size must be between 1 and 4"
        if template.get("type") == "buttons" and len(str(template.get("text", ""))) > (60 if template.get("title") else 160):
            return "template.text: Length must be between 0 and 160 (60 with a title or image)"
        for action in actions:
            if len(str(action.get("label", ""))) > 20:
                return "template.actions[].label: Length must be between 0 and 20"
    if kind == "template" and (message.get("template") or {}).get("type") == "carousel":
        columns = (message.get("template") or {}).get("columns") or []
        if not 1 <= len(columns) <= 10:
            return "template.columns: Size must be between 1 and 10"
        if len({len(c.get("actions") or []) for c in columns}) != 1:
            return "template.columns[].actions: must be the same number in every column"
        for column in columns:
            if not 1 <= len(column.get("actions") or []) <= 3 or not column.get("text"):
                return "template.columns[]: text is required and actions must be between 1 and 3"
    if kind == "location" and not (message.get("title") and message.get("address")
                                   and isinstance(message.get("latitude"), (int, float))
                                   and isinstance(message.get("longitude"), (int, float))):
        return "location: title, address, latitude and longitude are required"
    if kind == "flex" and not (message.get("altText") and isinstance(message.get("contents"), dict)):
        return "flex: altText and contents are required"
    template = message.get("template") or {}
    actions = [*(template.get("actions") or []), *(a for c in template.get("columns") or [] for a in c.get("actions") or []),
               *((i.get("action") or {}) for i in (message.get("quickReply") or {}).get("items") or [])]
    if any(len(str(a.get("data") or "")) > 300 for a in actions if isinstance(a, dict)):
        return "actions[].data: Length must be between 0 and 300"
    for item in (message.get("quickReply") or {}).get("items") or []:
        if len(str((item.get("action") or {}).get("label", ""))) > 20:
            return "quickReply.items[].action.label: Length must be between 0 and 20"
    items = (message.get("quickReply") or {}).get("items") or []
    if len(items) > 13:
        return "quickReply.items: Size must be between 0 and 13"
    return None


def _action(action: dict[str, Any]) -> Button:
    label = str(action.get("label", ""))
    kind = action.get("type")
    if kind == "message":
        return Button(label, text=action.get("text"))
    if kind == "uri":
        return Button(label, url=action.get("uri"))
    return Button(label, payload=action.get("data"))
