"""The inbox across processes, as a user deploys it: `botkit start --workers 2` with workers killed in the
middle, web and worker roles in separate processes, two servers ("machines") on one Redis, and the web
chat whose page is held by one worker while another handles its messages."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.stores import POSTGRES_DSN, REDIS_URL, bot_folder, free_port, postgres_store, redis_store
from tests.test_workers import HEADERS, SECRET, TOKEN, replies_by_chat, update


class Server:
    """`botkit start ARGS` in a subprocess of its own (a process group: workers die with it)."""

    def __init__(self, config: Path, *args: str) -> None:
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = config.parent / f"server-{self.port}.log"
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Server:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "botkit", "start", "--config", str(self.config), "--port", str(self.port), *self.args],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.config.parent, start_new_session=True)
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert self.process.poll() is None, self.log.read_text()[-4000:]
                try:
                    async with http.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"botkit did not come up:\n{self.log.read_text()[-4000:]}")

    async def __aexit__(self, *exc: Any) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            for _ in range(200):
                if self.process.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def workers(self) -> list[int]:
        assert self.process is not None
        found = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in found.split()]


@pytest.fixture(params=["redis", "postgres"])
async def shared(request: Any, tmp_path: Path) -> Any:
    if request.param == "redis":
        async with redis_store(tmp_path) as store:
            yield {"driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": store.prefix}}}, store
    else:
        async with postgres_store(tmp_path) as store:
            yield {"driver": "postgres", "stores": {"postgres": {"dsn": POSTGRES_DSN, "table": store.settings["table"]}}}, store


async def deliver(http: aiohttp.ClientSession, urls: list[str], body: dict[str, Any], tries: list[int]) -> None:
    """Post until a 2xx, as a platform redelivers (on another connection, maybe another process)."""
    attempt = 0
    while True:
        url = urls[attempt % len(urls)]
        attempt += 1
        try:
            async with http.post(url + "/webhooks/telegram", json=body, headers=HEADERS) as response:
                await response.read()
                if response.status < 300:
                    tries.append(attempt)
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)


async def converse(urls: list[str], chats: int, per_chat: int, during: Any = None) -> list[int]:
    """Each chat's messages in order (the next once the last got its 2xx), all chats at once."""
    tries: list[int] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True)) as http:
        async def chat(number: int) -> None:
            for n in range(1, per_chat + 1):
                await deliver(http, urls, update(number * 1000 + n, number), tries)

        talking = asyncio.gather(*(chat(number) for number in range(1, chats + 1)))
        if during is not None:
            await during()
        await talking
    return tries


def check_counts(fake_api: Any, chats: int, per_chat: int) -> int:
    """Every chat counted to ``per_chat`` and was told so in increasing order; returns the repeats."""
    replies = replies_by_chat(fake_api)
    repeats = 0
    for chat in range(1, chats + 1):
        counts = replies[chat]
        assert counts == sorted(counts), f"chat {chat}: replies out of order"
        assert set(counts) == set(range(1, per_chat + 1)), f"chat {chat}: a count is missing"
        repeats += len(counts) - per_chat
    return repeats


async def saved_counts(store: Any, chats: int) -> dict[int, int]:
    return {chat: (await store.load(f"telegram:{chat}"))["state"]["count"] for chat in range(1, chats + 1)}


async def test_workers_killed_in_the_middle_lose_no_event_and_keep_each_chats_order(shared, fake_api, tmp_path):
    session, store = shared
    chats, per_chat = 20, 60
    config = bot_folder(tmp_path / "bot", session=session, http={"attempts": 2},
                        channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}})
    async with Server(config, "--workers", "2") as server:
        killed: list[int] = []

        async def kill_both() -> None:
            await fake_api.wait_for(chats * per_chat // 3, "/sendMessage", timeout=60)
            for pid in server.workers():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                await asyncio.sleep(0.3)

        await converse([server.url], chats, per_chat, kill_both)
        assert len(killed) == 2
        await fake_api.wait_for(chats * per_chat, "/sendMessage", timeout=60)
        await asyncio.sleep(0.5)
        repeats = check_counts(fake_api, chats, per_chat)
    assert await saved_counts(store, chats) == {chat: per_chat for chat in range(1, chats + 1)}
    print(f"\n{chats * per_chat} messages, 2 workers SIGKILLed: {repeats} replies sent twice (events in flight at a kill)")
    assert repeats <= 2 * 64, "more repeats than events a worker can have in flight"


async def test_web_and_worker_roles_in_separate_processes(fake_api, tmp_path):
    async with redis_store(tmp_path) as store:
        session = {"driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": store.prefix}}}
        config = bot_folder(tmp_path / "bot", session=session,
                            channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}})
        async with Server(config, "--role", "web") as web, Server(config, "--role", "worker") as worker:
            async with aiohttp.ClientSession() as http:
                async with http.post(worker.url + "/webhooks/telegram", json=update(1, 1), headers=HEADERS) as response:
                    assert response.status == 404, "a worker takes no webhooks"
            await converse([web.url], chats=5, per_chat=20)
            await fake_api.wait_for(100, "/sendMessage", timeout=30)
            assert check_counts(fake_api, 5, 20) == 0
            health = await _health(worker.url)
            assert health["role"] == "worker" and health["inbox"]["depth"] == 0
        assert await saved_counts(store, 5) == {chat: 20 for chat in range(1, 6)}


