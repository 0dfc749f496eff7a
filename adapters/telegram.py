"""Telegram: Bot API webhooks (https://core.telegram.org/bots/api#update) and sends."""
from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from botkit.adapters.base import REQUIRED, Adapter, Sender, parse_json, require, same_secret
from botkit.adapters.guards import credential, epoch_seconds, refuse_stale
from botkit.core import choices
from botkit.core.errors import Unauthorized
from botkit.core.events import Event
from botkit.core.keys import SessionKey
from botkit.core.messages import Button, Card, shorten
from botkit.core.requests import Reply, Request
from botkit.engine.dispatcher import Outcome
from botkit.http import add_redaction

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TOKEN_IN_PATH = re.compile(r"/bot\d+:[\w-]+")
"""The Bot API puts the bot's token in the URL path: masked in every log line and error."""
add_redaction(TOKEN_IN_PATH, "/bot***")

MEDIA_TYPES = {
    "photo": "image",
    "audio": "audio",
    "voice": "audio",
    "video": "video",
    "video_note": "video",
    "animation": "video",
    "document": "file",
    "sticker": "sticker",
}
NO_CHAT_KEY = "telegram:_"
"""The session of updates that name neither a chat nor a user (a poll's new state)."""
JOINED = {"member", "administrator", "creator"}
MAX_BODY_SIZE = 512 * 1024
"""The Bot API publishes no maximum. The largest update is a 4,096-character message (JSON-escaped) with
its entities, the message it replies to and its quote, an inline keyboard: under 200 KB."""
EDITS = ("edited_message", "edited_channel_post")
MAX_CALLBACK_DATA = 64
"""Bytes of an inline button's ``callback_data`` (https://core.telegram.org/bots/api#inlinekeyboardbutton)."""
MAX_CAPTION = 1024


def telegram_retry_after(status: int, headers: Mapping[str, str], body: Any) -> float | None:
    """Telegram says how long to wait in the body: ``parameters.retry_after``."""
    if isinstance(body, dict):
        seconds = (body.get("parameters") or {}).get("retry_after")
        if isinstance(seconds, (int, float)):
            return float(seconds)
    value = headers.get("Retry-After")
    return float(value) if value and value.isdigit() else None


