"""The live bus over PostgreSQL NOTIFY/LISTEN on one channel per bot (payloads up to 8,000 bytes; a
larger message is dropped with a warning: a web page then finds it in the history)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from botkit.storage.live.base import Bus, encode

log = logging.getLogger("botkit.storage.live")

MAX_PAYLOAD = 7999
_connect: Any = asyncpg.connect


class PostgresBus(Bus):
    shared = True

    def __init__(self, dsn: str, table: str, *, timeout: float = 5.0) -> None:
        super().__init__()
        self.dsn = dsn
        self.channel = f"{table}_live"
        self.timeout = timeout
        self.conn: Any = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self.conn = await _connect(self.dsn, timeout=self.timeout)
        await self.conn.add_listener(self.channel, self._notified)

    async def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            with contextlib.suppress(Exception):
                await conn.close(timeout=self.timeout)

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self._received(payload)

    async def publish(self, topic: str, data: Any) -> None:
        payload = encode(topic, data).decode()
        if len(payload.encode()) > MAX_PAYLOAD:
            log.warning("a live message for %s is %d bytes, over NOTIFY's limit; not sent", topic, len(payload))
            return
        async with self._lock:  # one connection listens and sends; asyncpg runs one command at a time on it
            await self.conn.execute("SELECT pg_notify($1, $2)", self.channel, payload, timeout=self.timeout)
