"""Microsoft Teams (and other Bot Framework channels): activities in, Bot Connector calls out.

Inbound: ``POST /webhooks/teams`` with one activity
(https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference#activity-object),
authenticated by ``botframework_auth``. Outbound: ``POST {serviceUrl}v3/conversations/{id}/activities/{activityId}``
to reply, ``POST {serviceUrl}v3/conversations/{id}/activities`` to start (proactive), with the bot's token.
The serviceUrl only ever comes from a verified activity (directly, or kept in the session as its address).
"""
from __future__ import annotations

import mimetypes
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from yarl import URL

from botkit.adapters.base import REQUIRED, Adapter, ChannelHost, Sender, parse_json, require
from botkit.adapters.botframework_auth import (
    DEFAULT_OPENID_METADATA_URL,
    BotToken,
    ChannelTokenVerifier,
    SigningKeys,
    token_url,
)
from botkit.adapters.guards import credential, refuse_stale
from botkit.core import choices
from botkit.core.errors import BotkitError, ConfigError, SendError
from botkit.core.events import Event
from botkit.core.messages import Button, Card, numbered
from botkit.core.requests import Reply, Request
from botkit.engine.dispatcher import Outcome

HERO_CARD = "application/vnd.microsoft.card.hero"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
ACCOUNT_FIELDS = ("id", "name", "aadObjectId", "role")
CONVERSATION_FIELDS = ("id", "name", "conversationType", "isGroup", "tenantId")
MAX_BODY_SIZE = 512 * 1024
"""The Bot Connector refuses activities over 256 KiB (a Teams message is at most about 100 KB); twice that."""
REPLAY_WINDOW = 15 * 60
"""The channel retries a failed activity within seconds; each is signed by a token that lives about an
hour. Fifteen minutes of room (for clock skew too: keep the server's clock set by NTP)."""