class TelegramAdapter(Adapter):
    platform = "telegram"
    settings_schema = {"access_token": REQUIRED, "secret_token": REQUIRED, "replay_window": None}
    default_api_base = "https://api.telegram.org"
    max_body_size = MAX_BODY_SIZE

    async def check_headers(self, request: Request) -> None:
        """The secret token is all there is to check, and it is a header: no body is read without it."""
        await self.verify(request)

    async def verify(self, request: Request) -> None:
        if not same_secret(credential(request, SECRET_HEADER), self.settings["secret_token"]):
            raise Unauthorized(f"missing or wrong {SECRET_HEADER}")

    def parse(self, request: Request) -> list[Event]:
        update = require(parse_json(request.body), dict, "the update")
        update_id = require(update.get("update_id"), int, "update_id")
        events = [self._event(update, str(update_id))]
        refuse_stale(events, self.settings["replay_window"], self.clock())
        return events

    def parse_update(self, update: Any) -> list[Event]:
        """One update as ``getUpdates`` hands it over (``botkit start --polling``): no replay window, as
        the Bot API itself, asked with the bot's token, gives it."""
        update = require(update, dict, "the update")
        update_id = require(update.get("update_id"), int, "update_id")
        return [self._event(update, str(update_id))]

    def _event(self, update: dict[str, Any], update_id: str) -> Event:
        if "message" in update or "channel_post" in update:
            message = require(update.get("message") or update.get("channel_post"), dict, "message")
            return self._message_event(message, update, update_id)
        edit = next((field for field in EDITS if field in update), None)
        if edit is not None:
            message = require(update[edit], dict, edit)
            event = self._message_event(message, update, update_id)
            event.timestamp = epoch_seconds(message.get("edit_date")) or event.timestamp
            event.data["original_type"] = event.type
            event.type = "edited"
            return event
        if "callback_query" in update:
            query = require(update["callback_query"], dict, "callback_query")
            sender = require(query.get("from"), dict, "callback_query.from")
            chat = (query.get("message") or {}).get("chat") or sender
            event = self._new(update, update_id, "payload", chat, sender)
            event.payload = query.get("data")
            event.meta["callback_query_id"] = query.get("id")
            return event
        if "my_chat_member" in update:
            change = require(update["my_chat_member"], dict, "my_chat_member")
            status = ((change.get("new_chat_member") or {}).get("status"))
            kind = "follow" if status in JOINED else "unfollow"
            event = self._new(update, update_id, kind, require(change.get("chat"), dict, "chat"), change.get("from"))
            event.timestamp = epoch_seconds(change.get("date"))
            return event
        return self._other(update, update_id)

    def _other(self, update: dict[str, Any], update_id: str) -> Event:
        """An update botkit does not model, typed ``unknown``: in its chat's session; without a chat (an
        inline query, a poll answer) in its user's, ``telegram:<user id>``, the same session as the
        user's private chat with the bot; with neither (a poll's new state) in ``telegram:_``."""
        kind = next((key for key in update if key != "update_id"), None)
        value = update.get(kind) if kind is not None else None
        chat, user = _chat_and_user(value)
        if chat is None and user is None:
            event = Event(self.platform, "unknown", NO_CHAT_KEY, id=update_id, raw=update, meta={"chat_id": None})
        else:
            event = self._new(update, update_id, "unknown", chat or user or {}, user)
        event.data["update_type"] = kind
        if isinstance(value, dict):
            event.timestamp = epoch_seconds(value.get("date"))
        return event

    def _message_event(self, message: dict[str, Any], update: dict[str, Any], update_id: str) -> Event:
        chat = require(message.get("chat"), dict, "message.chat")
        event = self._new(update, update_id, "unknown", chat, message.get("from"))
        event.timestamp = epoch_seconds(message.get("date"))
        event.meta["message_id"] = message.get("message_id")
        if isinstance(message.get("text"), str):
            event.type, event.text = "text", message["text"]
        elif "location" in message:
            location = message["location"] or {}
            event.type = "location"
            event.data.update(latitude=location.get("latitude"), longitude=location.get("longitude"))
        elif message.get("new_chat_members"):
            event.type = "join"
            event.data["members"] = message["new_chat_members"]
        elif message.get("left_chat_member"):
            event.type = "leave"
            event.data["member"] = message["left_chat_member"]
        else:
            for field, kind in MEDIA_TYPES.items():
                if field in message:
                    media = message[field]
                    if isinstance(media, list):  # a photo comes in several sizes
                        media = _largest(media)
                    event.type = kind
                    event.data.update(file_id=media.get("file_id") if isinstance(media, dict) else None, media=field)
                    if message.get("caption"):
                        event.text = message["caption"]
                    break
        return event

    def _new(self, update: dict[str, Any], update_id: str, kind: str, chat: dict[str, Any], user: Any) -> Event:
        chat_id = require(chat.get("id"), int, "chat.id")
        user_id = user.get("id") if isinstance(user, dict) else None
        return Event(
            platform=self.platform,
            type=kind,
            session_key=f"telegram:{chat_id}",
            user_id=str(user_id) if user_id is not None else None,
            id=update_id,
            raw=update,
            meta={"chat_id": chat_id},
        )

    def respond(self, events: list[Event], request: Request, inband: list[Any], outcomes: list[Outcome]) -> Reply:
        """Answer a button press in the webhook reply itself, so the client stops its spinner for free."""
        query_id = events[0].meta.get("callback_query_id") if events else None
        if query_id:
            return Reply.json({"method": "answerCallbackQuery", "callback_query_id": query_id})
        return Reply()

    def sender(self, event: Event, inband: list[Any] | None = None) -> TelegramSender:
        return TelegramSender(self, event.meta["chat_id"])

    def push_sender(self, session_key: str, address: Mapping[str, Any] | None) -> TelegramSender:
        return TelegramSender(self, int(SessionKey(session_key).ident))

    async def call(self, method: str, payload: dict[str, Any]) -> Any:
        """One Bot API call: ``POST {api_base}/bot<token>/<method>``; returns ``result``."""
        url = f"{self.api_base}/bot{self.settings['access_token']}/{method}"
        answer = await self.http.request("POST", url, json=payload, retry_after=telegram_retry_after)
        return answer.get("result") if isinstance(answer, dict) else answer

    async def command(self, argv: list[str]) -> int:
        parser = argparse.ArgumentParser(prog=f"botkit {self.name}")
        sub = parser.add_subparsers(dest="what", required=True)
        webhook = sub.add_parser("webhook", help="set, show or delete the bot's webhook").add_subparsers(dest="action", required=True)
        setter = webhook.add_parser("set", help="point Telegram at URL, with the configured secret_token")
        setter.add_argument("url")
        setter.add_argument("--drop-pending", action="store_true", help="drop updates waiting for delivery")
        webhook.add_parser("info", help="what Telegram knows of the webhook")
        webhook.add_parser("delete", help="stop webhook delivery")
        args = parser.parse_args(argv)
        if args.action == "set":
            payload = {"url": args.url, "secret_token": self.settings["secret_token"], "drop_pending_updates": args.drop_pending}
            result = await self.call("setWebhook", payload)
        elif args.action == "info":
            result = await self.call("getWebhookInfo", {})
        else:
            result = await self.call("deleteWebhook", {})
        print(json.dumps(result, indent=2, ensure_ascii=False))  # JSON, as every other command prints
        return 0


