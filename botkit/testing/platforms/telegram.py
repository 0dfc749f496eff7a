"""Telegram as the kit plays it: Bot API updates with the secret-token header; ``sendMessage`` and the
other sends answered as the Bot API answers them (https://core.telegram.org/bots/api)."""
from __future__ import annotations

import re
from typing import Any

import orjson

from botkit.testing.http import HttpCall
from botkit.testing.messages import Button, Message
from botkit.testing.platforms.base import Identity, Inbound, Platform

TOKEN = "123456789:TEST-telegram-bot-token"
SECRET = "test-telegram-secret-token"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "Bot", "username": "test_bot"}
METHOD = re.compile(r"/bot(?P<token>[^/]+)/(?P<method>\w+)$")
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
MAX_CAPTION = 1024
MEDIA = {"sendPhoto": ("image", "photo"), "sendDocument": ("file", "document"), "sendAudio": ("audio", "audio"),
         "sendVoice": ("audio", "voice"), "sendVideo": ("video", "video"), "sendAnimation": ("video", "animation"),
         "sendSticker": ("sticker", "sticker")}


class TelegramPlatform(Platform):
    adapters = ("botkit.adapters.telegram:TelegramAdapter",)
    secrets = ("access_token", "secret_token")

    def test_settings(self) -> dict[str, Any]:
        return {"access_token": TOKEN, "secret_token": SECRET}

    def new_identity(self, name: str, n: int) -> Identity:
        chat_id = 500_000_000 + self.base + n
        return Identity(name, f"telegram:{chat_id}", str(chat_id), {"chat_id": chat_id})

    # -- updates -----------------------------------------------------------------------------------

    def _user(self, user: Identity) -> dict[str, Any]:
        return {"id": user.ids["chat_id"], "is_bot": False, "first_name": user.display_name, "language_code": "en"}

    def _chat(self, user: Identity) -> dict[str, Any]:
        return {"id": user.ids["chat_id"], "first_name": user.display_name, "type": "private"}

    def _update(self, body: dict[str, Any]) -> Inbound:
        update = {"update_id": 10_000 + self.next(), **body}
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
        return Inbound(self.path, headers, orjson.dumps(update))

    def text(self, user: Identity, text: str) -> Inbound:
        message: dict[str, Any] = {"message_id": self.next(), "from": self._user(user), "chat": self._chat(user),
                                   "date": int(self.clock()), "text": text}
        if text.startswith("/"):
            message["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
        return self._update({"message": message})

    def press(self, user: Identity, button: Button, message: Message | None) -> Inbound:
        if button.text is not None:  # a reply keyboard's button says its text
            return self.text(user, button.text)
        shown = message.raw if message is not None and isinstance(message.raw, dict) else {}
        carrier = {"message_id": int(message.id) if message is not None and message.id else self.next(),
                   "from": BOT_USER, "chat": self._chat(user), "date": int(self.clock()),
                   **{key: shown[key] for key in ("text", "caption", "reply_markup") if key in shown}}
        query = {"id": str(4_000_000_000_000 + self.next()), "from": self._user(user), "message": carrier,
                 "chat_instance": str(-(self.base + 1)), "data": button.payload}
        return self._update({"callback_query": query})

    # -- the Bot API -------------------------------------------------------------------------------

    def answer(self, call: HttpCall) -> tuple[int, Any]:
        found = METHOD.search(call.path)
        if found is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if found["token"] != TOKEN:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method, body = found["method"], call.json if isinstance(call.json, dict) else call.data
        if method == "getUpdates":  # nothing waits: the tester posts every update to the webhook
            return 200, {"ok": True, "result": []}
        if not (method.startswith("send") or method.startswith("edit")):
            return 200, {"ok": True, "result": True}
        chat_id = body.get("chat_id")
        if chat_id is None:
            return _bad("chat_id is empty")
        problem = _problem(method, body)
        if problem:
            return _bad(problem)
        if method == "sendChatAction":
            return 200, {"ok": True, "result": True}
        message_id = self.next()
        result = {"message_id": message_id, "from": BOT_USER, "chat": {"id": chat_id, "type": "private"},
                  "date": int(self.clock()), **{k: v for k, v in body.items() if k in ("text", "caption", "reply_markup")}}
        read = self._read(method, body, str(chat_id), str(message_id))
        if read is not None:
            self.deliver(str(chat_id), [read])
        return 200, {"ok": True, "result": result}

    def _read(self, method: str, body: dict[str, Any], to: str, message_id: str) -> Message | None:
        markup = body.get("reply_markup")
        markup = orjson.loads(markup) if isinstance(markup, str) else markup
        buttons, keyboard = _buttons(markup if isinstance(markup, dict) else {})
        if method in ("sendMessage", "editMessageText"):
            kind = "quick_replies" if keyboard else "buttons" if buttons else "text"
            return self.message(kind, to, body, text=body.get("text"), buttons=buttons, id=message_id)
        if method in MEDIA:
            kind, field = MEDIA[method]
            return self.message(kind, to, body, text=body.get("caption"), url=str(body.get(field)), buttons=buttons,
                                id=message_id)
        if method in ("sendLocation", "sendVenue"):
            return self.message("location", to, body, text=f"{body.get('latitude')},{body.get('longitude')}", id=message_id)
        if method.startswith("send"):
            return self.message("other", to, body, text=body.get("text") or body.get("caption"), id=message_id)
        return None


def _bad(description: str) -> tuple[int, Any]:
    return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}


def _problem(method: str, body: dict[str, Any]) -> str | None:
    """What the Bot API refuses in a send, as it words it."""
    if method in ("sendMessage", "editMessageText"):
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return "message text is empty"
        if len(text) > MAX_TEXT:
            return "message is too long"
    if method in MEDIA and not body.get(MEDIA[method][1]):
        return f"there is no {MEDIA[method][1]} in the request"
    if method in MEDIA and len(str(body.get("caption") or "")) > MAX_CAPTION:
        return "message caption is too long"
    if method in ("sendLocation", "sendVenue") and not all(isinstance(body.get(f), (int, float)) for f in ("latitude", "longitude")):
        return "latitude and longitude are required"
    if method == "sendVenue" and not (body.get("title") and body.get("address")):
        return "title and address are required"
    markup = body.get("reply_markup")
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    for row in rows or []:
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                return "BUTTON_DATA_INVALID"
    return None


def _buttons(markup: dict[str, Any]) -> tuple[tuple[Button, ...], bool]:
    """The buttons of a reply_markup, and whether they form a reply keyboard (each says its text)."""
    if "inline_keyboard" in markup:
        return tuple(Button(b.get("text", ""), payload=b.get("callback_data"), url=b.get("url"))
                     for row in markup["inline_keyboard"] for b in row), False
    if "keyboard" in markup:
        keys = [b if isinstance(b, dict) else {"text": b} for row in markup["keyboard"] for b in row]
        return tuple(Button(k.get("text", ""), text=k.get("text", "")) for k in keys), True
    return (), False