class TeamsAdapter(Adapter):
    platform = "teams"
    settings_schema = {
        "app_id": REQUIRED,
        "app_password": REQUIRED,
        "tenant_id": None,
        "openid_metadata_url": DEFAULT_OPENID_METADATA_URL,
        "token_url": None,
        "replay_window": REPLAY_WINDOW,
    }
    max_body_size = MAX_BODY_SIZE

    def __init__(self, name: str, settings: Mapping[str, Any], host: ChannelHost) -> None:
        super().__init__(name, settings, host)
        keys = SigningKeys(self.http, self.settings["openid_metadata_url"])
        self.verifier = ChannelTokenVerifier(keys, self.settings["app_id"])
        self.token = BotToken(
            self.http, token_url(self.settings), self.settings["app_id"], self.settings["app_password"], clock=host.clock
        )

    @classmethod
    def validate(cls, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        merged = super().validate(name, settings)
        for key in ("app_id", "app_password", "tenant_id"):
            if merged[key] is not None and not isinstance(merged[key], str):
                raise ConfigError(f"channels.{name}.{key}", "must be a string (as shown in the Azure portal)")
        for key in ("openid_metadata_url", "token_url"):
            url = merged[key]
            if url is not None and (not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https")):
                raise ConfigError(f"channels.{name}.{key}", "must be an http(s) URL; leave it out for the default")
        if merged["api_base"]:
            raise ConfigError(
                f"channels.{name}.api_base",
                "not used by Teams: replies go to the serviceUrl each activity carries; remove the setting",
            )
        return merged

    # -- the webhook -------------------------------------------------------------------------------

    async def check_headers(self, request: Request) -> None:
        """All of the token that needs no body (signature, issuer, audience, expiry), before it is read."""
        await self.verifier.verify(credential(request, "Authorization"))

    async def verify(self, request: Request) -> None:
        """The token first (nothing about the body is revealed to an unauthenticated caller), then
        that the token was issued for this activity's serviceUrl and channel."""
        token = await self.verifier.verify(credential(request, "Authorization"))
        activity = _activity(request.body)
        token.check_activity(activity["serviceUrl"], _str(activity.get("channelId")))

    def parse(self, request: Request) -> list[Event]:
        events = [self._event(_activity(request.body))]
        refuse_stale(events, self.settings["replay_window"], self.clock())
        return events

    def respond(self, events: list[Event], request: Request, inband: list[Any], outcomes: list[Outcome]) -> Reply:
        """An invoke expects a JSON answer; an Adaptive Card ``Action.Execute`` one in the card-action shape."""
        if events and events[0].type == "invoke":
            if events[0].data.get("name") == "adaptiveCard/action":
                return Reply.json({"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": ""})
            return Reply.json({})
        return Reply(body=b"")

    def _event(self, activity: dict[str, Any]) -> Event:
        kind = activity["type"]
        user = _dict(activity.get("from"))
        event = Event(
            platform=self.platform,
            type="unknown",
            session_key=f"teams:{activity['conversation']['id']}",
            user_id=_str(user.get("id")),
            id=_str(activity.get("id")),
            timestamp=_timestamp(activity.get("timestamp")),
            raw=activity,
            data={"activity_type": kind},
            meta={"activity_id": _str(activity.get("id"))},
            address=conversation_reference(activity),
        )
        PARSERS.get(kind, _unmodelled)(event, activity)
        return event

    # -- sending -----------------------------------------------------------------------------------

    def sender(self, event: Event, inband: list[Any] | None = None) -> TeamsSender:
        return TeamsSender(self, event.address, reply_to=event.meta.get("activity_id"))

    def push_sender(self, session_key: str, address: Mapping[str, Any] | None) -> TeamsSender:
        return TeamsSender(self, address, reply_to=None, session_key=session_key)

    async def post_activity(self, address: Mapping[str, Any], activity: dict[str, Any], reply_to: str | None = None) -> Any:
        """POST an activity to the conversation at ``address``; as a reply to ``reply_to`` when given."""
        url = connector_url(address["serviceUrl"], address["conversation"]["id"], reply_to)
        body = {**activity}
        body.setdefault("from", address.get("bot"))
        body.setdefault("recipient", address.get("user"))
        body.setdefault("conversation", address["conversation"])
        if reply_to:
            body.setdefault("replyToId", reply_to)
        token = await self.token.get()
        try:
            return await self.http.request("POST", url, json=_without_none(body), headers={"Authorization": f"Bearer {token}"})
        except SendError as exc:
            if exc.status == 401:
                self.token.invalidate()
            raise

    async def connector(self, verb: str, url: URL, payload: Any = None) -> Any:
        """One connector call with the bot's token (``context.api``)."""
        token = await self.token.get()
        try:
            return await self.http.request(verb, url, json=payload, headers={"Authorization": f"Bearer {token}"})
        except SendError as exc:
            if exc.status == 401:
                self.token.invalidate()
            raise


MAX_SUGGESTED = 3
"""Suggested actions Teams shows (https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/suggested-actions)."""


class TeamsSender(Sender):
    """Sends into one conversation: replies to the activity being handled, or starts a message."""

    def __init__(
        self,
        adapter: TeamsAdapter,
        address: Mapping[str, Any] | None,
        *,
        reply_to: str | None = None,
        session_key: str | None = None,
    ) -> None:
        self.adapter = adapter
        self.address = address
        self.reply_to = reply_to
        self.session_key = session_key

    async def api(self, method: str, payload: Any = None, *, verb: str = "POST") -> Any:
        """Any Bot Framework connector path under the conversation's ``serviceUrl``, with the bot's token:
        ``v3/conversations/{conversation}/members`` (``{conversation}``: this conversation's id) …"""
        if not self.address or not self.address.get("serviceUrl"):
            raise BotkitError(f"cannot call the connector for {self.session_key}: no activity came from it yet")
        conversation = quote(str((self.address.get("conversation") or {}).get("id") or ""), safe="")
        path = method.lstrip("/").replace("{conversation}", conversation)
        url = URL(f"{self.address['serviceUrl'].rstrip('/')}/{path}", encoded=True)
        return await self.adapter.connector(verb.upper(), url, payload)

    async def send_activity(self, activity: dict[str, Any]) -> Any:
        """Any Bot Framework activity (``type`` defaults to ``message``); returns the connector's answer."""
        if not self.address or not self.address.get("serviceUrl") or not self.address.get("conversation"):
            raise BotkitError(
                f"cannot send to {self.session_key}: the bot learns where a Teams conversation lives from an "
                "activity it received there; none is stored for this session"
            )
        return await self.adapter.post_activity(self.address, {"type": "message", **activity}, self.reply_to)

    async def send_text(self, text: str, **options: Any) -> Any:
        """``options`` are activity fields (``textFormat``, ``attachments``, ``entities``, …)."""
        return await self.send_activity({"text": text, **options})

    async def send_typing(self, **options: Any) -> Any:
        """``options`` are activity fields."""
        return await self.send_activity({"type": "typing", **options})

    async def send_image(
        self, url: str, caption: str | None = None, *, content_type: str | None = None, name: str | None = None, **options: Any
    ) -> Any:
        """An image by URL; ``content_type`` is guessed from the URL when not given."""
        attachment = {"contentType": content_type or _image_type(url), "contentUrl": url, "name": name}
        return await self.send_activity({"text": caption, "attachments": [_without_none(attachment)], **options})

    send_photo = send_image

    async def send_file(self, url: str, name: str | None = None, **options: Any) -> Any:
        """A file attachment by URL; its content type is guessed from the URL."""
        guessed, _ = mimetypes.guess_type(urlsplit(url).path)
        attachment = {"contentType": guessed or "application/octet-stream", "contentUrl": url, "name": name}
        return await self.send_activity({"attachments": [_without_none(attachment)], **options})

    async def send_attachment(self, card: dict[str, Any], content_type: str = ADAPTIVE_CARD, text: str | None = None,
                              **options: Any) -> Any:
        """Any card attachment: an Adaptive Card by default. Its ``Action.Submit`` comes back as a payload event."""
        return await self.send_activity({"text": text, "attachments": [{"contentType": content_type, "content": card}], **options})

    async def send_buttons(self, text: str, buttons: Sequence[Button], **options: Any) -> Any:
        """A hero card: postback buttons are messageBack actions (a ``payload`` event), links openUrl."""
        card = {"text": text, "buttons": [_card_action(button) for button in buttons]}
        return await self.send_activity({"attachments": [{"contentType": HERO_CARD, "content": card}], **options})

    async def send_quick_replies(self, text: str, replies: Sequence[Button], **options: Any) -> Any:
        """Suggested actions (imBack: tapping one says its title, which comes back as its payload); links
        are written into the text. Teams shows the first three only: more go as a hero card's buttons."""
        links = [r for r in replies if r.url is not None]
        offered = [r for r in replies if r.url is None]
        if len(offered) > MAX_SUGGESTED:
            return await self.send_buttons(text, replies, **options)
        choices.offer(self.session, offered)
        actions = [{"type": "imBack", "title": r.title, "value": r.title} for r in offered]
        return await self.send_text(numbered(text, links).text if links else text, suggestedActions={"actions": actions}, **options)

    async def send_card(self, card: Card, **options: Any) -> Any:
        """A hero card: title, subtitle, image and buttons."""
        return await self.send_activity({"attachments": [_hero(card)], **options})

    async def send_cards(self, cards: Sequence[Card], **options: Any) -> Any:
        """Hero cards side by side (``attachmentLayout: carousel``)."""
        return await self.send_activity({"attachmentLayout": "carousel", "attachments": [_hero(c) for c in cards], **options})


def connector_url(service_url: str, conversation_id: str, reply_to: str | None = None) -> URL:
    """``{serviceUrl}v3/conversations/{id}/activities[/{reply_to}]``, the ids percent-encoded as
    Microsoft's SDKs send them (a ``/`` or ``?`` in one must not change the path)."""
    url = f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}/activities"
    return URL(f"{url}/{quote(reply_to, safe='')}" if reply_to else url, encoded=True)


# -- parsing activities ------------------------------------------------------------------------------


def conversation_reference(activity: dict[str, Any]) -> dict[str, Any]:
    """What reaching this conversation later takes: Bot Framework's ConversationReference, plus the tenant."""
    conversation = _pick(activity["conversation"], CONVERSATION_FIELDS)
    tenant = conversation.get("tenantId") or _dict(_dict(activity.get("channelData")).get("tenant")).get("id")
    return _without_none({
        "serviceUrl": activity["serviceUrl"],
        "channelId": _str(activity.get("channelId")),
        "conversation": conversation,
        "bot": _pick(_dict(activity.get("recipient")), ACCOUNT_FIELDS) or None,
        "user": _pick(_dict(activity.get("from")), ACCOUNT_FIELDS) or None,
        "tenantId": _str(tenant),
        "activityId": _str(activity.get("id")),
        "locale": _str(activity.get("locale")),
    })


def _message(event: Event, activity: dict[str, Any]) -> None:
    text, mentioned = _text_without_bot_mention(activity)
    event.data["mentioned"] = mentioned
    value = activity.get("value")
    media = [a for a in _list(activity.get("attachments")) if isinstance(a, dict) and _is_media(a)]
    place = next((e for e in _list(activity.get("entities")) if isinstance(e, dict) and e.get("type") == "GeoCoordinates"), None)
    if value is not None:  # an Adaptive Card Action.Submit or a messageBack button
        event.type, event.payload, event.text = "payload", _payload(value), text or None
        event.data["value"] = value
    elif media:
        first = media[0]
        content = _dict(first.get("content"))
        event.type, event.text = _media_type(first), text or None
        event.data.update(
            url=first.get("contentUrl") or content.get("downloadUrl"),
            content_type=first.get("contentType"),
            name=first.get("name"),
            attachments=media,
        )
    elif place is not None:
        event.type = "location"
        event.data.update(latitude=place.get("latitude"), longitude=place.get("longitude"))
    elif text is not None:
        event.type, event.text = "text", text


def _conversation_update(event: Event, activity: dict[str, Any]) -> None:
    bot_id = _dict(activity.get("recipient")).get("id")
    added = [m for m in _list(activity.get("membersAdded")) if isinstance(m, dict)]
    removed = [m for m in _list(activity.get("membersRemoved")) if isinstance(m, dict)]
    event.data["event_type"] = _dict(activity.get("channelData")).get("eventType")
    if added:
        event.type = "follow" if any(m.get("id") == bot_id for m in added) else "join"
        event.data["members"] = added
    elif removed:
        event.type = "unfollow" if any(m.get("id") == bot_id for m in removed) else "leave"
        event.data["members"] = removed


def _reaction(event: Event, activity: dict[str, Any]) -> None:
    event.type = "reaction"
    event.data.update(
        added=[r.get("type") for r in _list(activity.get("reactionsAdded")) if isinstance(r, dict)],
        removed=[r.get("type") for r in _list(activity.get("reactionsRemoved")) if isinstance(r, dict)],
        reply_to_id=activity.get("replyToId"),
    )


def _invoke(event: Event, activity: dict[str, Any]) -> None:
    event.type = "invoke"
    event.data.update(name=activity.get("name"), value=activity.get("value"))


def _typing(event: Event, activity: dict[str, Any]) -> None:
    event.type = "typing"


def _installation(event: Event, activity: dict[str, Any]) -> None:
    event.type = "installation"
    event.data["action"] = activity.get("action")


def _edited(event: Event, activity: dict[str, Any]) -> None:
    event.type = "edited"
    event.text = _text_without_bot_mention(activity)[0]


def _deleted(event: Event, activity: dict[str, Any]) -> None:
    event.type = "deleted"


def _unmodelled(event: Event, activity: dict[str, Any]) -> None:
    """Kept as ``unknown``: ``raw`` holds the activity, ``data["activity_type"]`` its type."""


PARSERS: dict[str, Callable[[Event, dict[str, Any]], None]] = {
    "message": _message,
    "conversationUpdate": _conversation_update,
    "messageReaction": _reaction,
    "invoke": _invoke,
    "typing": _typing,
    "installationUpdate": _installation,
    "messageUpdate": _edited,
    "messageDelete": _deleted,
}


def _activity(body: bytes) -> dict[str, Any]:
    activity: dict[str, Any] = require(parse_json(body), dict, "the activity")
    require(activity.get("type"), str, "type")
    require(activity.get("serviceUrl"), str, "serviceUrl")
    conversation = require(activity.get("conversation"), dict, "conversation")
    require(conversation.get("id"), str, "conversation.id")
    return activity


def _text_without_bot_mention(activity: dict[str, Any]) -> tuple[str | None, bool]:
    """The text without the ``<at>Bot</at>`` that channels and group chats put before what was said to the bot."""
    text = activity.get("text")
    if not isinstance(text, str):
        return None, False
    bot_id = _dict(activity.get("recipient")).get("id")
    mentioned = False
    for entity in _list(activity.get("entities")):
        if not isinstance(entity, dict) or entity.get("type") != "mention":
            continue
        if _dict(entity.get("mentioned")).get("id") == bot_id and isinstance(entity.get("text"), str):
            text = text.replace(entity["text"], "")
            mentioned = True
    return text.strip() if mentioned else text, mentioned


def _payload(value: Any) -> str:
    """A button's payload as a string: ours come back as ``{"payload": …}``; other values as JSON."""
    if isinstance(value, str):
        return value
    payload = value.get("payload") if isinstance(value, dict) else None
    if isinstance(payload, str):
        return payload
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _is_media(attachment: dict[str, Any]) -> bool:
    content_type = attachment.get("contentType")
    return isinstance(content_type, str) and content_type != "text/html" and not content_type.startswith("application/vnd.microsoft.card.")


def _media_type(attachment: dict[str, Any]) -> str:
    content_type = attachment.get("contentType") or ""
    for prefix, kind in (("image/", "image"), ("audio/", "audio"), ("video/", "video")):
        if content_type.startswith(prefix):
            return kind
    return "file"


def _card_action(button: Button) -> dict[str, Any]:
    if button.url is not None:
        return {"type": "openUrl", "title": button.title, "value": button.url}
    return _message_back(button.title, button.payload or "")


def _hero(card: Card) -> dict[str, Any]:
    content: dict[str, Any] = {"title": card.title, "subtitle": card.subtitle,
                               "images": [{"url": card.image}] if card.image else None,
                               "buttons": [_card_action(b) for b in card.button_list] or None}
    return {"contentType": HERO_CARD, "content": _without_none(content)}


def _message_back(title: str, payload: str) -> dict[str, Any]:
    """Teams reads a messageBack's string value as JSON, so the payload travels wrapped in an object."""
    return {"type": "messageBack", "title": title, "displayText": title, "text": payload, "value": {"payload": payload}}


def _image_type(url: str) -> str:
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    return guessed if guessed and guessed.startswith("image/") else "image/png"


def _timestamp(value: Any) -> float | None:
    """An activity's ``timestamp`` (ISO 8601, UTC when it names no offset) in epoch seconds."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _pick(source: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The named fields that hold plain values (a reference keeps no nested structure from the body)."""
    return {field: source[field] for field in fields if isinstance(source.get(field), (str, bool, int, float))}


def _without_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
