"""The fake Telegram Bot API the bench's bots reply to, in a process of its own.

Answers every request with a small Bot API success; ``GET /stats`` reports how many replies arrived, so
the runner can check that every handled webhook really sent its reply.

    python -m bench.fake_api [--port 0]     # prints the port it listens on, then serves
"""
from __future__ import annotations

import argparse
import asyncio
import sys

from bench.http11 import FramingError, response, take_message
from bench.loop import install_uvloop

OK = response(200, b'{"ok":true,"result":{"message_id":1,"chat":{"id":1,"type":"private"},"date":0,"text":"Count"}}')


class Counter:
    def __init__(self) -> None:
        self.requests = 0


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
                out.append(self._answer(message[0]))
        except FramingError:
            self.transport.close()  # type: ignore[union-attr]
            return
        if out:
            self.transport.write(b"".join(out))  # type: ignore[union-attr]

    def _answer(self, head: bytes) -> bytes:
        if head.startswith(b"GET /stats"):
            return response(200, b'{"requests":%d}' % self.counter.requests)
        self.counter.requests += 1
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
