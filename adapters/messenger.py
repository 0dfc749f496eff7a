"""Facebook Messenger: Messenger Platform webhooks and the Send API.

Webhook events: https://developers.facebook.com/docs/messenger-platform/webhooks (``entry[].messaging[]``).
Send API: ``POST {api_base}/me/messages?access_token=<page token>``
(https://developers.facebook.com/docs/messenger-platform/reference/send-api).
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from botkit.adapters.base import REQUIRED, Sender, require
from botkit.adapters.guards import entry_seconds, epoch_seconds
from botkit.adapters.meta import GraphClient, MetaAdapter, plain_id, public_url_problem, show, webhook_parser
from botkit.core.errors import BadRequest, BotkitError, ConfigError
from botkit.core.events import Event
from botkit.core.keys import SessionKey
from botkit.core.messages import Button, ButtonLike, Card, as_button, numbered, shorten
from botkit.core.requests import Request
from botkit.core.session import Session

NO_USER_KEY = "messenger:_"
"""The session of events that name no user (page feed changes, plugin opt-ins without a PSID)."""
MEDIA_TYPES = {"image": "image", "audio": "audio", "video": "video", "file": "file"}
WEBHOOK_FIELDS = ("messages", "messaging_postbacks", "message_deliveries", "message_reads",
                  "messaging_optins", "messaging_referrals")
"""What ``webhook set`` subscribes to by default; add ``message_echoes`` with ``--fields`` if you want them."""
MAX_QUICK_REPLIES = 13
MAX_BUTTONS = 3
"""https://developers.facebook.com/docs/messenger-platform/send-messages/templates: a button template's
text up to 640 characters, a button title up to 20, a postback payload up to 1,000; a generic template up to
10 elements, each title and subtitle up to 80 characters."""
MAX_TEMPLATE_TEXT = 640
MAX_TITLE = 20
MAX_PAYLOAD = 1000
MAX_ELEMENTS = 10
MAX_ELEMENT_TEXT = 80
REPLAY_WINDOW = 48 * 3600
"""Meta retries a failed delivery "with decreasing frequency over the next 36 hours"; 12 hours of margin."""


class MessengerAdapter(MetaAdapter):
    platform = "messenger"
    object_type = "page"
    settings_schema = {"access_token": REQUIRED, "app_secret": REQUIRED, "verify_token": REQUIRED, "app_id": None,
                       "replay_window": REPLAY_WINDOW, "handover_app_id": None}

    def __init__(self, name: str, settings: Mapping[str, Any], bot: Any) -> None:
        super().__init__(name, settings, bot)
        self.graph = GraphClient(self, str(self.settings["access_token"]), bearer=False)

    @classmethod
    def validate(cls, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        merged = super().validate(name, settings)
        if merged["app_id"] not in (None, ""):
            merged["app_id"] = plain_id(merged["app_id"], f"channels.{name}.app_id")
        return merged

    # -- parsing -----------------------------------------------------------------------------------

    def parse(self, request: Request) -> list[Event]:
        events: list[Event] = []
        for entry in self.entries(request.body):
            found: list[Event] = []
            messaging = require(entry.get("messaging", []), list, "entry[].messaging")
            standby = require(entry.get("standby", []), list, "entry[].standby")
            if not messaging and not standby:  # e.g. page feed "changes": still delivered, typed unknown
                found.append(Event(self.platform, "unknown", NO_USER_KEY, raw=entry))
            for item in messaging:
                found.append(self._event(require(item, dict, "entry[].messaging[]")))
            for item in standby:  # another app owns the thread (handover protocol): seen, not for answering
                event = self._event(require(item, dict, "entry[].standby[]"))
                event.data["original_type"] = event.type
                event.type = "standby"
                found.append(event)
            entry_time = entry_seconds(entry.get("time"))
            for event in found:
                if event.timestamp is None:
                    event.timestamp = entry_time
            events.extend(found)
        return self.fresh(events)

    def _event(self, item: dict[str, Any]) -> Event:
        psid = _id_of(item, "sender")
        stamp = item.get("timestamp")
        if "message" in item:
            message = require(item["message"], dict, "message")
            if message.get("is_echo"):
                return self._echo(item, message)
            return self._message(item, message, psid)
        if "postback" in item:
            postback = require(item["postback"], dict, "postback")
            event = self._new(item, "payload", psid, postback.get("mid") or f"postback:{stamp}:{psid}")
            event.payload = postback.get("payload")
            event.data.update(title=postback.get("title"), referral=postback.get("referral"))
            return event
        for kind in ("delivery", "read"):
            if kind in item:
                receipt = require(item[kind], dict, kind)
                event = self._new(item, kind, psid, f"{kind}:{receipt.get('watermark')}:{psid}")
                event.data.update(watermark=receipt.get("watermark"), mids=receipt.get("mids") or [])
                return event
        if "referral" in item:
            event = self._new(item, "referral", psid, f"referral:{stamp}:{psid}")
            event.data.update(require(item["referral"], dict, "referral"))
            return event
        if "optin" in item:
            optin = require(item["optin"], dict, "optin")
            user_ref = optin.get("user_ref")
            event = self._new(item, "optin", psid, f"optin:{stamp}:{psid or user_ref}")
            event.data.update(optin)
            if psid is None and user_ref:  # checkbox plugin: no PSID yet, answer through user_ref
                event.meta["recipient"] = event.address = {"user_ref": user_ref}
            return event
        return self._new(item, "unknown", psid, None)

    def _message(self, item: dict[str, Any], message: dict[str, Any], psid: str | None) -> Event:
        event = self._new(item, "unknown", psid, message.get("mid"))
        attachments = [require(a, dict, "message.attachments[]")
                       for a in require(message.get("attachments") or [], list, "message.attachments")]
        if attachments:
            event.data["attachments"] = [{"type": a.get("type"), **(a.get("payload") or {})} for a in attachments]
        if isinstance(message.get("reply_to"), dict):
            event.data["reply_to"] = message["reply_to"].get("mid")
        text = message.get("text")
        if isinstance(message.get("quick_reply"), dict):
            event.type, event.payload = "payload", message["quick_reply"].get("payload")
            event.data["title"] = text
        elif isinstance(text, str):
            event.type, event.text = "text", text
        elif attachments:
            _type_attachments(event, message, attachments)
        return event

    def _echo(self, item: dict[str, Any], message: dict[str, Any]) -> Event:
        """What the page sent (from this app, another app or a person in the inbox), keyed to the user."""
        event = self._new(item, "echo", _id_of(item, "recipient"), message.get("mid"))
        event.data.update(text=message.get("text"), app_id=message.get("app_id"), metadata=message.get("metadata"),
                          attachments=message.get("attachments") or [])
        return event

    def _new(self, item: dict[str, Any], kind: str, psid: str | None, event_id: str | None) -> Event:
        stamp = item.get("timestamp")
        recipient = {"id": psid} if psid else None
        return Event(
            platform=self.platform,
            type=kind,
            session_key=f"messenger:{psid}" if psid else NO_USER_KEY,
            user_id=psid,
            id=event_id,
            timestamp=epoch_seconds(stamp, millis=True),
            raw=item,
            meta={"recipient": recipient},
            address={"recipient": recipient} if recipient else None,
        )

    # -- sending -----------------------------------------------------------------------------------

    def sender(self, event: Event, inband: list[Any] | None = None) -> MessengerSender:
        return MessengerSender(self, event.meta.get("recipient"), "RESPONSE")

    def push_sender(self, session_key: str, address: Mapping[str, Any] | None) -> MessengerSender:
        recipient = (address or {}).get("recipient")
        if not recipient:
            psid = SessionKey(session_key).ident
            recipient = {"id": psid} if psid and psid != "_" else None
        return MessengerSender(self, recipient, "UPDATE")

    async def send(self, body: dict[str, Any]) -> Any:
        """One Send API call: ``POST {api_base}/me/messages`` with the page token."""
        return await self.graph.call("POST", "me/messages", json=body)

    # -- the Handover Protocol (docs/handoff.md) ---------------------------------------------------

    async def hand_off(self, session: Session, reason: str | None) -> None:
        """``context.handoff``: pass thread control to ``handover_app_id`` (the Page Inbox is 263902037430900),
        so that the conversation shows in the page's inbox for its people."""
        target, recipient = self.settings["handover_app_id"], self._recipient(session)
        if target in (None, "") or recipient is None:
            return
        body: dict[str, Any] = {"recipient": recipient, "target_app_id": str(target)}
        if reason:
            body["metadata"] = reason[:1000]
        await self.graph.call("POST", "me/pass_thread_control", json=body)

    async def hand_back(self, session: Session, by: str | None) -> None:
        """Take thread control back from the Page Inbox (this app is the page's primary receiver)."""
        recipient = self._recipient(session)
        if self.settings["handover_app_id"] in (None, "") or recipient is None:
            return
        await self.graph.call("POST", "me/take_thread_control", json={"recipient": recipient, "metadata": f"handback: {by}"})

    def _recipient(self, session: Session) -> dict[str, Any] | None:
        recipient: dict[str, Any] | None = self.push_sender(session.id, session.address).recipient
        return recipient

    # -- CLI ---------------------------------------------------------------------------------------

    async def command(self, argv: list[str]) -> int:
        parser = webhook_parser(
            self.name,
            "point the app's page webhook at URL (needs app_id) and subscribe the page to it",
            {"subscribe": "subscribe the page to the app's webhook (page token only; set the URL in the dashboard)"},
            fields=WEBHOOK_FIELDS,
        )
        args = parser.parse_args(argv)
        if args.action == "set":
            problem = public_url_problem(args.url)
            if problem:
                print(f"botkit: {problem}", file=sys.stderr)
                return 2
            app_id = self._app_id("webhook set")
            show(await self.graph.call("POST", f"{app_id}/subscriptions", token=self._app_token(app_id), data={
                "object": "page", "callback_url": args.url, "fields": args.fields,
                "verify_token": str(self.settings["verify_token"])}))
            show(await self._subscribe_page(args.fields))
        elif args.action == "subscribe":
            show(await self._subscribe_page(args.fields))
        elif args.action == "info":
            info: dict[str, Any] = {"page": await self.graph.call("GET", "me/subscribed_apps")}
            if self.settings["app_id"]:
                app_id = self.settings["app_id"]
                info["app"] = await self.graph.call("GET", f"{app_id}/subscriptions", token=self._app_token(app_id))
            show(info)
        else:
            show(await self.graph.call("DELETE", "me/subscribed_apps"))
        return 0

    async def _subscribe_page(self, fields: str) -> Any:
        return await self.graph.call("POST", "me/subscribed_apps", data={"subscribed_fields": fields})

    def _app_id(self, command: str) -> str:
        app_id = self.settings["app_id"]
        if not app_id:
            raise ConfigError(
                f"channels.{self.name}.app_id",
                f"`botkit {self.name} {command}` needs the app id (App settings → Basic in the Meta dashboard); "
                f"or set the callback URL in the dashboard and run `botkit {self.name} webhook subscribe`",
            )
        return str(app_id)

    def _app_token(self, app_id: str) -> str:
        """An app access token: ``<app id>|<app secret>``, as Meta documents for server-side calls."""
        return f"{app_id}|{self.settings['app_secret']}"


