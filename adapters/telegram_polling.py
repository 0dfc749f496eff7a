"""Telegram without a public URL: long-poll ``getUpdates`` and feed the updates to the same dispatch
path as the webhook (``botkit start --polling``).

An update is acknowledged (the next ``getUpdates`` asks from ``update_id + 1``) only once the dispatch
returned: its event was handled, or stored in a durable inbox. Until then Telegram keeps it and hands it
over again, and the session's record of handled event ids keeps a redelivery from running twice. The Bot
API answering 5xx, timing out or being unreachable is waited out with a capped, jittered backoff.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from botkit.adapters.base import MALFORMED
from botkit.adapters.telegram import TelegramAdapter
from botkit.core.errors import RequestRejected, StoreUnavailable
from botkit.core.events import Event
from botkit.engine.dispatcher import Inband, Outcome
from botkit.http import redact

log = logging.getLogger("botkit.adapters.telegram")

Dispatch = Callable[[list[Event], Inband], Awaitable[list[Outcome]]]
Sleep = Callable[[float], Awaitable[Any]]

POLL_TIMEOUT = 25
"""Seconds each ``getUpdates`` waits for an update (Telegram's long poll); under common proxies' 30 s."""
BACKOFF = 0.25
MAX_BACKOFF = 30.0


class PollError(Exception):
    """A Bot API call that did not succeed (a 5xx, a timeout, no connection, ``ok: false``)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class TelegramPoller:
    """Polls one Telegram channel until ``stop``. ``dispatch`` is the webhook's (``Bot.accept``, or
    ``Bot.dispatch`` when the inbox would not keep an event through a crash)."""

    def __init__(self, channel: TelegramAdapter, dispatch: Dispatch, *, timeout: int = POLL_TIMEOUT,
                 limit: int = 100, sleep: Sleep = asyncio.sleep) -> None:
        self.channel = channel
        self.dispatch = dispatch
        self.timeout = timeout
        self.limit = limit
        self.sleep = sleep
        self.offset: int | None = None
        """The first update not yet handled (what the next ``getUpdates`` acknowledges up to)."""
        self._acknowledged: int | None = None
        self._stopping = False
        self._waiting: asyncio.Future[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._failures = 0

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"botkit-poll-{self.channel.name}")

    async def run(self) -> None:
        """Delete the webhook (Telegram refuses ``getUpdates`` while one is set), then poll until ``stop``."""
        while not self._stopping:
            try:
                await self._wait_for(self._call("deleteWebhook", {"drop_pending_updates": False}))
                self._failures = 0
                break
            except PollError as exc:
                await self._back_off("deleteWebhook", exc)
        if self._stopping:
            return
        log.info("%s: polling getUpdates at %s (the webhook is deleted; set it again with `botkit %s webhook set URL`)",
                 self.channel.name, self.channel.api_base, self.channel.name)
        while not self._stopping:
            try:
                updates = await self._wait_for(self._call("getUpdates", self._poll_payload(self.timeout)))
            except PollError as exc:
                await self._back_off("getUpdates", exc)
                continue
            self._acknowledged = self.offset
            if self._failures:
                log.info("%s: the Bot API answers again", self.channel.name)
                self._failures = 0
            if isinstance(updates, list) and updates:
                await self._handle(updates)

    async def stop(self, grace: float = 30.0) -> None:
        """Stop polling: a ``getUpdates`` under way is dropped, a dispatch under way gets ``grace`` seconds
        to complete; then the handled updates are acknowledged, so a restart does not fetch them again."""
        self._stopping = True
        if self._waiting is not None:
            self._waiting.cancel()
        if self._task is not None:
            _, late = await asyncio.wait([self._task], timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.offset is not None and self.offset != self._acknowledged:
            with contextlib.suppress(PollError):
                await self._call("getUpdates", {**self._poll_payload(0), "limit": 1})
                self._acknowledged = self.offset

    async def _handle(self, updates: list[Any]) -> None:
        events: list[Event] = []
        last: int | None = None
        for update in updates:
            update_id = update.get("update_id") if isinstance(update, dict) else None
            if isinstance(update_id, int) and not isinstance(update_id, bool):
                last = update_id if last is None else max(last, update_id)
            try:
                events.extend(self.channel.parse_update(update))
            except (RequestRejected, *MALFORMED) as exc:
                log.warning("%s: update %s skipped: malformed (%s: %s)", self.channel.name, update_id,
                            type(exc).__name__, exc)
        for event in events:
            event.channel = self.channel.name
        if events:
            try:
                await self.dispatch(events, [])
            except StoreUnavailable as exc:  # not acknowledged: Telegram hands the updates over again
                await self._back_off("dispatch", PollError(f"session store unavailable: {exc}"))
                return
            except Exception as exc:  # as a webhook's 500: not acknowledged, tried again
                log.exception("%s: handling updates up to %s failed", self.channel.name, last)
                await self._back_off("dispatch", PollError(f"{type(exc).__name__}: {exc}"))
                return
        if last is not None:
            self.offset = last + 1
        for event in events:
            query_id = event.meta.get("callback_query_id")
            if query_id:  # the webhook answers it in its reply; here it takes a call
                with contextlib.suppress(Exception):
                    await self.channel.call("answerCallbackQuery", {"callback_query_id": query_id})

    def _poll_payload(self, timeout: int) -> dict[str, Any]:
        payload: dict[str, Any] = {"timeout": timeout, "limit": self.limit}
        if self.offset is not None:
            payload["offset"] = self.offset
        return payload

    async def _wait_for(self, call: Awaitable[Any]) -> Any:
        self._waiting = asyncio.ensure_future(call)
        try:
            return await self._waiting
        except asyncio.CancelledError:
            if self._stopping and not _cancelling():
                raise PollError("stopping") from None
            raise
        finally:
            self._waiting = None

    async def _call(self, method: str, payload: dict[str, Any]) -> Any:
        """One Bot API call with a timeout longer than its long poll; no retries (the loop backs off)."""
        url = f"{self.channel.api_base}/bot{self.channel.settings['access_token']}/{method}"
        timeout = aiohttp.ClientTimeout(total=float(payload.get("timeout", 0)) + 15)
        try:
            async with self.channel.http.session.post(url, json=payload, timeout=timeout) as response:
                status = response.status
                body = await response.json(content_type=None) if status < 500 else None
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise PollError(redact(f"{type(exc).__name__}: {exc}".rstrip(": "))) from exc
        if status >= 400 or not isinstance(body, dict) or not body.get("ok"):
            description = body.get("description") if isinstance(body, dict) else None
            raise PollError(f"HTTP {status}" + (f": {description}" if description else ""), status)
        return body.get("result")

    async def _back_off(self, what: str, exc: PollError) -> None:
        if self._stopping:
            return
        self._failures += 1
        wait = min(BACKOFF * 2 ** (self._failures - 1), MAX_BACKOFF) * (0.5 + random.random() / 2)
        level = logging.ERROR if exc.status is not None and 400 <= exc.status < 500 else logging.WARNING
        if self._failures == 1 or self._failures % 10 == 0:
            log.log(level, "%s: %s failed (%s); trying again in %.2fs (failure %d)", self.channel.name, what, exc,
                    wait, self._failures)
        with contextlib.suppress(PollError):  # a stop ends the pause
            await self._wait_for(self.sleep(wait))


def _cancelling() -> bool:
    """Whether the task running this was itself cancelled (not just the call it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
