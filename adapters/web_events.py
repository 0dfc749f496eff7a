"""Server-sent events: messages the bot starts reach the pages of a session that are open in this process.

A page that misses messages (no page open, another worker, a dropped connection) finds them in the
history, which the page reads again each time its stream (re)connects.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

log = logging.getLogger("botkit.adapters.web")

_END = None
READY = b"event: ready\ndata: {}\n\n"
KEEPALIVE = b": keepalive\n\n"


class HubFull(Exception):
    """The process has ``max_streams`` event streams open."""


class Hub:
    """The open event streams of this process, by session id: at most ``per_session`` a session (a new one
    ends the oldest) and ``max_streams`` in all (a new one is refused: ``HubFull``)."""

    def __init__(self, queue_size: int = 64, per_session: int = 8, max_streams: int = 1000) -> None:
        self.queue_size = queue_size
        self.per_session = per_session
        self.max_streams = max_streams
        self.open = 0
        self._streams: dict[str, list[asyncio.Queue[Any]]] = {}

    def subscribe(self, session_id: str) -> asyncio.Queue[Any]:
        """A queue receiving the session's messages; the oldest stream of a session with too many ends."""
        streams = self._streams.get(session_id, [])
        if len(streams) >= self.per_session:
            self._end(streams.pop(0))
            self.open -= 1
        elif self.open >= self.max_streams:
            raise HubFull(f"{self.open} event streams open")
        queue: asyncio.Queue[Any] = asyncio.Queue(self.queue_size)
        self._streams.setdefault(session_id, streams).append(queue)
        self.open += 1
        return queue

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[Any]) -> None:
        streams = self._streams.get(session_id)
        if streams and queue in streams:
            streams.remove(queue)
            self.open -= 1
            if not streams:
                del self._streams[session_id]

    def publish(self, session_id: str, message: dict[str, Any]) -> int:
        """Hand ``message`` to every open stream of the session; returns how many took it. A stream too
        slow to keep up is ended: its page reconnects and catches up from the history."""
        streams = self._streams.get(session_id, [])
        for queue in list(streams):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                streams.remove(queue)
                self.open -= 1
                self._end(queue)
        if not streams:
            self._streams.pop(session_id, None)
        return len(streams)

    def close(self, session_id: str | None = None) -> None:
        """End the streams of one session, or all of them (at shutdown)."""
        ids = [session_id] if session_id is not None else list(self._streams)
        for key in ids:
            for queue in self._streams.pop(key, []):
                self.open -= 1
                self._end(queue)

    def open_streams(self, session_id: str) -> int:
        return len(self._streams.get(session_id, []))

    @staticmethod
    def _end(queue: asyncio.Queue[Any]) -> None:
        while True:
            try:
                queue.put_nowait(_END)
                return
            except asyncio.QueueFull:
                queue.get_nowait()


async def stream(queue: asyncio.Queue[Any], *, keepalive: float) -> AsyncIterator[bytes]:
    """The queue's messages as ``event: message`` chunks until the stream ends. Idle, it sleeps until a
    message comes; a comment every ``keepalive`` seconds keeps proxies from closing it, and writing it
    is how the server notices a client that went away."""
    yield READY
    while True:
        try:
            async with asyncio.timeout(keepalive):  # a timer, not a task per wait as wait_for makes
                message = await queue.get()
        except TimeoutError:
            yield KEEPALIVE
            continue
        if message is _END:
            return
        yield b"event: message\ndata: " + orjson.dumps(message) + b"\n\n"
