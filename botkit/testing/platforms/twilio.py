"""SMS and WhatsApp through Twilio as the kit plays them: form posts signed with ``X-Twilio-Signature``
(base64 HMAC-SHA1 of the URL Twilio calls and the sorted parameters, keyed with the auth token); replies
through ``POST /2010-04-01/Accounts/<sid>/Messages.json`` with HTTP Basic auth."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from botkit.testing.http import HttpCall
from botkit.testing.messages import Button, Message
from botkit.testing.platforms.base import Identity, Inbound, Platform, TesterError

ACCOUNT_SID = "AC" + "7e57" * 8
AUTH_TOKEN = "7e57" * 8
SMS_NUMBER = "+15005550006"
"""Twilio's own test number."""
WHATSAPP_NUMBER = "+14155238886"
"""Twilio's WhatsApp Sandbox number."""
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
MAX_BODY = 1600
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def twilio_signature(url: str, params: list[tuple[str, str]], auth_token: str) -> str:
    """Twilio's signature: the URL, then each parameter's name and value, sorted by name (then value)."""
    signed = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def _error(status: int, code: int, message: str) -> tuple[int, Any]:
    return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status}


class TwilioPlatform(Platform):
    adapters = ("botkit.adapters.twilio:TwilioSmsAdapter",)
    secrets = ("account_sid", "auth_token", "phone_number")
    prefix: ClassVar[str] = ""
    number: ClassVar[str] = SMS_NUMBER
    buttons = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[dict[str, Any]] = []
        """Voice calls the bot placed, the newest first (as Twilio lists them)."""

    def test_settings(self) -> dict[str, Any]:
        return {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "phone_number": self.number}

    def new_identity(self, name: str, n: int) -> Identity:
        number = f"+1555{(self.base + n) % 10**7:07d}"
        return Identity(name, f"{self.adapter.platform}:{number}", number)

    def answers(self, url: str) -> bool:
        messaging = str(self.adapter.settings.get("messaging_api_base") or "")
        return super().answers(url) or (bool(messaging) and url.startswith(messaging + "/"))

    def signed_url(self) -> str:
        """The URL Twilio calls (and signs): ``public_url`` when the channel sets one, else the bot's own."""
        public = self.adapter.settings.get("public_url")
        if not public:
            return self.origin + self.path
        parts = urlsplit(str(public))
        if parts.path in ("", "/"):
            parts = parts._replace(path=self.path)
        return str(urlunsplit(parts))

    def _post(self, params: list[tuple[str, str]]) -> Inbound:
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": twilio_signature(self.signed_url(), params, AUTH_TOKEN),
                   "I-Twilio-Idempotency-Token": f"test-{self.base}-{self.next()}"}
        return Inbound(self.path, headers, urlencode(params).encode())

    def _form(self, user: Identity, body: str, **extra: str) -> list[tuple[str, str]]:
        sid = f"SM{self.base:016x}{self.next():016x}"
        form = [("ToCountry", "US"), ("SmsMessageSid", sid), ("NumMedia", "0"), ("SmsSid", sid), ("SmsStatus", "received"),
                ("Body", body), ("To", self.prefix + self.number), ("NumSegments", "1"), ("MessageSid", sid),
                ("AccountSid", ACCOUNT_SID), ("From", self.prefix + user.address), ("ApiVersion", "2010-04-01")]
        return form + list(extra.items())

    def text(self, user: Identity, text: str) -> Inbound:
        return self._post(self._form(user, text))

    def press(self, user: Identity, button: Button, message: Message | None) -> Inbound:
        raise TesterError(f"the {self.name} channel has no buttons: a user answers by text (use send)")

    # -- the Messages API --------------------------------------------------------------------------

    def answer(self, call: HttpCall) -> tuple[int, Any]:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if call.header("Authorization") != expected:
            return _error(401, 20003, "Authenticate")
        if call.path.endswith("/Indicators/Typing.json"):
            return 200, {"success": True}
        if call.path.endswith(f"/Accounts/{ACCOUNT_SID}/Calls.json"):
            return self._call(call)
        if not call.path.endswith(f"/Accounts/{ACCOUNT_SID}/Messages.json"):
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        form = call.data
        to, sender = form.get("To", ""), form.get("From", "")
        if sender != self.prefix + self.number:
            return _error(400, 21606, f"The From phone number {sender} is not a valid, message-capable Twilio phone number "
                                      "for this account.")
        if not to.startswith(self.prefix) or not E164.match(to.removeprefix(self.prefix)):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        body = form.get("Body", "")
        media = [value for name, value in call.form or [] if name == "MediaUrl"]
        if not body and not media and not form.get("ContentSid"):
            return _error(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        sid = f"SM{self.base + 1:016x}{self.next():016x}"
        address = to.removeprefix(self.prefix)
        self.deliver(address, [self._read(form, media, address, sid)])
        return 201, {"sid": sid, "account_sid": ACCOUNT_SID, "to": to, "from": sender, "body": body, "status": "queued",
                     "num_media": str(len(media)), "num_segments": "1", "direction": "outbound-api",
                     "api_version": "2010-04-01", "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"}

    def _call(self, call: HttpCall) -> tuple[int, Any]:
        """The Voice API: ``POST Calls.json`` places a call (``To``, ``From``, and ``Url`` or ``Twiml``);
        ``GET`` lists those placed."""
        if call.method == "GET":
            return 200, {"calls": self.calls, "page": 0, "page_size": 50}
        form = call.data
        for name in ("To", "From"):
            if not E164.match(form.get(name, "").removeprefix("client:")):
                return _error(400, 21201 if name == "To" else 21210, f"The '{name}' number {form.get(name, '')} "
                                                                     "is not a valid phone number.")
        if not form.get("Url") and not form.get("Twiml") and not form.get("ApplicationSid"):
            return _error(400, 21205, "Url parameter is required.")
        sid = f"CA{self.base + 2:016x}{self.next():016x}"
        placed = {"sid": sid, "account_sid": ACCOUNT_SID, "to": form["To"], "from": form["From"], "status": "queued",
                  "direction": "outbound-api", "api_version": "2010-04-01",
                  "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"}
        self.calls.insert(0, placed)
        return 201, placed

    def _read(self, form: dict[str, str], media: list[str], to: str, sid: str) -> Message:
        body = form.get("Body") or None
        if form.get("ContentSid"):
            return self.message("template", to, form, text=form["ContentSid"], id=sid)
        if media:
            kind = "image" if urlsplit(media[0]).path.lower().endswith(IMAGE_SUFFIXES) else "file"
            return self.message(kind, to, form, text=body, url=media[0], id=sid)
        return self.message("text", to, form, text=body, id=sid)


class TwilioWhatsAppPlatform(TwilioPlatform):
    adapters = ("botkit.adapters.twilio:TwilioWhatsAppAdapter",)
    prefix = "whatsapp:"
    number = WHATSAPP_NUMBER
    buttons = True

    def _form(self, user: Identity, body: str, **extra: str) -> list[tuple[str, str]]:
        digits = user.address.lstrip("+")
        return super()._form(user, body, ProfileName=user.display_name, WaId=digits, **extra)

    def press(self, user: Identity, button: Button, message: Message | None) -> Inbound:
        """A quick-reply button of a Content API template, as Twilio posts its tap."""
        extra = {"ButtonText": button.title, "ButtonPayload": button.payload or button.title, "MessageType": "button"}
        if message is not None and message.id:
            extra["OriginalRepliedMessageSid"] = message.id
        return self._post(self._form(user, button.title, **extra))
