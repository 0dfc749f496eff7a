"""Bot memory, the rate limit and several bots, as a user runs them: `botkit start` (with `--workers 2`)
in a subprocess, Telegram webhooks posted to it, replies going to a fake Bot API in this test, the store a
real Redis, PostgreSQL or a folder."""
from __future__ import annotations

import asyncio
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.stores import POSTGRES_DSN, REDIS_URL, bot_folder, postgres_store, redis_store
from tests.test_inbox_processes import Server
from tests.test_workers import HEADERS, SECRET, TOKEN

MEMORY_BOT = textwrap.dedent('''
    import os

    from botkit.storage.bot_memory import ValueTooLarge


    async def app(context):
        text = context.event.text or ""
        if text.startswith("set "):
            try:
                await context.bot_memory.set("note", text[4:])
            except ValueTooLarge as exc:
                await context.send_text(f"refused: {exc}")
                return
            await context.send_text("stored")
            return
        count = context.state["count"] + 1
        context.set_state({"count": count})
        seen = await context.bot_memory.get("seen:" + context.session.id, 0)
        await context.bot_memory.set("seen:" + context.session.id, seen + 1)
        note = await context.bot_memory.get("note")
        await context.send_text(f"Count: {count} seen: {seen + 1} note: {note} pid: {os.getpid()}")
''')


def message(update_id: int, chat_id: int, text: str = "hi") -> dict[str, Any]:
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 1700000000, "text": text,
                                                "chat": {"id": chat_id, "type": "private"}}}


def folder(path: Path, token: str, fake_api: Any, **settings: Any) -> Path:
    config = bot_folder(path, channels={"telegram": {"access_token": token, "secret_token": SECRET,
                                                      "api_base": fake_api.url}}, **settings)
    (path / "bot.py").write_text(MEMORY_BOT)
    return config


async def post(url: str, body: dict[str, Any]) -> int:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        async with http.post(url, json=body, headers=HEADERS) as response:
            await response.read()
            return response.status


def replies(fake_api: Any, chat: int, token: str = TOKEN) -> list[str]:
    return [call.json["text"] for call in fake_api.calls_to(f"/bot{token}/sendMessage") if call.json["chat_id"] == chat]


async def reply_to(fake_api: Any, url: str, update_id: int, chat: int, text: str = "hi", token: str = TOKEN) -> str:
    before = len(replies(fake_api, chat, token))
    assert await post(url, message(update_id, chat, text)) == 200
    for _ in range(200):
        found = replies(fake_api, chat, token)
        if len(found) > before:
            return found[before]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no reply to {text!r} in chat {chat}")


def pid_of(reply: str) -> str:
    return reply.rsplit("pid: ", 1)[1]


