"""Test helpers: a fake platform API on 127.0.0.1 that records calls, and a bot served by aiohttp."""
from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from botkit import Bot
from botkit.adapters.base import Adapter
from botkit.app.config import config_from_mapping
from botkit.shell.server import create_app


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.body.decode()))


Responder = Callable[[web.Request, Call], Awaitable[web.StreamResponse] | web.StreamResponse]


class FakeAPI:
    """A platform API stand-in. Every request is recorded in ``calls``; answers come from rules added
    with ``on(pattern, ...)`` (first match wins, a rule may be used a limited number of times), else
    ``200 {"ok": true, "result": {}}``."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.rules: list[list[Any]] = []
        self.server: TestServer | None = None
        self.arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def on(self, pattern: str, status: int = 200, json: Any = None, headers: dict[str, str] | None = None,
           times: int | None = None, handler: Responder | None = None, delay: float = 0.0) -> None:
        self.rules.append([re.compile(pattern), status, json, headers, times, handler, delay])

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call = Call(request.method, request.path, dict(request.headers), await request.read(), dict(request.query))
        self.calls.append(call)
        async with self.arrived:
            self.arrived.notify_all()
        for rule in self.rules:
            pattern, status, body, headers, times, handler, delay = rule
            if not pattern.search(request.path) or times == 0:
                continue
            if times is not None:
                rule[4] = times - 1
            if delay:
                await asyncio.sleep(delay)
            if handler is not None:
                result = handler(request, call)
                return await result if asyncio.iscoroutine(result) else result
            return web.json_response(body if body is not None else {"ok": status < 400}, status=status, headers=headers)
        return web.json_response({"ok": True, "result": {}})

    def calls_to(self, pattern: str) -> list[Call]:
        regex = re.compile(pattern)
        return [c for c in self.calls if regex.search(c.path)]

    async def wait_for(self, count: int, pattern: str = "", timeout: float = 10.0) -> list[Call]:
        async def enough() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.calls_to(pattern)) >= count)

        await asyncio.wait_for(enough(), timeout)
        return self.calls_to(pattern)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


def make_config(tmp_path: Path | None = None, **settings: Any):
    """A Config from keyword settings, as a bot.config.py would define them."""
    settings.setdefault("initial_state", {"count": 0})
    return config_from_mapping(with_test_defaults(settings), root=tmp_path)


def with_test_defaults(settings: dict[str, Any]) -> dict[str, Any]:
    """``BOTKIT_TEST_ACK_WITHIN=none pytest`` runs the suite the way webhooks answered before the inbox
    (after the handler), for configs that do not set ``server.ack_within`` themselves."""
    import os

    if os.environ.get("BOTKIT_TEST_ACK_WITHIN", "").lower() == "none":
        server = dict(settings.get("server") or {})
        server.setdefault("ack_within", None)
        settings["server"] = server
    return settings


async def counter(context) -> None:
    """The example counting bot's handler, for tests."""
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")


class Served:
    """A bot served by a real aiohttp server on 127.0.0.1, with a client to post webhooks."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.client: TestClient | None = None

    async def __aenter__(self) -> Served:
        self.client = TestClient(TestServer(create_app(self.bot), host="127.0.0.1"))
        await self.client.start_server()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.client is not None
        await self.client.close()

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    def post(self, path: str, **kwargs: Any):
        return self.client.post(path, **kwargs)

    def get(self, path: str, **kwargs: Any):
        return self.client.get(path, **kwargs)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BotProcess:
    """`botkit start` as a real subprocess, ready once /healthz answers 200; stopped with SIGTERM."""

    def __init__(self, config_path: Path, *args: str, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.config_path = config_path
        self.args = args
        self.port = port or free_port()
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self.output = b""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 20.0) -> BotProcess:
        import os
        import sys

        import aiohttp

        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "botkit", "start", "--config", str(self.config_path), "--port", str(self.port), *self.args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, **(self.env or {})},
        )
        deadline = asyncio.get_running_loop().time() + timeout
        workers = int(self.args[self.args.index("--workers") + 1]) if "--workers" in self.args else 1
        serving: set[int] = set()
        connector = aiohttp.TCPConnector(force_close=True)  # each look may reach another worker
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"botkit start exited {self.process.returncode}: {await self.process.stdout.read()!r}")
                try:
                    async with session.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            serving.add((await response.json()).get("pid", 0))
                            if len(serving) >= workers:  # every worker booted: a stop now is an ordinary one
                                return self
                except aiohttp.ClientError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    if serving:
                        return self
                    raise TimeoutError("botkit start did not become healthy")
                await asyncio.sleep(0.05)

    async def stop(self, timeout: float = 20.0) -> int:
        import signal

        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.output, _ = await asyncio.wait_for(self.process.communicate(), timeout)
        except TimeoutError:
            self.process.kill()
            self.output, _ = await self.process.communicate()
        return self.process.returncode

    async def __aenter__(self) -> BotProcess:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()


class TestChannel(Adapter):
    """An in-process channel for core tests (platform ``test``, no route): an event answers through the
    sender it carries in ``meta["sender"]``; a message the bot starts goes to ``pushes[key]``."""

    __test__ = False
    platform = "test"

    def __init__(self, host: Any) -> None:
        super().__init__("test", {}, host)
        self.pushes: dict[str, Any] = {}

    def routes(self) -> list[Any]:
        return []

    def sender(self, event: Any, inband: Any = None) -> Any:
        sender = event.meta.get("sender")
        return sender if sender is not None else self.push_sender(event.session_key, None)

    def push_sender(self, session_key: str, address: Any) -> Any:
        return self.pushes.get(session_key) or _Quiet()


class _Quiet:
    async def send_text(self, text: str, **options: Any) -> None:
        pass

    async def flush(self) -> None:
        pass


def test_bot(config: Any, **kwargs: Any) -> Bot:
    """A Bot with the ``test`` channel (and whatever channels ``kwargs`` names)."""
    bot = Bot(config, **kwargs)
    bot.add_channel(TestChannel(bot))
    return bot


test_bot.__test__ = False  # type: ignore[attr-defined]


async def eventually(check: Callable[[], Any], timeout: float = 5.0, every: float = 0.05) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        await asyncio.sleep(every)