async def test_two_servers_on_one_redis_share_the_sessions_and_their_order(fake_api, tmp_path):
    async with redis_store(tmp_path) as store:
        session = {"driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": store.prefix}}}
        config = bot_folder(tmp_path / "bot", session=session,
                            channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}})
        async with Server(config) as one, Server(config) as two:
            tries = await converse([one.url, two.url], chats=10, per_chat=30)  # alternately to both "machines"
            assert Counter(tries)[1] == len(tries)
            await fake_api.wait_for(300, "/sendMessage", timeout=30)
            assert check_counts(fake_api, 10, 30) == 0
        assert await saved_counts(store, 10) == {chat: 30 for chat in range(1, 11)}


async def _health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url + "/healthz") as response:
        health: dict[str, Any] = await response.json()
        return health


WEB_BOT = textwrap.dedent('''
    import asyncio
    from botkit import Flows

    flows = Flows()

    @flows.state("chat")
    async def chat(context):
        if context.event.type == "scheduled":
            await context.send_text("reminder")
        elif context.event.text == "slow":
            await asyncio.sleep(1.5)
            await context.send_text("slow answer")
        elif context.event.text == "remind":
            await context.step_to_in(0.5, "chat", "chat")
            await context.send_text("will remind")
        else:
            await context.send_text("quick answer")
''')


async def test_the_web_chat_with_two_workers_answers_in_band_and_streams_late_replies_from_any_worker(shared, tmp_path):
    session, _ = shared
    folder = tmp_path / "bot"
    config = bot_folder(folder, session=session, server={"ack_within": 0.5}, channels={"web": {"rate_limit": 1000}})
    (folder / "bot.py").write_text(WEB_BOT)
    config.write_text(config.read_text().replace('app = "bot:app"', 'app = "bot:flows"'))
    async with Server(config, "--workers", "2") as server, aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/session") as response:
            token = (await response.json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        streamed: list[str] = []
        ready = asyncio.Event()

        async def page() -> None:
            async with http.get(server.url + "/api/events", headers=auth) as response:
                async for line in response.content:
                    if line.startswith(b"event: ready"):
                        ready.set()
                    if line.startswith(b"data: ") and b"text" in line:
                        import orjson

                        streamed.append(orjson.loads(line[6:])["text"])

        reading = asyncio.ensure_future(page())
        await asyncio.wait_for(ready.wait(), 5)
        answers = []
        for n, text in enumerate(["hi", "slow", "remind", "hi again"] * 3):
            async with http.post(server.url + "/api/chat", json={"text": text, "id": f"m{n}"}, headers=auth) as response:
                assert response.status == 200
                answers.append((text, [m["text"] for m in (await response.json())["messages"]]))
        expected = Counter({"quick answer": 6, "will remind": 3, "slow answer": 3, "reminder": 3})
        deadline = time.monotonic() + 15
        while Counter(streamed) + Counter(m for _, found in answers for m in found) != expected:
            assert time.monotonic() < deadline, (answers, streamed)
            await asyncio.sleep(0.1)
        reading.cancel()
    assert answers[0] == ("hi", ["quick answer"]), "a quick handler's reply comes in the chat answer"
    assert all(found == [] for text, found in answers if text == "slow"), "a slow one's comes on the page's stream"
    assert streamed.count("reminder") == 3, "a scheduled step's message reaches the open page"
