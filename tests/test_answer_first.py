"""Answer the platform first: a handler that takes 30 s on every webhook channel at once. Every webhook
is answered within ack_within, every reply still reaches the platform, in each chat's order."""
from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import os
import re
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote_plus

import aiohttp
import orjson

from botkit import Bot
from botkit.shell.server import tune_gc
from tests.fuzz_bodies import (
    LineSpec,
    MessengerSpec,
    Spec,
    TeamsSpec,
    TelegramSpec,
    TwilioSpec,
    WebSpec,
    WhatsAppCloudSpec,
)
from tests.support import FakeAPI, Served, eventually, make_config

SLOW = float(os.environ.get("BOTKIT_SLOW_HANDLER", "30"))
"""Seconds the first message of every chat takes (an LLM call, say)."""
ACK_WITHIN = 0.5
CHATS, MESSAGES = 20, 10
PAGES: dict[str, list[int]] = {}
REPLY = re.compile(r"([a-z_]+:[^\s\"#&]+) #(\d+)")

SPECS: dict[str, Spec] = {
    "telegram": TelegramSpec("telegram", "telegram", "", "/webhooks/telegram"),
    "messenger": MessengerSpec("messenger", "messenger", "", "/webhooks/messenger"),
    "whatsapp_cloud": WhatsAppCloudSpec("whatsapp-cloud", "whatsapp_cloud", "", "/webhooks/whatsapp_cloud"),
    "line": LineSpec("line", "line", "", "/webhooks/line"),
    "sms": TwilioSpec("sms", "sms", "", "/webhooks/sms"),
    "whatsapp": TwilioSpec("whatsapp-twilio", "whatsapp", "", "/webhooks/whatsapp", prefix="whatsapp:"),
    "teams": TeamsSpec("teams", "teams", "", "/webhooks/teams"),
}


def body(name: str, chat: int, n: int, api: str) -> Any:
    """The channel's valid message ``n`` from chat ``chat`` (a session of its own)."""
    doc = copy.deepcopy(SPECS[name].valid(chat * 1000 + n))
    if name == "telegram":
        doc["message"]["chat"]["id"] = doc["message"]["from"]["id"] = 5000 + chat
    elif name == "messenger":
        doc["entry"][0]["messaging"][0]["sender"]["id"] = str(2468013000 + chat)
    elif name == "whatsapp_cloud":
        value = doc["entry"][0]["changes"][0]["value"]
        value["messages"][0]["from"] = value["contacts"][0]["wa_id"] = f"1650555{chat:04d}"
    elif name == "line":
        doc["events"][0]["source"]["userId"] = f"U{chat:032x}"
    elif name in ("sms", "whatsapp"):
        doc["From"] = SPECS[name].prefix + f"+1555123{chat:04d}"  # type: ignore[attr-defined]
    elif name == "teams":
        doc["conversation"]["id"] = f"19:chat{chat}@thread.tacv2"
        doc["serviceUrl"] = api + "/"
    return doc


async def handler(context: Any) -> None:
    count = context.state.get("count", 0) + 1
    if count == 1:
        await asyncio.sleep(SLOW)
    context.set_state({"count": count})
    await context.send_text(f"{context.session.id} #{count}")


def replies(api: FakeAPI) -> dict[str, list[int]]:
    """Each session's reply numbers, in the order they reached the platform."""
    found: dict[str, list[int]] = {}
    for call in api.calls:
        text = call.body.decode(errors="replace")
        if call.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            text = unquote_plus(text)
        for key, count in REPLY.findall(text):
            found.setdefault(key, []).append(int(count))
    return found


