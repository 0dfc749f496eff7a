"""WhatsApp through Meta's Cloud API: the ``whatsapp`` channel with ``"provider": "cloud"``.

Webhooks: ``entry[].changes[].value`` with ``messages[]`` (what users send), ``statuses[]`` (what became of
the bot's messages) and ``contacts[]`` (profile names); see
https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages.
Sends: ``POST {api_base}/<phone_number_id>/messages`` with ``Authorization: Bearer <access_token>``.
Sessions are ``whatsapp:+<digits>``, the same key the Twilio WhatsApp channel gives the same person.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from botkit.adapters.base import REQUIRED, Sender, require
from botkit.adapters.guards import entry_seconds, epoch_seconds
from botkit.adapters.meta import GraphClient, MetaAdapter, plain_id, public_url_problem, show, webhook_parser
from botkit.core.errors import BadRequest, BotkitError, ConfigError
from botkit.core.events import Event
from botkit.core.keys import SessionKey
from botkit.core.messages import Button, Card, numbered, shorten
from botkit.core.requests import Request

NO_USER_KEY = "whatsapp:_"
"""The session of changes that name no user (account and template updates)."""
MEDIA_TYPES = {"image": "image", "audio": "audio", "video": "video", "document": "file", "sticker": "sticker"}
MEDIA_FIELDS = ("id", "mime_type", "sha256", "filename", "voice", "animated")
MAX_BUTTONS = 3
MAX_TITLE = 20
MAX_BUTTON_ID = 256
MAX_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_ID = 200
MAX_INTERACTIVE_TEXT = 1024
MAX_CAPTION = 1024
"""https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-reply-buttons-messages and
…/interactive-list-messages: 3 reply buttons (title 20 characters, id 256), a list of 10 rows (title 24
characters, id 200), a body of 1,024 characters."""
REPLAY_WINDOW = 8 * 24 * 3600
"""The Cloud API retries a failed delivery for up to 7 days; a day of margin."""


def user_address(wa_id: str) -> str:
    """``+<digits>`` for a WhatsApp id (the Cloud API sends ``wa_id`` without ``+``); a business-scoped
    user id (``US.1349…``, sent for users who hide their number behind a username) is kept as it is."""
    digits = wa_id.strip().lstrip("+")
    return f"+{digits}" if re.fullmatch(r"\d+", digits) else wa_id.strip()


class WhatsAppCloudAdapter(MetaAdapter):
    platform = "whatsapp"
    object_type = "whatsapp_business_account"
    settings_schema = {
        "provider": "cloud",
        "access_token": REQUIRED,
        "app_secret": REQUIRED,
        "verify_token": REQUIRED,
        "phone_number_id": REQUIRED,
        "waba_id": None,
        "replay_window": REPLAY_WINDOW,
    }

    def __init__(self, name: str, settings: Mapping[str, Any], bot: Any) -> None:
        super().__init__(name, settings, bot)
        self.phone_number_id: str = self.settings["phone_number_id"]
        self.graph = GraphClient(self, str(self.settings["access_token"]), bearer=True)

    @classmethod
    def validate(cls, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        merged = super().validate(name, settings)
        if merged["provider"] != "cloud":
            raise ConfigError(f"channels.{name}.provider", 'this adapter serves "provider": "cloud" only')
        phone_number_id = str(merged["phone_number_id"]).strip()
        if phone_number_id.startswith("+"):
            raise ConfigError(f"channels.{name}.phone_number_id",
                              "is the Phone number ID shown under WhatsApp → API Setup, not the phone number")
        merged["phone_number_id"] = plain_id(phone_number_id, f"channels.{name}.phone_number_id")
        if merged["waba_id"] not in (None, ""):
            merged["waba_id"] = plain_id(merged["waba_id"], f"channels.{name}.waba_id")
        return merged

    # -- parsing -----------------------------------------------------------------------------------

    def parse(self, request: Request) -> list[Event]:
        events: list[Event] = []
        for entry in self.entries(request.body):
            entry_time = entry_seconds(entry.get("time"))
            changes = require(entry.get("changes", []), list, "entry[].changes")
            if not changes:
                events.append(Event(self.platform, "unknown", NO_USER_KEY, timestamp=entry_time, raw=entry))
            for change in changes:
                change = require(change, dict, "entry[].changes[]")
                value = require(change.get("value"), dict, "entry[].changes[].value")
                found = self._value_events(value) if change.get("field", "messages") == "messages" else []
                for event in found:
                    if event.timestamp is None:
                        event.timestamp = entry_time
                events.extend(found or [Event(self.platform, "unknown", NO_USER_KEY, timestamp=entry_time, raw=change)])
        return self.fresh(events)

    def _value_events(self, value: dict[str, Any]) -> list[Event]:
        metadata: dict[str, Any] = value["metadata"] if isinstance(value.get("metadata"), dict) else {}
        phone_number_id = str(metadata.get("phone_number_id") or self.phone_number_id)
        contacts: dict[str, dict[str, Any]] = {}
        for contact in require(value.get("contacts", []), list, "value.contacts"):
            contact = require(contact, dict, "value.contacts[]")
            for key in ("wa_id", "user_id"):
                if contact.get(key):
                    contacts[str(contact[key])] = contact
        messages = require(value.get("messages", []), list, "value.messages")
        statuses = require(value.get("statuses", []), list, "value.statuses")
        return [self._message(require(m, dict, "value.messages[]"), contacts, phone_number_id) for m in messages] + [
            self._status(require(s, dict, "value.statuses[]"), phone_number_id) for s in statuses]

    def _message(self, message: dict[str, Any], contacts: dict[str, dict[str, Any]], phone_number_id: str) -> Event:
        sender = message.get("from") or message.get("from_user_id")
        if not isinstance(sender, str) or not sender:
            raise BadRequest("messages[].from is missing or of the wrong type")
        message_id = message.get("id")
        event = self._new(user_address(sender), "unknown", message_id, message, phone_number_id)
        event.meta["message_id"] = message_id
        contact = contacts.get(sender) or contacts.get(str(message.get("from_user_id")))
        if contact:
            event.data["profile_name"] = (contact.get("profile") or {}).get("name")
            event.data["contact"] = contact
        for field in ("context", "errors"):
            if field in message:
                event.data[field] = message[field]
        _type_message(event, message)
        return event

    def _status(self, status: dict[str, Any], phone_number_id: str) -> Event:
        """What became of a message the bot sent (sent, delivered, read, failed), in the recipient's session."""
        recipient = status.get("recipient_id") or status.get("recipient_user_id")
        state, message_id = status.get("status"), status.get("id")
        event = self._new(user_address(str(recipient)) if recipient else None, "status",
                          f"status:{state}:{message_id}", status, phone_number_id)
        event.data.update(status=state, message_id=message_id, recipient_id=recipient)
        for field in ("errors", "conversation", "pricing", "biz_opaque_callback_data"):
            if field in status:
                event.data[field] = status[field]
        return event

    def _new(self, user: str | None, kind: str, event_id: Any, raw: dict[str, Any], phone_number_id: str) -> Event:
        stamp = raw.get("timestamp")
        return Event(
            platform=self.platform,
            type=kind,
            session_key=f"whatsapp:{user}" if user else NO_USER_KEY,
            user_id=user,
            id=str(event_id) if event_id is not None else None,
            timestamp=epoch_seconds(stamp),
            raw=raw,
            meta={"to": user, "phone_number_id": phone_number_id},
            address={"phone_number_id": phone_number_id} if user else None,
        )

    # -- sending -----------------------------------------------------------------------------------

    def sender(self, event: Event, inband: list[Any] | None = None) -> WhatsAppCloudSender:
        phone_number_id = event.meta.get("phone_number_id") or self.phone_number_id
        return WhatsAppCloudSender(self, event.meta.get("to"), phone_number_id, event.meta.get("message_id"))

    def push_sender(self, session_key: str, address: Mapping[str, Any] | None) -> WhatsAppCloudSender:
        user = SessionKey(session_key).ident
        phone_number_id = (address or {}).get("phone_number_id") or self.phone_number_id
        return WhatsAppCloudSender(self, user if user != "_" else None, str(phone_number_id), None)

    async def send(self, phone_number_id: str, body: dict[str, Any]) -> Any:
        """One Messages API call: ``POST {api_base}/<phone_number_id>/messages``."""
        return await self.graph.call("POST", f"{phone_number_id}/messages", json=body)

    # -- CLI ---------------------------------------------------------------------------------------

    async def command(self, argv: list[str]) -> int:
        args = webhook_parser(
            self.name,
            "send the WhatsApp Business Account's webhooks to URL (a WABA override; Meta checks it at once)",
            {"subscribe": "subscribe the app to the WABA's webhooks at the app's callback URL from the dashboard"},
        ).parse_args(argv)
        path = f"{self._waba_id(args.action)}/subscribed_apps"
        if args.action == "set":
            problem = public_url_problem(args.url)
            if problem:
                print(f"botkit: {problem}", file=sys.stderr)
                return 2
            body = {"override_callback_uri": args.url, "verify_token": str(self.settings["verify_token"])}
            show(await self.graph.call("POST", path, json=body))
        elif args.action == "subscribe":
            show(await self.graph.call("POST", path))
        elif args.action == "info":
            show(await self.graph.call("GET", path))
        else:
            show(await self.graph.call("DELETE", path))
        return 0

    def _waba_id(self, action: str) -> str:
        waba_id = self.settings["waba_id"]
        if not waba_id:
            raise ConfigError(
                f"channels.{self.name}.waba_id",
                f"`botkit {self.name} webhook {action}` needs the WhatsApp Business Account ID "
                "(WhatsApp → API Setup in the Meta dashboard)",
            )
        return str(waba_id)