class TelegramSender(Sender):
    """Buttons are inline keyboards (a ``callback_data`` over 64 bytes is kept in the session and the
    press mapped back); quick replies a one-time reply keyboard whose titles come back as payloads; a
    card a photo with its caption and keyboard; a carousel one card after another."""

    def __init__(self, adapter: TelegramAdapter, chat_id: int) -> None:
        self.adapter = adapter
        self.chat_id = chat_id

    async def api(self, method: str, payload: Any = None, *, verb: str = "POST") -> Any:
        """Any Bot API method (``getChat``, ``setMyCommands``, ``pinChatMessage`` …) with the bot's token:
        its ``result``. ``payload`` is the method's parameters (always POSTed as JSON, which every method takes)."""
        return await self.adapter.call(method, dict(payload or {}))

    async def send_text(self, text: str, **options: Any) -> Any:
        return await self.adapter.call("sendMessage", {"chat_id": self.chat_id, "text": text, **options})

    async def send_image(self, url: str, caption: str | None = None, **options: Any) -> Any:
        """``url``: a URL or a file_id."""
        return await self._media("sendPhoto", "photo", url, caption, **options)

    send_photo = send_image

    async def send_file(self, url: str, name: str | None = None, **options: Any) -> Any:
        """A document by URL (Telegram fetches it; the Bot API takes no file name with a URL: ``name`` is the caption)."""
        return await self._media("sendDocument", "document", url, name, **options)

    async def send_typing(self, **options: Any) -> Any:
        """``options``: sendChatAction's other parameters (``message_thread_id``, …)."""
        return await self.adapter.call("sendChatAction", {"chat_id": self.chat_id, "action": "typing", **options})

    async def send_buttons(self, text: str, buttons: Sequence[Button], **options: Any) -> Any:
        """An inline keyboard, one button a row."""
        return await self.send_text(text, reply_markup=self._keyboard(buttons), **options)

    async def send_quick_replies(self, text: str, replies: Sequence[Button], **options: Any) -> Any:
        """A one-time reply keyboard: tapping a reply says its title, which comes back as its payload."""
        choices.offer(self.session, replies)
        keyboard = {"keyboard": [[{"text": r.title}] for r in replies], "one_time_keyboard": True, "resize_keyboard": True}
        return await self.send_text(text, reply_markup=keyboard, **options)

    async def send_card(self, card: Card, **options: Any) -> Any:
        buttons = card.button_list
        if buttons:
            options["reply_markup"] = self._keyboard(buttons)
        text = "\n".join(line for line in (card.title, card.subtitle) if line)
        if card.image:
            return await self._media("sendPhoto", "photo", card.image, text, **options)
        return await self.send_text(text, **options)

    async def send_cards(self, cards: Sequence[Card], **options: Any) -> Any:
        return [await self.send_card(card, **options) for card in cards]

    async def send_location(self, latitude: float, longitude: float, name: str | None = None,
                            address: str | None = None, **options: Any) -> Any:
        """A venue when it has a name and an address, else a location pin."""
        payload: dict[str, Any] = {"chat_id": self.chat_id, "latitude": latitude, "longitude": longitude, **options}
        if name and address:
            return await self.adapter.call("sendVenue", {**payload, "title": name, "address": address})
        return await self.adapter.call("sendLocation", payload)

    async def _media(self, method: str, field: str, url: str, caption: str | None, **options: Any) -> Any:
        payload = {"chat_id": self.chat_id, field: url, **options}
        if caption:
            payload["caption"] = shorten(caption, MAX_CAPTION)
        return await self.adapter.call(method, payload)

    def _keyboard(self, buttons: Sequence[Button]) -> dict[str, Any]:
        rows = [[{"text": b.title, "url": b.url} if b.url is not None else
                 {"text": b.title, "callback_data": self.fit_payload(b.payload or "", MAX_CALLBACK_DATA)}] for b in buttons]
        return {"inline_keyboard": rows}


def _chat_and_user(value: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The chat an update's object names and the user who caused it (``from``, or ``user`` in a poll
    answer), each when it has an integer id."""
    if not isinstance(value, dict):
        return None, None
    chat = value.get("chat")
    user = value.get("from") if "from" in value else value.get("user")
    return _with_id(chat), _with_id(user)


def _with_id(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) and isinstance(value.get("id"), int) and not isinstance(value.get("id"), bool) else None


def _largest(sizes: list[Any]) -> dict[str, Any]:
    """The largest of a photo's sizes: the Bot API lists them without promising an order."""
    found = [size for size in sizes if isinstance(size, dict)]
    if not found:
        return {}
    ranked = [(_number(size.get("width")) * _number(size.get("height")), _number(size.get("file_size")), n)
              for n, size in enumerate(found)]
    return found[max(ranked)[2]]  # on a full tie, the last: the order the Bot API uses in practice


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