async def test_a_30_second_handler_on_every_channel_answers_within_ack_within_and_loses_no_reply(tmp_path):
    api = FakeAPI()
    await api.start()
    live = SimpleNamespace(api=api, port=0, token=None)
    await SPECS["teams"].prepare_api(live)  # type: ignore[arg-type]
    channels = {name: spec.settings(live) for name, spec in SPECS.items()}  # type: ignore[arg-type]
    channels["whatsapp_cloud"]["adapter"] = "whatsapp"
    channels["web"] = WebSpec("web", "web", "", "/api/chat").settings(live)  # type: ignore[arg-type]
    config = make_config(tmp_path, initial_state={}, server={"ack_within": ACK_WITHIN, "access_log": False},
                         channels=channels, http={"attempts": 2})
    bot = Bot(config, handler=handler)
    latencies: list[float] = []
    statuses: list[int] = []
    async with served_as_started(), Served(bot) as served, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        live.port = int(served.url.rsplit(":", 1)[1])
        tokens = {}
        for chat in range(CHATS):
            async with http.post(served.url + "/api/session") as response:
                tokens[chat] = (await response.json())["token"]
        streams = [asyncio.ensure_future(read_events(http, served.url, tokens[chat])) for chat in range(CHATS)]

        async def chat_on(name: str, chat: int, start: float) -> None:
            await asyncio.sleep(start)  # conversations start over a second, not all in one millisecond
            for n in range(1, MESSAGES + 1):
                if name == "web":
                    raw = orjson.dumps({"text": "hi", "id": f"m{chat}-{n}"})
                    headers = {"Authorization": f"Bearer {tokens[chat]}", "Content-Type": "application/json"}
                    path = "/api/chat"
                else:
                    spec = SPECS[name]
                    raw = spec.encode(body(name, chat, n, api.url))
                    headers = {"Content-Type": spec.content_type, **spec.sign(live, raw)}  # type: ignore[arg-type]
                    path = spec.path
                started = time.perf_counter()
                async with http.post(served.url + path, data=raw, headers=headers) as response:
                    answer = await response.read()
                    statuses.append(response.status)
                if name == "web":  # a reply ready in time comes in the answer, a later one on the page's stream
                    for message in orjson.loads(answer)["messages"]:
                        PAGES.setdefault(tokens[chat], []).append(int(REPLY.findall(message["text"])[0][1]))
                latencies.append(time.perf_counter() - started)

        names = [*SPECS, "web"]
        await asyncio.gather(*(chat_on(name, chat, (chat * len(names) + i) / (CHATS * len(names)))
                               for i, name in enumerate(names) for chat in range(CHATS)))
        assert set(statuses) == {200} and len(statuses) == 8 * CHATS * MESSAGES
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"\n{len(latencies)} webhooks on 8 channels, handler {SLOW:g} s: p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
              f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms (ack_within {ACK_WITHIN} s)")
        assert p99 <= ACK_WITHIN + 0.05

        expected = 7 * CHATS * MESSAGES
        await eventually(lambda: sum(len(v) for v in replies(api).values()) >= expected, timeout=SLOW + 60)
        done, _ = await asyncio.wait(streams, timeout=SLOW + 60)
        assert len(done) == CHATS, f"web pages got {[len(PAGES[t]) for t in tokens.values()]} of {MESSAGES} messages"
        web = [stream.result() for stream in streams]
    await api.close()
    by_session = replies(api)
    assert len(by_session) == 7 * CHATS
    for key, counts in by_session.items():
        assert counts == list(range(1, MESSAGES + 1)), key
    for counts in web:
        assert sorted(counts) == list(range(1, MESSAGES + 1))  # answers and stream are two paths


@contextlib.asynccontextmanager
async def served_as_started() -> AsyncIterator[None]:
    """The collector tuned as `botkit start` tunes it (``tune_gc``), and the test session's own heap (every
    test module, the SDKs they import) set aside, so that a full collection walks the server's objects, as
    in a server, not the whole suite's: otherwise the latencies measure the test run's heap."""
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    tune_gc()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


async def read_events(http: aiohttp.ClientSession, url: str, token: str) -> list[int]:
    """The web page's event stream: the reply numbers, until all of the chat's have come."""
    counts = PAGES.setdefault(token, [])
    async with http.get(url + "/api/events", headers={"Authorization": f"Bearer {token}"},
                        timeout=aiohttp.ClientTimeout(total=None)) as response:
        async for line in response.content:
            if line.startswith(b"data: ") and b"#" in line:
                counts.append(int(REPLY.findall(orjson.loads(line[6:])["text"])[0][1]))
            if len(counts) == MESSAGES:
                return counts
    return counts