@pytest.fixture(params=["redis", "postgres", "file"])
async def store(request: Any, tmp_path: Path) -> Any:
    if request.param == "redis":
        async with redis_store(tmp_path) as opened:
            yield {"driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": opened.prefix}}}
    elif request.param == "postgres":
        async with postgres_store(tmp_path) as opened:
            yield {"driver": "postgres", "stores": {"postgres": {"dsn": POSTGRES_DSN, "table": opened.settings["table"]}}}
    else:
        yield {"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "sessions")}}}


async def test_bot_memory_set_in_one_worker_is_read_in_the_other_and_survives_a_restart(store, fake_api, tmp_path):
    config = folder(tmp_path / "bot", TOKEN, fake_api, session=store, bot_memory={"max_value_size": 1000})
    async with Server(config, "--workers", "2") as server:
        url = server.url + "/webhooks/telegram"
        assert await reply_to(fake_api, url, 1, 1, "set remember me") == "stored"
        pids: set[str] = set()
        for n in range(2, 60):
            reply = await reply_to(fake_api, url, n, n)
            assert reply.startswith("Count: 1 seen: 1 note: remember me "), reply
            pids.add(pid_of(reply))
            if len(pids) == 2:
                break
        assert len(pids) == 2, "one worker handled every message"
        refused = await reply_to(fake_api, url, 100, 1, "set " + "x" * 2000)
        assert refused.startswith("refused: bot memory 'note': the value is 2002 bytes of JSON, over "
                                  "bot_memory.max_value_size (1000)"), refused
    async with Server(config) as server:
        reply = await reply_to(fake_api, server.url + "/webhooks/telegram", 101, 2)
        assert reply.startswith("Count: 2 seen: 2 note: remember me "), reply


NOTICE = "You are sending too fast; wait a minute."


async def test_rate_limit_of_5_is_shared_by_two_workers_each_drop_answered_200_one_notice(store, fake_api, tmp_path):
    session = {**store, "rate_limit": 5, "rate_limit_notice": NOTICE}
    config = folder(tmp_path / "bot", TOKEN, fake_api, session=session)
    async with Server(config, "--workers", "2") as server:
        url = server.url + "/webhooks/telegram"
        spanned = 0
        for chat in range(1, 9):
            statuses = [await post(url, message(chat * 100 + n, chat)) for n in range(1, 9)]
            assert statuses == [200] * 8
            await fake_api.wait_for(6 * chat, "/sendMessage", timeout=20)
            await asyncio.sleep(0.3)  # nothing more comes
            found = replies(fake_api, chat)
            handled = [reply for reply in found if reply.startswith("Count:")]
            assert [reply.split(" seen")[0] for reply in handled] == [f"Count: {n}" for n in range(1, 6)], found
            assert Counter(found)[NOTICE] == 1 and len(found) == 6, found
            spanned += len({pid_of(reply) for reply in handled}) == 2
            if spanned >= 2:
                break
        assert spanned, "no chat's messages were handled by both workers"
        assert "over session.rate_limit (5 messages a minute)" in server.log.read_text()


SALES_TOKEN = "654321:XYZ-sales-token"


@pytest.mark.parametrize("workers", [1, 2])
async def test_two_bots_on_one_redis_keep_their_counts_and_memories_apart(workers, fake_api, tmp_path):
    async with redis_store(tmp_path) as opened:
        session = {"driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": opened.prefix}}}
        support = folder(tmp_path / "support", TOKEN, fake_api, session=session)
        sales = folder(tmp_path / "sales", SALES_TOKEN, fake_api, session=session)
        async with Server(support, "--config", str(sales), "--workers", str(workers)) as server:
            for n in range(1, 4):
                reply = await reply_to(fake_api, server.url + "/support/webhooks/telegram", n, 42)
                assert reply.startswith(f"Count: {n} seen: {n} note: None"), reply
            assert await reply_to(fake_api, server.url + "/sales/webhooks/telegram", 1, 42, "set sales only",
                                  token=SALES_TOKEN) == "stored"
            for n in range(2, 4):
                reply = await reply_to(fake_api, server.url + "/sales/webhooks/telegram", n, 42, token=SALES_TOKEN)
                assert reply.startswith(f"Count: {n - 1} seen: {n - 1} note: sales only"), reply
            reply = await reply_to(fake_api, server.url + "/support/webhooks/telegram", 4, 42)
            assert reply.startswith("Count: 4 seen: 4 note: None"), reply
            async with aiohttp.ClientSession() as http:
                async with http.post(server.url + "/webhooks/telegram", json=message(9, 42), headers=HEADERS) as response:
                    assert response.status == 404
        keys = sorted(key.decode() for key in await _keys(opened.prefix))
        assert f"{opened.prefix}support:session:telegram:42" in keys and f"{opened.prefix}sales:session:telegram:42" in keys
        assert f"{opened.prefix}support:bot_memory" in keys and f"{opened.prefix}sales:bot_memory" in keys


async def _keys(prefix: str) -> list[bytes]:
    from tests.stores import redis_keys

    return await redis_keys(REDIS_URL, prefix)
