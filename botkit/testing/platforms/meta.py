"""Meta's two chat platforms as the kit plays them: Messenger and the WhatsApp Cloud API. Webhooks carry
``X-Hub-Signature-256`` (HMAC-SHA256 of the body with the app secret); sends go to the Graph API."""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import orjson

from botkit.testing.http import HttpCall
from botkit.testing.messages import Button, Card, Message
from botkit.testing.platforms.base import Identity, Inbound, Platform

MESSENGER_TOKEN = "EAAtestMessengerPageToken"
WHATSAPP_TOKEN = "EAAtestWhatsAppCloudToken"
APP_SECRET = "test-meta-app-secret"
VERIFY_TOKEN = "test-meta-verify-token"
PAGE_ID = "1029384756000001"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
MEDIA_KINDS = {"image": "image", "audio": "audio", "video": "video", "file": "file", "document": "file",
               "sticker": "sticker"}


def hub_signature(body: bytes, secret: str) -> str:
    """``X-Hub-Signature-256`` as Meta computes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def graph_error(message: str, code: int = 100, status: int = 400) -> tuple[int, Any]:
    return status, {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Atest"}}


class MetaPlatform(Platform):
    def _signed(self, document: dict[str, Any]) -> Inbound:
        body = orjson.dumps(document)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": hub_signature(body, APP_SECRET)}
        return Inbound(self.path, headers, body)


class MessengerPlatform(MetaPlatform):
    adapters = ("botkit.adapters.messenger:MessengerAdapter",)
    secrets = ("access_token", "app_secret", "verify_token")

    def test_settings(self) -> dict[str, Any]:
        return {"access_token": MESSENGER_TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN}

    def new_identity(self, name: str, n: int) -> Identity:
        psid = str(24_000_000_000_000_000 + self.base + n)
        return Identity(name, f"messenger:{psid}", psid)

    def _messaging(self, user: Identity, item: dict[str, Any]) -> Inbound:
        ms = int(self.clock() * 1000)
        event = {"sender": {"id": user.address}, "recipient": {"id": PAGE_ID}, "timestamp": ms, **item}
        return self._signed({"object": "page", "entry": [{"id": PAGE_ID, "time": ms, "messaging": [event]}]})

    def _mid(self) -> str:
        return f"m_test{self.base}x{self.next()}"

    def text(self, user: Identity, text: str) -> Inbound:
        return self._messaging(user, {"message": {"mid": self._mid(), "text": text}})

    def press(self, user: Identity, button: Button, message: Message | None) -> Inbound:
        if message is not None and message.kind == "quick_replies":
            reply = {"mid": self._mid(), "text": button.title, "quick_reply": {"payload": button.payload}}
            return self._messaging(user, {"message": reply})
        return self._messaging(user, {"postback": {"mid": self._mid(), "title": button.title, "payload": button.payload}})

    def answer(self, call: HttpCall) -> tuple[int, Any]:
        if call.query.get("access_token") != MESSENGER_TOKEN and call.header("Authorization") != f"Bearer {MESSENGER_TOKEN}":
            return graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        if not call.path.endswith("/me/messages"):
            return 200, {"success": True}
        body = call.json if isinstance(call.json, dict) else {}
        psid = str((body.get("recipient") or {}).get("id") or "")
        if not psid:
            return graph_error("(#100) The parameter recipient is required")
        if "sender_action" in body:
            return 200, {"recipient_id": psid}
        message = body.get("message")
        if not isinstance(message, dict):
            return graph_error("(#100) param message must be non-empty.")
        problem = _messenger_problem(message)
        if problem:
            return graph_error(problem)
        mid = self._mid()
        self.deliver(psid, [self._read(message, psid, mid)])
        return 200, {"recipient_id": psid, "message_id": mid}

    def _read(self, message: dict[str, Any], to: str, mid: str) -> Message:
        quick = tuple(Button(q.get("title", ""), payload=q.get("payload")) for q in message.get("quick_replies") or []
                      if q.get("content_type", "text") == "text")
        if "text" in message:
            return self.message("quick_replies" if quick else "text", to, message, text=message["text"], buttons=quick, id=mid)
        attachment = message.get("attachment") or {}
        payload = attachment.get("payload") or {}
        kind = attachment.get("type")
        if kind == "template":
            template = payload.get("template_type")
            if template == "button":
                return self.message("buttons", to, message, text=payload.get("text"),
                                    buttons=tuple(_button(b) for b in payload.get("buttons") or []), id=mid)
            if template == "generic":
                cards = tuple(Card(e.get("title"), e.get("subtitle"), e.get("image_url"),
                                   tuple(_button(b) for b in e.get("buttons") or [])) for e in payload.get("elements") or [])
                return self.message("card" if len(cards) == 1 else "cards", to, message, cards=cards, buttons=quick, id=mid)
            return self.message("template", to, message, id=mid)
        if kind in MEDIA_KINDS:
            return self.message(MEDIA_KINDS[kind], to, message, url=payload.get("url"), buttons=quick, id=mid)
        return self.message("other", to, message, id=mid)


def _messenger_problem(message: dict[str, Any]) -> str | None:
    text = message.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > 2000):
        return "(#100) Length of param message[text] must be less than or equal to 2000"
    quick = message.get("quick_replies") or []
    if len(quick) > 13:
        return "(#100) param message[quick_replies] must have at most 13 elements"
    for reply in quick:
        if reply.get("content_type", "text") == "text" and len(str(reply.get("title", ""))) > 20:
            return "(#100) param message[quick_replies][title] must be at most 20 characters"
    payload = (message.get("attachment") or {}).get("payload") or {}
    buttons = payload.get("buttons")
    if payload.get("template_type") == "button" and not 1 <= len(buttons or []) <= 3:
        return "(#100) param message[attachment][payload][buttons] must have 1 to 3 elements"
    for button in buttons or []:
        if len(str(button.get("title", ""))) > 20:
            return "(#100) param title must be at most 20 characters"
    for item in [*(buttons or []), *quick, *(b for e in payload.get("elements") or [] for b in e.get("buttons") or [])]:
        if len(str(item.get("payload") or "")) > 1000:
            return "(#100) param payload must be at most 1000 characters"
    if payload.get("template_type") == "generic":
        elements = payload.get("elements") or []
        if not 1 <= len(elements) <= 10:
            return "(#100) param message[attachment][payload][elements] must have 1 to 10 elements"
        for element in elements:
            if not element.get("title") or len(str(element["title"])) > 80 or len(str(element.get("subtitle") or "")) > 80:
                return "(#100) param elements[title] is required, and title and subtitle at most 80 characters"
            if len(element.get("buttons") or []) > 3 or any(len(str(b.get("title", ""))) > 20 for b in element.get("buttons") or []):
                return "(#100) param elements[buttons] must have at most 3 elements, titles at most 20 characters"
    return None


def _button(button: dict[str, Any]) -> Button:
    if button.get("type") == "web_url":
        return Button(button.get("title", ""), url=button.get("url"))
    return Button(button.get("title", ""), payload=button.get("payload"))


class WhatsAppCloudPlatform(MetaPlatform):
    adapters = ("botkit.adapters.whatsapp_cloud:WhatsAppCloudAdapter",)
    secrets = ("access_token", "app_secret", "verify_token", "phone_number_id")
    MESSAGES = re.compile(r"/(?P<number>\d+)/messages$")

    def test_settings(self) -> dict[str, Any]:
        return {"provider": "cloud", "access_token": WHATSAPP_TOKEN, "app_secret": APP_SECRET,
                "verify_token": VERIFY_TOKEN, "phone_number_id": PHONE_NUMBER_ID}

    def new_identity(self, name: str, n: int) -> Identity:
        wa_id = str(16_505_000_000 + self.base + n)
        return Identity(name, f"whatsapp:+{wa_id}", f"+{wa_id}", {"wa_id": wa_id})

    def _value(self, user: Identity, message: dict[str, Any]) -> Inbound:
        stamp = str(int(self.clock()))
        message = {"from": user.ids["wa_id"], "id": f"wamid.TEST{self.base}x{self.next()}", "timestamp": stamp, **message}
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
                 "contacts": [{"profile": {"name": user.display_name}, "wa_id": user.ids["wa_id"]}],
                 "messages": [message]}
        entry = {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}
        return self._signed({"object": "whatsapp_business_account", "entry": [entry]})

    def text(self, user: Identity, text: str) -> Inbound:
        return self._value(user, {"type": "text", "text": {"body": text}})

    def press(self, user: Identity, button: Button, message: Message | None) -> Inbound:
        raw = message.raw if message is not None and isinstance(message.raw, dict) else {}
        reply_type = "list_reply" if (raw.get("interactive") or {}).get("type") == "list" else "button_reply"
        context = {"from": DISPLAY_NUMBER, "id": message.id} if message is not None and message.id else None
        interactive = {"type": reply_type, reply_type: {"id": button.payload, "title": button.title}}
        return self._value(user, {"type": "interactive", "interactive": interactive, **({"context": context} if context else {})})

    def answer(self, call: HttpCall) -> tuple[int, Any]:
        if call.header("Authorization") != f"Bearer {WHATSAPP_TOKEN}":
            return graph_error("Invalid OAuth access token - Cannot parse access token", 190, 401)
        found = self.MESSAGES.search(call.path)
        if found is None:
            return 200, {"success": True}
        if found["number"] != PHONE_NUMBER_ID:
            return graph_error(f"Unsupported post request. Object with ID '{found['number']}' does not exist", 100)
        body = call.json if isinstance(call.json, dict) else {}
        if body.get("status") == "read":  # read receipt and typing indicator
            return 200, {"success": True}
        to = body.get("to") or body.get("recipient")
        kind = body.get("type", "text")
        if not to:
            return graph_error("(#100) The parameter to is required.")
        content = body.get(kind)
        if body.get("messaging_product") != "whatsapp" or not isinstance(content, dict):
            return graph_error(f"(#100) Param {kind} is required", 131009)
        problem = _whatsapp_problem(kind, content)
        if problem:
            return graph_error(problem, 131009)
        address = "+" + str(to).lstrip("+") if str(to).lstrip("+").isdigit() else str(to)
        wamid = f"wamid.OUT{self.base}x{self.next()}"
        self.deliver(address, [self._read(kind, content, address, wamid, body)])
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": str(to), "wa_id": str(to).lstrip("+")}],
                     "messages": [{"id": wamid}]}

    def _read(self, kind: str, content: dict[str, Any], to: str, wamid: str, body: dict[str, Any]) -> Message:
        if kind == "text":
            return self.message("text", to, body, text=content.get("body"), id=wamid)
        if kind in MEDIA_KINDS:
            return self.message(MEDIA_KINDS[kind], to, body, text=content.get("caption"),
                                url=content.get("link") or content.get("id"), id=wamid)
        if kind == "interactive":
            text = (content.get("body") or {}).get("text")
            action = content.get("action") or {}
            if content.get("type") == "button":
                buttons = tuple(Button(b["reply"].get("title", ""), payload=b["reply"].get("id"))
                                for b in action.get("buttons") or [] if isinstance(b.get("reply"), dict))
                return self.message("buttons", to, body, text=text, buttons=buttons, id=wamid)
            if content.get("type") == "list":
                rows = tuple(Button(r.get("title", ""), payload=r.get("id"))
                             for section in action.get("sections") or [] for r in section.get("rows") or [])
                return self.message("quick_replies", to, body, text=text, buttons=rows, id=wamid)
            if content.get("type") == "cta_url":
                parameters = action.get("parameters") or {}
                link = Button(parameters.get("display_text", ""), url=parameters.get("url"))
                return self.message("buttons", to, body, text=text, buttons=(link,), id=wamid)
        if kind == "location":
            return self.message("location", to, body, text=f"{content.get('latitude')},{content.get('longitude')}", id=wamid)
        if kind == "template":
            return self.message("template", to, body, text=content.get("name"), id=wamid)
        return self.message("other", to, body, id=wamid)


def _whatsapp_problem(kind: str, content: dict[str, Any]) -> str | None:
    if kind == "text":
        text = content.get("body")
        if not isinstance(text, str) or not text:
            return "(#131009) Parameter value is not valid: text.body is required"
        if len(text) > 4096:
            return "(#131009) Parameter value is not valid: text.body is over 4096 characters"
    if kind == "interactive" and content.get("type") == "button":
        buttons = (content.get("action") or {}).get("buttons") or []
        if not 1 <= len(buttons) <= 3:
            return "(#131009) Parameter value is not valid: buttons must have 1 to 3 elements"
        for button in buttons:
            reply = button.get("reply") or {}
            if not 1 <= len(str(reply.get("title", ""))) <= 20:
                return "(#131009) Parameter value is not valid: a button title is 1 to 20 characters"
            if not 1 <= len(str(reply.get("id", ""))) <= 256:
                return "(#131009) Parameter value is not valid: a button id is 1 to 256 characters"
    if kind == "interactive" and content.get("type") in ("button", "list", "cta_url"):
        if not 1 <= len(str((content.get("body") or {}).get("text", ""))) <= 1024:
            return "(#131009) Parameter value is not valid: body.text is 1 to 1024 characters"
    if kind == "interactive" and content.get("type") == "list":
        action = content.get("action") or {}
        rows = [r for section in action.get("sections") or [] for r in section.get("rows") or []]
        if not 1 <= len(str(action.get("button", ""))) <= 20:
            return "(#131009) Parameter value is not valid: action.button is 1 to 20 characters"
        if not 1 <= len(rows) <= 10:
            return "(#131009) Parameter value is not valid: a list has 1 to 10 rows"
        for row in rows:
            if not 1 <= len(str(row.get("title", ""))) <= 24 or not 1 <= len(str(row.get("id", ""))) <= 200:
                return "(#131009) Parameter value is not valid: a row title is 1 to 24 characters, its id 1 to 200"
    if kind == "interactive" and content.get("type") == "cta_url":
        parameters = (content.get("action") or {}).get("parameters") or {}
        if not parameters.get("url") or not 1 <= len(str(parameters.get("display_text", ""))) <= 20:
            return "(#131009) Parameter value is not valid: cta_url needs a url and a display_text of 1 to 20 characters"
    if kind in ("image", "document") and not (content.get("link") or content.get("id")):
        return f"(#131009) Parameter value is not valid: {kind} needs a link or an id"
    if kind == "location" and not all(isinstance(content.get(f), (int, float)) for f in ("latitude", "longitude")):
        return "(#131009) Parameter value is not valid: location needs latitude and longitude"
    return None
