"""`botkit start --workers 2` as a user runs it: a subprocess serving one port, Telegram webhooks posted
to it, replies going to a fake Bot API in this test, sessions in a shared Redis or PostgreSQL."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.stores import POSTGRES_DSN, REDIS_URL, bot_folder, free_port, postgres_store, redis_store, run_cli

TOKEN = "123456:ABC-test-token"
SECRET = "s3cret-token_value"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
ACCESS_LINE = re.compile(r'^<(\d+)> \S+ "POST (\S+) HTTP')


def update(update_id: int, chat_id: int) -> dict:
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 1700000000, "text": "hi",
                                                "chat": {"id": chat_id, "type": "private"}}}


class Workers:
    """`botkit start --workers N` in a subprocess, its output in files beside the config."""

    def __init__(self, config: Path, workers: int = 2) -> None:
        self.config = config
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = config.parent / "stdout.log"
        self.err = config.parent / "stderr.log"
        self.process: subprocess.Popen | None = None

    async def __aenter__(self) -> Workers:
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "botkit", "start", "--config", str(self.config), "--workers", str(self.workers),
                 "--port", str(self.port)],
                stdout=out, stderr=err, cwd=self.config.parent, start_new_session=True)
        try:
            await self._wait_until_healthy()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _wait_until_healthy(self) -> None:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert self.process.poll() is None, f"botkit exited with {self.process.returncode}:\n{self.logs()}"
                try:
                    async with http.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"botkit did not come up:\n{self.logs()}")

    async def __aexit__(self, *exc) -> None:
        """After a failure too, nothing of this botkit outlives the test: the master and its workers
        (its process group) are stopped before the test's store namespace is dropped."""
        if self.process.poll() is None:
            try:
                await self.stop(signal.SIGTERM, within=10)
            except AssertionError:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    async def stop(self, sig: int = signal.SIGTERM, within: float = 20) -> int:
        self.process.send_signal(sig)
        deadline = time.monotonic() + within
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"botkit did not stop within {within}s:\n{self.logs()}"
            await asyncio.sleep(0.05)
        return self.process.returncode

    def logs(self) -> str:
        return self.out.read_text(errors="replace")[-3000:] + self.err.read_text(errors="replace")[-5000:]

    async def pids_serving(self, path: str, requests: int) -> set[str]:
        """The pids of the workers whose access log shows ``path``, once ``requests`` lines are written."""
        for _ in range(100):
            served = [m.group(1) for line in self.out.read_text().splitlines()
                      if (m := ACCESS_LINE.match(line)) and m.group(2) == path]
            if len(served) >= requests:
                return set(served)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{len(served)} of {requests} requests to {path} in the access log")


async def post_all(url: str, posts: list[tuple[str, dict]], concurrency: int, fresh_connections: bool = False) -> list[int]:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=fresh_connections)
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def post(path: str, body: dict) -> int:
            async with limit:
                async with http.post(url + path, json=body, headers=HEADERS) as response:
                    await response.read()
                    return response.status

        return await asyncio.gather(*(post(path, body) for path, body in posts))


def replies_by_chat(fake_api) -> dict[int, list[int]]:
    replies: dict[int, list[int]] = {}
    for call in fake_api.calls_to("/sendMessage"):
        replies.setdefault(call.json["chat_id"], []).append(int(call.json["text"].removeprefix("Count: ")))
    return replies


@pytest.fixture(params=["redis", "postgres"])
async def shared(request, tmp_path):
    """(session settings for bot.config.py, an open store over the same namespace)."""
    if request.param == "redis":
        async with redis_store(tmp_path) as store:
            yield {"driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": store.prefix}}}, store
    else:
        async with postgres_store(tmp_path) as store:
            yield {"driver": "postgres", "stores": {"postgres": {"dsn": POSTGRES_DSN, "table": store.settings["table"]}}}, store


