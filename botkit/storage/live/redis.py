"""The live bus over Redis PUBLISH/SUBSCRIBE: one channel per bot; every process hears every message and
hands it to its own listeners of the topic."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis

from botkit.storage.live.base import Bus, encode

log = logging.getLogger("botkit.storage.live")
MAX_CONNECTIONS = 32
"""Publishing connections (a burst waits for one; the subscription holds one more)."""


class RedisBus(Bus):
    shared = True

    def __init__(self, url: str, prefix: str = "botkit:", *, timeout: float = 5.0) -> None:
        super().__init__()
        self.url = url
        self.channel = f"{prefix}live"
        self.timeout = timeout
        self.client: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def open(self) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(self.url, max_connections=MAX_CONNECTIONS, timeout=self.timeout,
                                                        socket_connect_timeout=self.timeout)
        self.client = aioredis.Redis(connection_pool=pool)
        self._listener = asyncio.create_task(self._listen(), name="botkit-live-bus")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout):
                await self._subscribed.wait()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()

    async def publish(self, topic: str, data: Any) -> None:
        await self.client.publish(self.channel, encode(topic, data))

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self.client.pubsub()
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._received(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("the live bus lost Redis (%s); listening again in 1 s", exc)
                await asyncio.sleep(1.0)