class WhatsAppCloudSender(Sender):
    """Sends to one WhatsApp user from one business number."""

    def __init__(
        self, adapter: WhatsAppCloudAdapter, to: str | None, phone_number_id: str, reply_to: str | None
    ) -> None:
        self.adapter = adapter
        self.to = to
        self.phone_number_id = phone_number_id
        self.reply_to = reply_to

    async def api(self, method: str, payload: Any = None, *, verb: str = "POST") -> Any:
        """Any Graph API path with the channel's token (``<phone_number_id>/whatsapp_business_profile``,
        ``<media id>`` with ``verb="GET"``, …)."""
        return await self.adapter.graph.api(method, payload, verb=verb)

    async def send_message(self, kind: str, content: dict[str, Any], **options: Any) -> Any:
        """Any Messages API message: ``type`` = ``kind`` with its object ``content``; ``options`` (``context``,
        ``biz_opaque_callback_data``, …) go beside them."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **self._recipient(),
                "type": kind, kind: content, **options}
        return await self.adapter.send(self.phone_number_id, body)

    async def send_text(self, text: str, preview_url: bool | None = None, **options: Any) -> Any:
        content: dict[str, Any] = {"body": text}
        if preview_url is not None:
            content["preview_url"] = preview_url
        return await self.send_message("text", content, **options)

    async def send_image(self, url: str, caption: str | None = None, **options: Any) -> Any:
        content = {"link": url}
        if caption:
            content["caption"] = shorten(caption, MAX_CAPTION)
        return await self.send_message("image", content, **options)

    async def send_file(self, url: str, name: str | None = None, **options: Any) -> Any:
        """A document WhatsApp fetches from ``url``, shown with ``name``."""
        content = {"link": url}
        if name:
            content["filename"] = name
        return await self.send_message("document", content, **options)

    async def send_location(self, latitude: float, longitude: float, name: str | None = None,
                            address: str | None = None, **options: Any) -> Any:
        content: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if name:
            content["name"] = name
        if address:
            content["address"] = address
        return await self.send_message("location", content, **options)

    async def send_buttons(self, text: str, buttons: Sequence[Button], *, list_button: str = "Choose",
                           header: dict[str, Any] | None = None, **options: Any) -> Any:
        """Interactive reply buttons (up to 3, titles cut to 20 characters), a list for 4 to 10 (its
        ``list_button`` opens it); a tap sends a ``payload`` event. A single link is a call-to-action URL
        button; links beside reply buttons are written into the text."""
        replies = [b for b in buttons if b.url is None]
        links = [b for b in buttons if b.url is not None]
        action: dict[str, Any]
        if len(links) == 1 and not replies:
            action = {"name": "cta_url", "parameters": {"display_text": shorten(links[0].title, MAX_TITLE), "url": links[0].url}}
            return await self._interactive("cta_url", text, action, header, **options)
        if links:
            text = numbered(text, links).text
        if not replies:
            return await self.send_text(text, **options)
        if len(replies) <= MAX_BUTTONS:
            action = {"buttons": [{"type": "reply", "reply": {"id": self.fit_payload(b.payload or "", MAX_BUTTON_ID),
                                                              "title": shorten(b.title, MAX_TITLE)}} for b in replies]}
            return await self._interactive("button", text, action, header, **options)
        if len(replies) > MAX_ROWS:
            raise ValueError(f"WhatsApp lists hold at most {MAX_ROWS} rows, not {len(replies)}")
        rows = [{"id": self.fit_payload(b.payload or "", MAX_ROW_ID), "title": shorten(b.title, MAX_ROW_TITLE)} for b in replies]
        action = {"button": shorten(list_button, MAX_TITLE), "sections": [{"rows": rows}]}
        return await self._interactive("list", text, action, None, **options)

    async def send_quick_replies(self, text: str, replies: Sequence[Button], **options: Any) -> Any:
        return await self.send_buttons(text, replies, **options)

    async def send_card(self, card: Card, **options: Any) -> Any:
        """Interactive buttons under the card's image; without buttons, the image with its caption."""
        text = "\n".join(line for line in (card.title, card.subtitle) if line)
        buttons = card.button_list
        if not buttons:
            return await (self.send_image(card.image, text, **options) if card.image else self.send_text(text, **options))
        header = {"type": "image", "image": {"link": card.image}} if card.image else None
        return await self.send_buttons(text, buttons, header=header, **options)

    async def send_cards(self, cards: Sequence[Card], **options: Any) -> Any:
        return [await self.send_card(card, **options) for card in cards]

    async def _interactive(self, kind: str, text: str, action: dict[str, Any], header: dict[str, Any] | None,
                           **options: Any) -> Any:
        interactive: dict[str, Any] = {"type": kind, "body": {"text": shorten(text, MAX_INTERACTIVE_TEXT)}, "action": action}
        if header is not None:
            interactive["header"] = header
        return await self.send_message("interactive", interactive, **options)

    async def send_typing(self, **options: Any) -> Any:
        """Mark the message being answered as read and show "typing…" (until the reply, at most 25 s).
        WhatsApp ties the indicator to a received message, so a pushed message has none: nothing is sent.
        ``options`` take nothing yet: the Cloud API has no other parameter for it."""
        if not self.reply_to:
            return None
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": self.reply_to,
                "typing_indicator": {"type": "text"}}
        return await self.adapter.send(self.phone_number_id, body)

    def _recipient(self) -> dict[str, str]:
        if not self.to:
            raise BotkitError("this WhatsApp event names no user to answer")
        return {"to": self.to} if self.to.startswith("+") else {"recipient": self.to}


def _type_message(event: Event, message: dict[str, Any]) -> None:
    kind = message.get("type")
    found = message.get(kind) if isinstance(kind, str) else None
    content: dict[str, Any] = found if isinstance(found, dict) else {}
    if kind == "text":
        event.type, event.text = "text", content.get("body")
    elif kind == "interactive" and content.get("type") in ("button_reply", "list_reply"):
        reply = content.get(content["type"]) or {}
        event.type, event.payload = "payload", reply.get("id")
        event.data.update(title=reply.get("title"), description=reply.get("description"), reply_type=content["type"])
    elif kind == "button":  # a template's quick-reply button
        event.type, event.payload = "payload", content.get("payload")
        event.data["title"] = content.get("text")
    elif kind in MEDIA_TYPES:
        event.type = MEDIA_TYPES[kind]
        event.data.update({("media_id" if f == "id" else f): content[f] for f in MEDIA_FIELDS if f in content})
        if content.get("caption"):
            event.text = content["caption"]
    elif kind == "location":
        event.type = "location"
        event.data.update({f: content.get(f) for f in ("latitude", "longitude", "name", "address", "url")})
    else:
        event.data["message_type"] = kind