def telegram(fake_api) -> dict:
    return {"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}}


async def test_two_workers_2000_webhooks_20_users_lose_no_update_and_dedupe_across_workers(shared, fake_api, tmp_path):
    session, store = shared
    config = bot_folder(tmp_path / "bot", session=session, channels=telegram(fake_api), http={"attempts": 2})
    async with Workers(config) as workers:
        posts = [("/webhooks/telegram", update(chat * 1000 + n, chat)) for n in range(1, 101) for chat in range(1, 21)]
        statuses = await post_all(workers.url, posts, concurrency=64, fresh_connections=True)
        assert Counter(statuses) == {200: 2000}
        assert len(await workers.pids_serving("/webhooks/telegram", 2000)) == 2, "one worker served everything"

        await fake_api.wait_for(2000, "/sendMessage", timeout=30)  # answered first: the last replies may follow
        replies = replies_by_chat(fake_api)
        for chat in range(1, 21):
            assert sorted(replies[chat]) == list(range(1, 101)), f"chat {chat}"
            saved = await store.load(f"telegram:{chat}")
            assert saved["state"] == {"count": 100} and saved["version"] == 100

        # one update id delivered to both workers at once (a platform retrying on another connection)
        spanning = 0
        for round_ in range(12):
            chat, path = 500 + round_, f"/webhooks/telegram?round-{round_}"  # a name: the access log leaves out values
            statuses = await post_all(workers.url, [(path, update(900_000 + round_, chat))] * 8, concurrency=8,
                                      fresh_connections=True)
            assert statuses == [200] * 8
            assert replies_by_chat(fake_api)[chat] == [1], f"update {900_000 + round_} was handled more than once"
            spanning += len(await workers.pids_serving(path, 8)) == 2
        assert spanning, "no copy of an update ever reached the second worker"

        assert await workers.stop(signal.SIGTERM) == 0, workers.logs()


async def test_sighup_replaces_the_workers_under_load_without_failing_a_request(fake_api, tmp_path):
    async with redis_store(tmp_path) as store:
        session = {"driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": store.prefix}}}
        config = bot_folder(tmp_path / "bot", session=session, channels=telegram(fake_api))
        async with Workers(config) as workers:
            posts = [("/webhooks/telegram", update(chat * 1000 + n, chat)) for n in range(1, 61) for chat in range(1, 11)]
            load = asyncio.ensure_future(post_all(workers.url, posts, concurrency=32, fresh_connections=True))
            await fake_api.wait_for(150, "/sendMessage", timeout=30)
            config.write_text(config.read_text().replace("initial_state = {'count': 0}", "initial_state = {'count': 1000}"))
            workers.process.send_signal(signal.SIGHUP)
            statuses = await load
            assert Counter(statuses) == {200: 600}, workers.logs()
            await fake_api.wait_for(600, "/sendMessage", timeout=30)  # answered first: the last may follow
            for chat, counts in replies_by_chat(fake_api).items():
                assert sorted(counts) == list(range(1, 61)), f"chat {chat}"
            assert await post_all(workers.url, [("/webhooks/telegram", update(99_000, 99))], concurrency=1) == [200]
            assert replies_by_chat(fake_api)[99] == [1001], "the new workers did not read bot.config.py again"
            pids = await workers.pids_serving("/webhooks/telegram", 601)
            assert len(pids) >= 3, f"the workers were not replaced: {pids}\n{workers.logs()}"
            assert "Handling signal: hup" in workers.err.read_text()
            assert await workers.stop(signal.SIGINT) == 0, workers.logs()


def test_an_unreachable_store_stops_start_with_one_line(tmp_path):
    config = bot_folder(tmp_path / "bot", session={
        "driver": "redis", "stores": {"redis": {"url": f"redis://127.0.0.1:{free_port()}/0"}}, "timeout": 1})
    result = run_cli("start", "--config", str(config), "--workers", "2", "--port", str(free_port()))
    assert result.returncode == 1
    assert "cannot reach Redis" in result.stderr and "Traceback" not in result.stderr


def test_workers_refuse_a_store_that_lives_in_one_process(tmp_path):
    config = bot_folder(tmp_path / "bot", session={"driver": "memory"})
    result = run_cli("start", "--config", str(config), "--workers", "2", "--port", str(free_port()))
    assert result.returncode == 2
    assert "session.driver" in result.stderr and "--workers" in result.stderr
