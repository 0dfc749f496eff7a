"""The fake Telegram Bot API the bench's bots reply to, in a process of its own.

Answers every request with a small Bot API success; ``GET /stats`` reports how many replies arrived, so
the runner can check that every handled webhook really sent its reply.

It also reads each reply's ``chat_id`` and ``text``: the counting bot answers ``Count: N``, so each chat's
replies since the last ``GET /reset`` should be 1, 2, … N, each once. ``GET /increments`` reports the chats,
the replies, the *lost increments* (replies whose count repeats an earlier one of the chat: two messages
that read the same state and both saved N) and the *gaps* (counts below the chat's highest that never
came: a count saved whose reply never left). Bodies may be JSON (botkit, the baseline, Bottender's axios)
or a form.

End to end: ``GET /mark`` notes each chat's highest count so far and starts a log of when each reply
arrives (``time.monotonic()``, the clock the load generator stamps its requests with: one clock for every
process on Linux). ``GET /arrivals`` returns that log, each reply as its number in its chat since the mark
(its count minus the chat's count at the mark) and its arrival time; ``GET /marked`` just how many. The
load generator marks before its load, waits for its replies after it, and matches the k-th request it sent
to a chat with that chat's k-th reply (``bench/loadgen.py``).

    python -m bench.fake_api [--port 0]     # prints the port it listens on, then serves
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any
from urllib.parse import parse_qs

import orjson

from bench.http11 import FramingError, response, take_message
from bench.loop import install_uvloop

OK = response(200, b'{"ok":true,"result":{"message_id":1,"chat":{"id":1,"type":"private"},"date":0,"text":"Count"}}')


COUNT_PREFIX = "Count: "


class Counter:
    def __init__(self) -> None:
        self.requests = 0
        self.counts: dict[Any, list[int]] = {}
        """Each chat's counts in the order their replies arrived, since the last reset."""
        self.unparsed = 0
        """Replies whose body had no ``chat_id`` or whose text was not ``Count: N``."""
        self.base: dict[Any, int] | None = None
        """Each chat's highest count at the last ``/mark``; None: no arrival log kept."""
        self.arrivals: dict[Any, list[float]] = {}
        """Since the mark, per chat: each reply's number since the mark and arrival time, flattened."""
        self.marked = 0

    def reply(self, body: bytes) -> None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = {key: values[-1] for key, values in parse_qs(body.decode(errors="replace")).items()}
        try:
            chat, text = payload["chat_id"], payload["text"]
            count = int(text[len(COUNT_PREFIX):]) if text.startswith(COUNT_PREFIX) else None
        except (KeyError, TypeError, AttributeError, ValueError):
            count = None
        if count is None:
            self.unparsed += 1
            return
        counts = self.counts.get(chat)
        if counts is None:
            self.counts[chat] = [count]
        else:
            counts.append(count)
        if self.base is not None:
            self.marked += 1
            self.arrivals.setdefault(chat, []).extend((count - self.base.get(chat, 0), time.monotonic()))

    def reset(self) -> None:
        self.counts.clear()
        self.unparsed = 0
        self.base = None
        self.arrivals.clear()
        self.marked = 0

    def mark(self) -> None:
        self.base = {chat: max(counts) for chat, counts in self.counts.items()}
        self.arrivals.clear()
        self.marked = 0

    def increments(self) -> dict[str, Any]:
        replies = lost = gaps = 0
        worst: list[Any] = []
        for chat, counts in self.counts.items():
            distinct = len(set(counts))
            chat_lost, chat_gaps = len(counts) - distinct, max(counts) - distinct
            replies += len(counts)
            lost += chat_lost
            gaps += max(0, chat_gaps)
            if (chat_lost or chat_gaps) and len(worst) < 3:
                worst.append({"chat": chat, "counts": counts[:40]})
        return {"chats": len(self.counts), "replies": replies, "lost": lost, "gaps": gaps,
                "unparsed": self.unparsed, "examples": worst}


class FakeApiProtocol(asyncio.Protocol):
    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        try:
            while (message := take_message(self.buffer)) is not None:
                out.append(self._answer(*message))
        except FramingError:
            self.transport.close()  # type: ignore[union-attr]
            return
        if out:
            self.transport.write(b"".join(out))  # type: ignore[union-attr]

    def _answer(self, head: bytes, body: bytes) -> bytes:
        if head.startswith(b"GET "):
            if head.startswith(b"GET /stats"):
                return response(200, b'{"requests":%d}' % self.counter.requests)
            if head.startswith(b"GET /increments"):
                return response(200, orjson.dumps(self.counter.increments()))
            if head.startswith(b"GET /reset"):
                self.counter.reset()
                return response(200, b'{"ok":true}')
            if head.startswith(b"GET /marked"):
                return response(200, b'{"arrivals":%d}' % self.counter.marked)
            if head.startswith(b"GET /mark"):
                self.counter.mark()
                return response(200, b'{"ok":true}')
            if head.startswith(b"GET /arrivals"):
                return response(200, orjson.dumps(self.counter.arrivals, option=orjson.OPT_NON_STR_KEYS))
        self.counter.requests += 1
        self.counter.reply(body)
        return OK


async def serve(host: str, port: int) -> None:
    counter = Counter()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FakeApiProtocol(counter), host, port, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    install_uvloop()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