class MessengerSender(Sender):
    """Sends to one Messenger user: ``RESPONSE`` messages in answer to an event, ``UPDATE`` ones pushed."""

    def __init__(self, adapter: MessengerAdapter, recipient: dict[str, Any] | None, messaging_type: str) -> None:
        self.adapter = adapter
        self.recipient = recipient
        self.messaging_type = messaging_type

    async def api(self, method: str, payload: Any = None, *, verb: str = "POST") -> Any:
        """Any Graph API path with the page token (``me/messenger_profile``, ``<PSID>`` with
        ``verb="GET"`` and ``{"fields": "first_name"}``, …)."""
        return await self.adapter.graph.api(method, payload, verb=verb)

    async def send_message(self, message: dict[str, Any], **options: Any) -> Any:
        """Any Send API ``message`` object; ``options`` (``messaging_type``, ``tag``, …) go beside it."""
        body = {"recipient": self._recipient(), "messaging_type": self.messaging_type, "message": message, **options}
        return await self.adapter.send(body)

    async def send_text(self, text: str, quick_replies: Sequence[ButtonLike | Mapping[str, Any]] | None = None,
                        **options: Any) -> Any:
        """``quick_replies``: buttons, or Send API quick reply objects (``{"content_type": "user_email"}``)."""
        message: dict[str, Any] = {"text": text}
        if quick_replies:
            message["quick_replies"] = self._quick_replies(quick_replies)
        return await self.send_message(message, **options)

    async def send_quick_replies(self, text: str, replies: Sequence[Button], **options: Any) -> Any:
        """Up to 13 text quick replies (titles cut to 20 characters); a tap sends a ``payload`` event.
        A link among them is written into the text (quick replies cannot open one)."""
        links = [r for r in replies if r.url is not None]
        if links:
            text = numbered(text, links).text
        return await self.send_text(text, quick_replies=[r for r in replies if r.url is None], **options)

    async def send_buttons(self, text: str, buttons: Sequence[Button], **options: Any) -> Any:
        """A button template (1 to 3 postback or web_url buttons, text up to 640 characters); more than 3
        buttons, all postbacks, go as quick replies."""
        if len(buttons) > MAX_BUTTONS and all(b.url is None for b in buttons):
            return await self.send_quick_replies(text, buttons, **options)
        if not 1 <= len(buttons) <= MAX_BUTTONS:
            raise ValueError(f"Messenger's button template takes 1 to {MAX_BUTTONS} buttons, not {len(buttons)}")
        payload = {"template_type": "button", "text": shorten(text, MAX_TEMPLATE_TEXT), "buttons": self._buttons(buttons)}
        return await self.send_message({"attachment": {"type": "template", "payload": payload}}, **options)

    async def send_image(self, url: str, caption: str | None = None, **options: Any) -> Any:
        """Messenger's image has no caption: a caption goes first as text."""
        if caption:
            await self.send_text(caption)
        return await self._attachment("image", url, **options)

    async def send_file(self, url: str, name: str | None = None, **options: Any) -> Any:
        return await self._attachment("file", url, **options)

    async def send_card(self, card: Card, **options: Any) -> Any:
        return await self.send_cards([card], **options)

    async def send_cards(self, cards: Sequence[Card], **options: Any) -> Any:
        """A generic template: up to 10 elements a message (more go in further messages)."""
        sent = []
        for start in range(0, len(cards), MAX_ELEMENTS):
            elements = [self._element(card) for card in cards[start:start + MAX_ELEMENTS]]
            payload = {"template_type": "generic", "elements": elements}
            sent.append(await self.send_message({"attachment": {"type": "template", "payload": payload}}, **options))
        return sent[0] if len(sent) == 1 else sent

    async def _attachment(self, kind: str, url: str, **options: Any) -> Any:
        return await self.send_message({"attachment": {"type": kind, "payload": {"url": url}}}, **options)

    def _element(self, card: Card) -> dict[str, Any]:
        element: dict[str, Any] = {"title": shorten(card.title, MAX_ELEMENT_TEXT)}
        if card.subtitle:
            element["subtitle"] = shorten(card.subtitle, MAX_ELEMENT_TEXT)
        if card.image:
            element["image_url"] = card.image
        if card.button_list:
            element["buttons"] = self._buttons(card.button_list)
        return element

    def _buttons(self, buttons: Sequence[Button]) -> list[dict[str, Any]]:
        return [{"type": "web_url", "url": b.url, "title": shorten(b.title, MAX_TITLE)} if b.url is not None else
                {"type": "postback", "title": shorten(b.title, MAX_TITLE), "payload": self.fit_payload(b.payload or "", MAX_PAYLOAD)}
                for b in buttons]

    def _quick_replies(self, replies: Sequence[ButtonLike | Mapping[str, Any]]) -> list[dict[str, Any]]:
        if len(replies) > MAX_QUICK_REPLIES:
            raise ValueError(f"Messenger shows at most {MAX_QUICK_REPLIES} quick replies, not {len(replies)}")
        return [self._quick_reply(reply) for reply in replies]

    def _quick_reply(self, reply: ButtonLike | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(reply, Mapping) and "content_type" in reply:
            return dict(reply)
        button = as_button(reply)
        return {"content_type": "text", "title": shorten(button.title, MAX_TITLE),
                "payload": self.fit_payload(button.payload or button.title, MAX_PAYLOAD)}

    async def send_typing(self, on: bool = True, **options: Any) -> Any:
        """``options`` go beside ``sender_action`` (``messaging_type``, …)."""
        body = {"recipient": self._recipient(), "sender_action": "typing_on" if on else "typing_off", **options}
        return await self.adapter.send(body)

    def _recipient(self) -> dict[str, Any]:
        if not self.recipient:
            raise BotkitError("this Messenger event names no user to answer (no sender PSID)")
        return self.recipient


def _type_attachments(event: Event, message: dict[str, Any], attachments: list[dict[str, Any]]) -> None:
    payloads: list[dict[str, Any]] = [_dict(a.get("payload")) for a in attachments]
    sticker_id = message.get("sticker_id") or next((p["sticker_id"] for p in payloads if p.get("sticker_id")), None)
    if sticker_id or any(a.get("type") == "sticker" for a in attachments):
        event.type = "sticker"
        event.data.update(sticker_id=sticker_id, url=next((p["url"] for p in payloads if p.get("url")), None))
        return
    kind, payload = attachments[0].get("type"), payloads[0]
    if kind in MEDIA_TYPES:
        event.type = MEDIA_TYPES[kind]
        event.data["url"] = payload.get("url")
    elif kind == "location":  # older clients' location shares
        coordinates = _dict(payload.get("coordinates"))
        event.type = "location"
        event.data.update(latitude=coordinates.get("lat"), longitude=coordinates.get("long"))
    else:
        event.data["attachment_type"] = kind


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id_of(item: dict[str, Any], field: str) -> str | None:
    part = item.get(field)
    if part is None:
        return None
    value = require(part, dict, field).get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadRequest(f"{field}.id is of the wrong type")
    return str(value)
