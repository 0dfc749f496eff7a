"""The web chat as the kit plays it: a browser page. Each user starts a session (``POST /api/session``),
keeps the page's event stream open (``GET /api/events``: the messages the bot starts) and chats with the
bearer token (``POST /api/chat``: the answer carries what the handler sent)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from botkit.core.requests import Reply, Request
from botkit.testing.http import HttpCall
from botkit.testing.messages import Button, Card, Message
from botkit.testing.platforms.base import Identity, Inbound, Platform, TesterError

log = logging.getLogger("botkit.testing")


class WebPlatform(Platform):
    adapters = ("botkit.adapters.web:WebAdapter",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.streams: list[asyncio.Task[None]] = []

    def new_identity(self, name: str, n: int) -> Identity:
        return Identity(name, "", "")  # the session id comes from POST /api/session

    @property
    def api(self) -> str:
        return f"{self.adapter.path}/api"

    def _route(self, method: str, path: str) -> Any:
        for route in self.adapter.routes():
            if route.method == method and route.path == path and route.handler is not None:
                return route.handler
        raise TesterError(f"the web channel serves no {method} {path}")

    async def open(self, user: Identity) -> None:
        """Start the user's session and open the page's event stream, as the chat page does."""
        if user.address:
            return
        answer = await self._route("POST", f"{self.api}/session")(Request("POST", f"{self.api}/session", raw_path=f"{self.api}/session"))
        if answer.status != 201:
            raise TesterError(f"POST {self.api}/session answered {answer.status}: {answer.body!r}")
        started = orjson.loads(answer.body)
        user.ids["token"] = started["token"]
        user.address = started["session_id"]
        user.session_key = f"web:{started['session_id']}"
        self.addresses[user.address] = user
        events = await self._route("GET", f"{self.api}/events")(
            Request("GET", f"{self.api}/events", headers=self._auth(user), raw_path=f"{self.api}/events"))
        if events.status != 200 or events.stream is None:
            raise TesterError(f"GET {self.api}/events answered {events.status}: {events.body!r}")
        self.streams.append(asyncio.get_running_loop().create_task(self._read_stream(user.address, events),
                                                                    name=f"botkit-testing-events-{user.name}"))
        await asyncio.sleep(0)  # the stream is subscribed before anything is sent

    async def _read_stream(self, address: str, reply: Reply) -> None:
        """The page's side of the event stream: each ``event: message`` is a message the bot started."""
        assert reply.stream is not None
        buffer = b""
        try:
            async for chunk in reply.stream:
                buffer += chunk
                while b"\n\n" in buffer:
                    frame, buffer = buffer.split(b"\n\n", 1)
                    lines = frame.split(b"\n")
                    if b"event: message" in lines:
                        data = b"".join(line[6:] for line in lines if line.startswith(b"data: "))
                        self.deliver(address, [self.read(orjson.loads(data), address)])
        finally:
            await reply.stream.aclose()

    async def close(self) -> None:
        for task in self.streams:
            task.cancel()
        for task in self.streams:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.streams.clear()

    def _auth(self, user: Identity) -> dict[str, str]:
        return {"Authorization": f"Bearer {user.ids['token']}"}

    def _chat(self, user: Identity, body: dict[str, Any]) -> Inbound:
        headers = {"Content-Type": "application/json", **self._auth(user)}
        return Inbound(f"{self.api}/chat", headers, orjson.dumps({"id": f"t{self.base}x{self.next()}", **body}))

    def text(self, user: Identity, text: str) -> Inbound:
        return self._chat(user, {"text": text})

    def press(self, user: Identity, button: Button, message: Message | None) -> Inbound:
        return self._chat(user, {"payload": button.payload, "text": button.title})

    def replies_in(self, user: Identity, reply: Reply) -> list[Message]:
        if reply.status != 200:
            return []
        answer = orjson.loads(reply.body)
        return [self.read(message, user.address) for message in answer.get("messages") or []]

    def answers(self, url: str) -> bool:
        return False

    def answer(self, call: HttpCall) -> tuple[int, Any]:
        return 404, None

    def read(self, message: dict[str, Any], to: str) -> Message:
        kind = str(message.get("type", "other"))
        if kind == "text":
            return self.message("text", to, message, text=message.get("text"))
        if kind in ("buttons", "quick_replies"):
            items = message.get("buttons") or message.get("replies") or []
            return self.message(kind, to, message, text=message.get("text"), buttons=tuple(_button(b) for b in items))
        if kind in ("image", "file", "audio", "video"):
            return self.message(kind, to, message, text=message.get("caption") or message.get("name"), url=message.get("url"))
        if kind in ("card", "cards"):
            cards = tuple(_card(c) for c in (message.get("cards") or [message]))
            return self.message(kind, to, message, cards=cards, text=message.get("text"))
        return self.message(kind if kind in ("sticker", "location", "template") else "other", to, message,
                            text=message.get("text"))


def _button(item: dict[str, Any]) -> Button:
    return Button(str(item.get("title", "")), payload=item.get("payload"), url=item.get("url"))


def _card(card: dict[str, Any]) -> Card:
    return Card(card.get("title"), card.get("subtitle"), card.get("image"),
                tuple(_button(b) for b in card.get("buttons") or []))
