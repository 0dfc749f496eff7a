"""A fake Telegram Bot API served on 127.0.0.1, for what runs in another process (`botkit start
--polling` against ``api_base = fake.url``): ``getUpdates`` long-polls the updates a test queues with
``add_update``/``add_text``, ``deleteWebhook``/``setWebhook`` keep the webhook as Telegram does (no
``getUpdates`` while one is set: 409), sends are recorded in ``sent``; ``fail(n)`` answers the next ``n``
calls with 502, as the Bot API does during an outage."""
from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

METHOD = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>\w+)$")


@dataclass(slots=True)
class ApiCall:
    method: str
    payload: dict[str, Any]
    status: int
    sent_before: int
    """How many sends the bot had made when this call arrived (what it had handled by then)."""
    at: float = field(default_factory=time.monotonic)


class FakeBotAPI:
    def __init__(self, token: str | None = None, *, webhook: str = "") -> None:
        self.token = token
        self.webhook = webhook
        self.updates: list[dict[str, Any]] = []
        """Updates not yet confirmed (Telegram forgets those below a ``getUpdates`` offset)."""
        self.confirmed = 0
        """Every update with a lower id was acknowledged."""
        self.calls: list[ApiCall] = []
        self.sent: list[dict[str, Any]] = []
        self._failing = 0
        self._failing_status = 502
        self._ids = itertools.count(1)
        self._messages = itertools.count(1)
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.url = ""

    async def start(self) -> FakeBotAPI:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        self._closing = True  # a long poll under way answers now
        async with self._arrived:
            self._arrived.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- what a test does ----------------------------------------------------------------------------

    async def add_update(self, body: dict[str, Any]) -> int:
        """Queue an update (``{"message": …}``); returns its ``update_id``."""
        update_id = next(self._ids)
        self.updates.append({"update_id": update_id, **body})
        async with self._arrived:
            self._arrived.notify_all()
        return update_id

    async def add_text(self, chat_id: int, text: str) -> int:
        message = {"message_id": next(self._messages), "date": int(time.time()), "text": text,
                   "chat": {"id": chat_id, "type": "private"}, "from": {"id": chat_id, "is_bot": False, "first_name": "U"}}
        return await self.add_update({"message": message})

    def fail(self, times: int, status: int = 502) -> None:
        """Answer the next ``times`` calls, whatever their method, with ``status``."""
        self._failing, self._failing_status = times, status

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    async def wait_sent(self, count: int, within: float = 20.0) -> list[dict[str, Any]]:
        """The sends, once there are ``count`` of them (TimeoutError after ``within`` seconds)."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.sent) >= count)
        return self.sent

    # -- the Bot API ---------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        found = METHOD.match(request.path)
        try:
            payload = await request.json() if request.can_read_body else {}
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        method = found["method"] if found else request.path
        sent_before = len(self.sent)
        status, body = await self._answer(found, method, payload)
        self.calls.append(ApiCall(method, payload, status, sent_before))
        async with self._arrived:
            self._arrived.notify_all()
        return web.json_response(body, status=status)

    async def _answer(self, found: re.Match[str] | None, method: str, payload: dict[str, Any]) -> tuple[int, Any]:
        if found is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if self.token is not None and found["token"] != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if self._failing:
            self._failing -= 1
            return self._failing_status, {"ok": False, "error_code": self._failing_status, "description": "Bad Gateway"}
        if method == "getUpdates":
            return await self._get_updates(payload)
        if method == "deleteWebhook":
            self.webhook = ""
            if payload.get("drop_pending_updates"):
                self.updates.clear()
            return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}
        if method == "setWebhook":
            self.webhook = str(payload.get("url") or "")
            return 200, {"ok": True, "result": True, "description": "Webhook was set"}
        if method == "getWebhookInfo":
            return 200, {"ok": True, "result": {"url": self.webhook, "pending_update_count": len(self.updates)}}
        if method.startswith("send"):
            self.sent.append({"method": method, **payload})
            result = {"message_id": next(self._messages), "date": int(time.time()),
                      "chat": {"id": payload.get("chat_id"), "type": "private"}, "text": payload.get("text")}
            return 200, {"ok": True, "result": result}
        return 200, {"ok": True, "result": True}

    async def _get_updates(self, payload: dict[str, Any]) -> tuple[int, Any]:
        if self.webhook:
            return 409, {"ok": False, "error_code": 409, "description": "Conflict: can't use getUpdates method while "
                         "webhook is active; use deleteWebhook to delete the webhook first"}
        offset = payload.get("offset")
        if isinstance(offset, int) and offset > self.confirmed:
            self.confirmed = offset
            self.updates = [update for update in self.updates if update["update_id"] >= offset]
        limit = int(payload.get("limit") or 100)
        timeout = float(payload.get("timeout") or 0)

        async def waiting() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: bool(self.updates) or self._closing)

        if not self.updates and timeout > 0:
            try:
                await asyncio.wait_for(waiting(), timeout)
            except TimeoutError:
                pass
        return 200, {"ok": True, "result": self.updates[:limit]}
