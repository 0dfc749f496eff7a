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


class Hub:
    """The open event streams of this process, by session id."""

    def __init__(self, queue_size: int = 64, per_session: int = 8) -> None:
        self.queue_size = queue_size
        self.per_session = per_session
        self._streams: dict[str, list[asyncio.Queue[Any]]] = {}

    def subscribe(self, session_id: str) -> asyncio.Queue[Any]:
        """A queue receiving the session's messages; the oldest stream of a session with too many ends."""
        streams = self._streams.setdefault(session_id, [])
        if len(streams) >= self.per_session:
            self._end(streams.pop(0))
        queue: asyncio.Queue[Any] = asyncio.Queue(self.queue_size)
        streams.append(queue)
        return queue

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[Any]) -> None:
        streams = self._streams.get(session_id)
        if streams and queue in streams:
            streams.remove(queue)
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
                self._end(queue)
        return len(streams)

    def close(self, session_id: str | None = None) -> None:
        """End the streams of one session, or all of them (at shutdown)."""
        ids = [session_id] if session_id is not None else list(self._streams)
        for key in ids:
            for queue in self._streams.pop(key, []):
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
            message = await asyncio.wait_for(queue.get(), keepalive)
        except TimeoutError:
            yield KEEPALIVE
            continue
        if message is _END:
            return
        yield b"event: message\ndata: " + orjson.dumps(message) + b"\n\n"
