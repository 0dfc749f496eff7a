"""Microsoft Teams as the kit plays it: activities signed with an RS256 JWT from a key the fake Bot Framework
publishes (OpenID metadata and JWKS), the bot's own token from the login service by client credentials,
replies posted to the activity's ``serviceUrl``."""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import unquote

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from botkit.adapters.botframework_auth import token_url
from botkit.testing.http import HttpCall
from botkit.testing.messages import Button, Card, Message
from botkit.testing.platforms.base import Identity, Inbound, Platform

APP_ID = "7e57a991-0000-4000-8000-00000000b075"
APP_PASSWORD = "test-teams-app-password"
ISSUER = "https://api.botframework.com"
SERVICE_URL = "https://smba.trafficmanager.net/teams/"
KEY_ID = "botkit-testing-key"
JWKS_URL = "https://login.botframework.com/v1/.well-known/keys"
HERO_CARD = "application/vnd.microsoft.card.hero"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


@cache
def signing_key() -> rsa.RSAPrivateKey:
    """The fake Bot Framework's signing key: made once per process (a 2048-bit key takes a moment)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class TeamsPlatform(Platform):
    adapters = ("botkit.adapters.teams:TeamsAdapter",)
    secrets = ("app_id", "app_password")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.issued: set[str] = set()
        """Bot tokens the login service handed out."""

    def test_settings(self) -> dict[str, Any]:
        return {"app_id": APP_ID, "app_password": APP_PASSWORD}

    def new_identity(self, name: str, n: int) -> Identity:
        serial = f"{self.base + n:012d}"
        conversation = f"a:1test{serial}"
        return Identity(name, f"teams:{conversation}", conversation,
                        {"user_id": f"29:1test{serial}", "aad": str(uuid.UUID(int=self.base * 1000 + n))})

    # -- activities --------------------------------------------------------------------------------

    def _activity(self, user: Identity, fields: dict[str, Any]) -> Inbound:
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        tenant = self.adapter.settings.get("tenant_id") or "7e57e4a1-0000-4000-8000-000000000001"
        conversation = {"id": user.address, "conversationType": "personal", "tenantId": tenant}
        activity = {"type": "message", "id": f"1{self.base:09d}{self.next():06d}", "timestamp": stamp,
                    "localTimestamp": stamp, "channelId": "msteams", "serviceUrl": SERVICE_URL,
                    "from": {"id": user.ids["user_id"], "name": user.display_name, "aadObjectId": user.ids["aad"]},
                    "conversation": conversation, "recipient": {"id": f"28:{APP_ID}", "name": "Bot"},
                    "textFormat": "plain", "locale": "en-US", "channelData": {"tenant": {"id": tenant}}, **fields}
        body = orjson.dumps(activity)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self._channel_token()}"}
        return Inbound(self.path, headers, body)

    def _channel_token(self) -> str:
        """The JWT the Bot Framework channel signs each activity with. Its times are the real clock's: the
        JWT library checks them against it."""
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": APP_ID, "nbf": now - 60, "iat": now - 60, "exp": now + 3600,
                  "serviceurl": SERVICE_URL}
        return jwt.encode(claims, signing_key(), algorithm="RS256", headers={"kid": KEY_ID})

    def text(self, user: Identity, text: str) -> Inbound:
        return self._activity(user, {"text": text})

    def press(self, user: Identity, button: Button, message: Message | None) -> Inbound:
        if button.text is not None:  # imBack: the user says the button's text
            return self.text(user, button.text)
        raw = message.raw if message is not None and isinstance(message.raw, dict) else {}
        reply_to = {"replyToId": raw["id"]} if isinstance(raw.get("id"), str) else {}
        return self._activity(user, {"text": button.payload, "value": {"payload": button.payload}, **reply_to})

    # -- the Bot Framework ---------------------------------------------------------------------------

    def answers(self, url: str) -> bool:
        settings = self.adapter.settings
        return url.startswith(SERVICE_URL) or url in (settings["openid_metadata_url"], JWKS_URL, token_url(settings))

    def answer(self, call: HttpCall) -> tuple[int, Any]:
        settings = self.adapter.settings
        if call.url == settings["openid_metadata_url"]:
            return 200, {"issuer": ISSUER, "authorization_endpoint": "https://invalid.botframework.com",
                         "jwks_uri": JWKS_URL, "id_token_signing_alg_values_supported": ["RS256"],
                         "token_endpoint_auth_methods_supported": ["private_key_jwt"]}
        if call.url == JWKS_URL:
            key = RSAAlgorithm.to_jwk(signing_key().public_key(), as_dict=True)
            return 200, {"keys": [{**key, "kid": KEY_ID, "use": "sig", "endorsements": ["msteams"]}]}
        if call.url == token_url(settings):
            form = call.data
            if form.get("client_id") != APP_ID or form.get("client_secret") != APP_PASSWORD:
                return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}
            token = f"test-bot-token-{self.base}-{self.next()}"
            self.issued.add(token)
            return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        return self._connector(call)

    def _connector(self, call: HttpCall) -> tuple[int, Any]:
        authorization = call.header("Authorization") or ""
        if authorization.removeprefix("Bearer ") not in self.issued:
            return 401, {"message": "Authorization has been denied for this request."}
        parts = call.url[len(SERVICE_URL):].split("?")[0].split("/")
        if len(parts) == 4 and parts[:2] == ["v3", "conversations"] and parts[3] == "members" and call.method == "GET":
            return self._members(unquote(parts[2]))
        if len(parts) < 4 or parts[:2] != ["v3", "conversations"] or parts[3] != "activities":
            return 404, {"error": {"code": "BadSyntax", "message": "unknown connector route"}}
        conversation = unquote(parts[2])
        activity = call.json if isinstance(call.json, dict) else {}
        if (activity.get("conversation") or {}).get("id", conversation) != conversation:
            return 400, {"error": {"code": "BadArgument", "message": "conversation id does not match the route"}}
        activity_id = f"1:{self.base}{self.next():08d}"
        read = self._read(activity, conversation, activity_id)
        if read:
            self.deliver(conversation, read)
        return 201, {"id": activity_id}

    def _members(self, conversation: str) -> tuple[int, Any]:
        """``GET v3/conversations/{id}/members``: the users of a conversation (a personal chat has one)."""
        user = self.addresses.get(conversation)
        if user is None:
            return 404, {"error": {"code": "ConversationNotFound", "message": "Conversation not found."}}
        tenant = self.adapter.settings.get("tenant_id") or "7e57e4a1-0000-4000-8000-000000000001"
        return 200, [{"id": user.ids["user_id"], "name": user.display_name, "aadObjectId": user.ids["aad"],
                      "userRole": "user", "tenantId": tenant}]

    def _read(self, activity: dict[str, Any], to: str, activity_id: str) -> list[Message]:
        if activity.get("type", "message") != "message":
            return []
        text = activity.get("text")
        suggested = tuple(_action(a) for a in (activity.get("suggestedActions") or {}).get("actions") or [])
        found: list[Message] = []
        for attachment in activity.get("attachments") or []:
            found.append(self._attachment(attachment, text, to, activity, activity_id))
            text = None
        if text is not None or not found:
            found.insert(0, self.message("quick_replies" if suggested else "text", to, activity, text=text,
                                         buttons=suggested, id=activity_id))
        return found

    def _attachment(self, attachment: dict[str, Any], text: str | None, to: str, activity: dict[str, Any],
                    activity_id: str) -> Message:
        content_type = str(attachment.get("contentType") or "")
        found = attachment.get("content")
        content: dict[str, Any] = found if isinstance(found, dict) else {}
        if content_type == HERO_CARD:
            buttons = tuple(_action(a) for a in content.get("buttons") or [])
            images = [i.get("url") for i in content.get("images") or [] if isinstance(i, dict)]
            if content.get("title") or content.get("subtitle") or images:
                card = Card(content.get("title"), content.get("subtitle"), images[0] if images else None, buttons)
                return self.message("card", to, activity, text=content.get("text") or text, cards=(card,), id=activity_id)
            return self.message("buttons", to, activity, text=content.get("text") or text, buttons=buttons, id=activity_id)
        if content_type == ADAPTIVE_CARD:
            texts = [block.get("text") for block in content.get("body") or []
                     if isinstance(block, dict) and block.get("type") == "TextBlock"]
            buttons = tuple(_adaptive_action(a) for a in content.get("actions") or [] if isinstance(a, dict))
            card = Card(texts[0] if texts else None, texts[1] if len(texts) > 1 else None, None, buttons)
            return self.message("card", to, activity, text=text, cards=(card,), id=activity_id)
        for prefix, kind in (("image/", "image"), ("audio/", "audio"), ("video/", "video")):
            if content_type.startswith(prefix):
                return self.message(kind, to, activity, text=text, url=attachment.get("contentUrl"), id=activity_id)
        return self.message("file", to, activity, text=text, url=attachment.get("contentUrl"), id=activity_id)


def _action(action: dict[str, Any]) -> Button:
    title = str(action.get("title", ""))
    kind = action.get("type")
    if kind == "openUrl":
        return Button(title, url=action.get("value"))
    if kind == "messageBack":
        value = action.get("value")
        payload = value.get("payload") if isinstance(value, dict) else value
        return Button(title, payload=str(payload) if payload is not None else action.get("text"))
    return Button(title, text=str(action.get("value", title)))  # imBack


def _adaptive_action(action: dict[str, Any]) -> Button:
    title = str(action.get("title", ""))
    if action.get("type") == "Action.OpenUrl":
        return Button(title, url=action.get("url"))
    data = action.get("data")
    payload = data.get("payload") if isinstance(data, dict) else data
    return Button(title, payload=payload if isinstance(payload, str) else orjson.dumps(data).decode())
