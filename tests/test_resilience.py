"""Resilience: a platform's retries, 429 and 5xx storms, a platform that stops answering, fuzzed bodies on
every channel, bodies over the size limit.

The short form runs by default (CI); ``BOTKIT_FULL=1`` runs the full form: 1,000 fuzzed bodies per channel
instead of 50, bigger storms, and the tests marked ``slow``. (A session store restarted under load is
tests/test_store_outage.py's subject.)
"""
from __future__ import annotations

import asyncio
import collections
import os
import random

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings

from botkit import Bot, SendError
from tests.fuzz_bodies import CHANNELS, LiveBot, Spec, channel_ids
from tests.support import Served, make_config

FULL = os.environ.get("BOTKIT_FULL") == "1"
FUZZ_EXAMPLES = 1000 if FULL else 50
full_only = pytest.mark.skipif(not FULL, reason="full form only: set BOTKIT_FULL=1")

TOKEN = "123456:resilience"
SECRET = "resilience-secret"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


def update(update_id: int, chat_id: int = 16423, text: str = "hi") -> dict:
    chat = {"id": chat_id, "type": "private"}
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 1700000000, "chat": chat,
                                                "from": {"id": chat_id, "is_bot": False, "first_name": "Ada"}, "text": text}}


def telegram_bot(fake_api, tmp_path, handler, session=None, **http) -> Bot:
    config = make_config(
        tmp_path,
        channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}},
        http={"attempts": 3, "backoff": 0.01, "max_wait": 0.05, **http},
        session=session or {},
    )
    return Bot(config, handler=handler)


class CountingBot:
    """The counting bot, noting which sends failed for good (the handler then raises: the session is
    left as it was and the platform still gets its 200)."""

    def __init__(self, pause: float = 0.0) -> None:
        self.pause = pause
        self.gave_up: collections.Counter[int] = collections.Counter()

    async def __call__(self, context) -> None:
        count = context.state["count"] + 1
        context.set_state({"count": count})
        if self.pause:
            await asyncio.sleep(self.pause)
        try:
            await context.send_text(f"Count: {count}")
        except SendError:
            self.gave_up[context.event.meta["chat_id"]] += 1
            raise


# -- a platform's retries ---------------------------------------------------------------------------------

async def test_a_retry_while_the_first_delivery_is_still_running_is_handled_once(fake_api, tmp_path):
    bot = telegram_bot(fake_api, tmp_path, CountingBot(pause=0.05))
    async with Served(bot) as served:
        copies = [served.post("/webhooks/telegram", json=update(77), headers=HEADERS) for _ in range(5)]
        responses = await asyncio.gather(*copies, served.post("/webhooks/telegram", json=update(78), headers=HEADERS))
        assert [r.status for r in responses] == [200] * 6
        assert (await bot.store.load("telegram:16423"))["state"] == {"count": 2}
    assert sorted(c.json["text"] for c in fake_api.calls) == ["Count: 1", "Count: 2"]


async def test_a_retry_after_a_restart_is_still_handled_once(fake_api, tmp_path):
    session = {"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "sessions")}}}
    for update_id in (5, 5, 6):  # each delivery reaches a freshly started bot over the same store
        async with Served(telegram_bot(fake_api, tmp_path, CountingBot(), session)) as served:
            assert (await served.post("/webhooks/telegram", json=update(update_id), headers=HEADERS)).status == 200
    assert [c.json["text"] for c in fake_api.calls] == ["Count: 1", "Count: 2"]


def live_channel(spec: Spec) -> Spec:
    reason = spec.available()
    if reason:
        pytest.skip(reason)
    return spec


@pytest.mark.parametrize("spec", CHANNELS, ids=channel_ids(CHANNELS))
def test_every_channel_acknowledges_a_redelivered_event_without_handling_it_again(spec, tmp_path):
    with LiveBot(live_channel(spec), tmp_path) as live:
        assert live.post_valid(1) == 200
        assert live.post_valid(1) == 200
        assert live.handled == 1
        assert live.post_valid(2) == 200
        assert live.handled == 2


# -- 429 and 5xx storms -------------------------------------------------------------------------------------

class Storm:
    """The Bot API failing its first ``failures`` calls (429 with retry_after, a 5xx, or a dropped
    connection), then answering again; every call is noted as (chat, text, answered)."""

    def __init__(self, kind: str, failures: int, rng: random.Random | None = None, rate: float = 1.0) -> None:
        self.kind = kind
        self.left = failures
        self.rng = rng
        self.rate = rate
        self.log: list[tuple[int, str, bool]] = []

    async def __call__(self, request: web.Request, call) -> web.StreamResponse:
        body = call.json
        failing = self.left > 0 and (self.rng is None or self.rng.random() < self.rate)
        self.log.append((body["chat_id"], body["text"], not failing))
        if not failing:
            return web.json_response({"ok": True, "result": {"message_id": len(self.log)}})
        self.left -= 1
        if self.kind == "dropped":
            request.transport.close()
            return web.Response()
        if self.kind == "429":
            return web.json_response({"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 0",
                                      "parameters": {"retry_after": 0.01}}, status=429)
        return web.json_response({"ok": False, "error_code": int(self.kind), "description": "storm"}, status=int(self.kind))

    def check(self, bot: CountingBot, attempts: int, chats: int, per_chat: int) -> dict[int, int]:
        """Each chat's calls, in order, are sends that succeeded after fewer than ``attempts`` failures or
        gave up after exactly ``attempts``, as often as its handler saw SendError; its replies count 1, 2, …
        without a gap or a repeat. Returns each chat's count of delivered replies."""
        delivered = {}
        for chat in range(1, chats + 1):
            calls = [(text, answered) for c, text, answered in self.log if c == chat]
            failures_in_a_row, gave_up, replies = 0, 0, []
            for text, answered in calls:
                if answered:
                    replies.append(text)
                    failures_in_a_row = 0
                    continue
                failures_in_a_row += 1
                if failures_in_a_row == attempts:
                    gave_up, failures_in_a_row = gave_up + 1, 0
            assert failures_in_a_row == 0, f"chat {chat}: a send stopped retrying early"
            assert gave_up == bot.gave_up[chat], f"chat {chat}: SendError without {attempts} failed attempts"
            assert replies == [f"Count: {n}" for n in range(1, len(replies) + 1)], f"chat {chat}: {replies}"
            assert len(replies) + gave_up == per_chat
            delivered[chat] = len(replies)
        return delivered


async def storm_run(fake_api, tmp_path, storm: Storm, chats: int, per_chat: int, attempts: int = 3) -> None:
    fake_api.on("sendMessage", handler=storm)
    counting = CountingBot()
    bot = telegram_bot(fake_api, tmp_path, counting, attempts=attempts)
    async with Served(bot) as served:
        posts = [served.post("/webhooks/telegram", json=update(chat * 1000 + n, chat_id=chat), headers=HEADERS)
                 for n in range(per_chat) for chat in range(1, chats + 1)]
        assert {r.status for r in await asyncio.gather(*posts)} == {200}
        delivered = storm.check(counting, attempts, chats, per_chat)
        for chat, count in delivered.items():
            record = await bot.store.load(f"telegram:{chat}")
            assert (record["state"]["count"] if record else 0) == count
        assert sum(counting.gave_up.values()) > 0 and sum(delivered.values()) > 0
        assert (await served.get("/healthz")).status == 200
        storm.left = 0  # the platform is back
        assert (await served.post("/webhooks/telegram", json=update(10**9, chat_id=1), headers=HEADERS)).status == 200
        assert storm.log[-1] == (1, f"Count: {delivered[1] + 1}", True)


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "dropped"])
async def test_a_storm_of_failures_gives_send_error_after_the_attempts_and_corrupts_no_session(fake_api, tmp_path, kind):
    chats, per_chat = (50, 20) if FULL else (10, 5)
    await storm_run(fake_api, tmp_path, Storm(kind, failures=chats * per_chat), chats, per_chat)


@pytest.mark.slow
@full_only
@pytest.mark.parametrize("kind", ["429", "503"])
async def test_a_long_patchy_outage_under_load(fake_api, tmp_path, kind):
    """Two thousand updates over a hundred chats while half the calls fail, at random, for a long while."""
    storm = Storm(kind, failures=2_000, rng=random.Random(7), rate=0.5)
    await storm_run(fake_api, tmp_path, storm, chats=100, per_chat=20, attempts=4)


# -- a platform that stops answering --------------------------------------------------------------------------

async def test_a_platform_that_stops_answering_times_out_into_send_error_and_the_server_keeps_serving(fake_api, tmp_path):
    answering = asyncio.Event()

    async def hang(request, call):
        await answering.wait()
        return web.json_response({"ok": True, "result": {}})

    fake_api.on("sendMessage", handler=hang)
    caught: list[SendError] = []

    async def handler(context):
        count = context.state["count"] + 1
        context.set_state({"count": count})
        try:
            await context.send_text(f"Count: {count}")
        except SendError as exc:
            caught.append(exc)
            raise

    chats = 20 if FULL else 3
    bot = telegram_bot(fake_api, tmp_path, handler, timeout=0.3, attempts=2)
    try:
        async with Served(bot) as served:
            loop = asyncio.get_running_loop()
            started = loop.time()
            webhooks = asyncio.gather(*(served.post("/webhooks/telegram", json=update(chat, chat_id=chat), headers=HEADERS)
                                        for chat in range(1, chats + 1)))
            await fake_api.wait_for(chats, "sendMessage")
            health = await served.get("/healthz")
            assert health.status == 200 and (await health.json())["in_flight"] == chats
            responses = await asyncio.wait_for(webhooks, 30)
            assert [r.status for r in responses] == [200] * chats
            assert loop.time() - started >= 2 * 0.3  # each send waited out both attempts' timeouts
            assert len(caught) == chats and all(exc.status is None and "Timeout" in str(exc) for exc in caught)
            assert len(fake_api.calls_to("sendMessage")) == 2 * chats
            for chat in range(1, chats + 1):
                assert await bot.store.load(f"telegram:{chat}") is None  # left as it was: no session yet
            answering.set()
            assert (await served.post("/webhooks/telegram", json=update(100, chat_id=1), headers=HEADERS)).status == 200
            assert fake_api.calls[-1].json == {"chat_id": 1, "text": "Count: 1"}
    finally:
        answering.set()


# -- fuzzed bodies ----------------------------------------------------------------------------------------

FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=not FULL,
                suppress_health_check=list(HealthCheck))


SIGNED_ANSWERS = {200, 400, 413}
"""A signed body reaches the parser: 400 unless it is an event (200); 413 when a huge field took it over
server.client_max_size."""


@pytest.mark.parametrize("spec", CHANNELS, ids=channel_ids(CHANNELS))
def test_fuzzed_bodies_get_a_4xx_run_no_handler_and_leave_the_server_serving(spec, tmp_path):
    with LiveBot(live_channel(spec), tmp_path) as live:
        answers: collections.Counter[int] = collections.Counter()

        @FUZZ
        @given(body=spec.bodies())
        def signed(body: bytes) -> None:
            handled = live.handled
            status = live.post(body)
            answers[status] += 1
            assert status in (SIGNED_ANSWERS if spec.signable(body) else SIGNED_ANSWERS | {401}), f"{status} for {body!r}"
            if status != 200:
                assert live.handled == handled, f"a handler ran for a {status}: {body!r}"

        @settings(FUZZ, max_examples=max(10, FUZZ_EXAMPLES // 5))
        @given(body=spec.bodies())
        def unsigned(body: bytes) -> None:
            handled = live.handled
            assert live.post(body, signed=False) in (401, 413), repr(body)  # 413: over the limit, never read
            assert live.handled == handled

        signed()
        unsigned()
        assert live.crashes == []
        assert answers[400] > 0, answers
        handled = live.handled
        assert live.post_valid(10**6) == 200 and live.handled == handled + 1


@pytest.mark.parametrize("spec", CHANNELS, ids=channel_ids(CHANNELS))
def test_a_body_over_client_max_size_is_413_and_runs_no_handler(spec, tmp_path):
    limit = 64 * 1024
    with LiveBot(live_channel(spec), tmp_path, server={"client_max_size": limit}) as live:
        over, at = padded(spec, 1, limit + 1), padded(spec, 2, limit)
        assert live.post(over) == 413
        assert live.handled == 0
        assert live.post(at) not in (413, 500)
        assert live.post_valid(3) == 200
        assert live.handled >= 1


def padded(spec: Spec, n: int, size: int) -> bytes:
    """A valid body of exactly ``size`` bytes: a field the platform does not define, filled up."""
    doc = spec.valid(n)
    doc["padding"] = ""
    bare = len(spec.encode(doc))
    doc["padding"] = "x" * (size - bare)
    body = spec.encode(doc)
    assert len(body) == size
    return body


# -- abusive clients: a flood beside a real conversation ------------------------------------------------------

FLOOD_CLIENT = r'''
import asyncio, collections, json, sys

import aiohttp


def forwarded(n):
    return {"X-Forwarded-For": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}


async def sessions(url, n, clients, concurrency):
    statuses = collections.Counter()
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        async def one(i):
            async with limit, http.post(url + "/api/session", headers=forwarded(i % clients)) as response:
                await response.read()
                statuses[response.status] += 1
        await asyncio.gather(*(one(i) for i in range(n)))
    return statuses


async def slow(port, n, secret, within):
    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /webhooks/telegram HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\nX-Telegram-Bot-Api-Secret-Token: " + secret.encode() + b"\r\n\r\n{")
        await writer.drain()
        try:
            answer = await asyncio.wait_for(reader.read(), within)
        except (TimeoutError, ConnectionError):
            answer = b""
        writer.close()
        return answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "no answer"
    return collections.Counter(await asyncio.gather(*(one() for _ in range(n))))


async def unsigned(url, n, size, concurrency):
    statuses = collections.Counter()
    body = b"x" * size
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        async def one():
            try:
                async with limit, http.post(url + "/webhooks/telegram", data=body,
                                            headers={"Content-Type": "application/json"}) as response:
                    await response.read()
                    statuses[response.status] += 1
            except aiohttp.ClientError as exc:
                statuses[type(exc).__name__] += 1
        await asyncio.gather(*(one() for _ in range(n)))
    return statuses


async def streams(url, sessions, per_session, hold):
    statuses = collections.Counter()
    open_ = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        tokens = []
        for i in range(sessions + 1):
            async with http.post(url + "/api/session", headers=forwarded(100_000 + i)) as response:
                tokens.append((await response.json())["token"])
        for token in tokens[:-1]:
            for _ in range(per_session):
                response = await http.get(url + "/api/events", headers={"Authorization": "Bearer " + token})
                statuses[response.status] += 1
                if response.status == 200:
                    await response.content.readuntil(b"\n\n")
                    open_.append(response)
        extra = await http.get(url + "/api/events", headers={"Authorization": "Bearer " + tokens[-1]})
        print("ready", flush=True)
        await asyncio.sleep(hold)
        statuses["one more: %d" % extra.status] += 1
        for response in open_:
            response.close()
    return statuses


kind, *args = sys.argv[1:]
if kind == "sessions":
    result = asyncio.run(sessions(args[0], int(args[1]), int(args[2]), int(args[3])))
elif kind == "slow":
    result = asyncio.run(slow(int(args[0]), int(args[1]), args[2], float(args[3])))
elif kind == "unsigned":
    result = asyncio.run(unsigned(args[0], int(args[1]), int(args[2]), int(args[3])))
else:
    result = asyncio.run(streams(args[0], int(args[1]), int(args[2]), float(args[3])))
print(json.dumps({str(k): v for k, v in result.items()}), flush=True)
'''


class Legit:
    """A Telegram user writing to the bot every 10 ms while a flood runs; each answer's latency is kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self.paused = False
        self.statuses: collections.Counter[int] = collections.Counter()

    async def run(self, until: asyncio.Event) -> list[float]:
        import aiohttp

        loop = asyncio.get_running_loop()
        latencies = []
        async with aiohttp.ClientSession() as http:
            while not until.is_set():
                if self.paused:
                    await asyncio.sleep(0.05)
                    continue
                self.sent += 1
                started = loop.time()
                async with http.post(self.url + "/webhooks/telegram", json=update(self.sent, chat_id=777), headers=HEADERS) as answer:
                    await answer.read()
                    self.statuses[answer.status] += 1
                latencies.append(loop.time() - started)
                await asyncio.sleep(0.01)
        return latencies


async def peak_rss(pid: int, until: asyncio.Event) -> int:
    """The highest resident set size of ``pid`` (KiB) seen until ``until`` is set."""
    from bench.procs import status_kib

    peak = 0
    while not until.is_set():
        peak = max(peak, status_kib(pid, "VmRSS"))
        await asyncio.sleep(0.05)
    return max(peak, status_kib(pid, "VmRSS"))


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


@pytest.mark.slow
@full_only
async def test_a_flood_of_abusive_requests_leaves_a_telegram_conversation_answering(fake_api, tmp_path):
    """Session-creation floods, bodies that never arrive, large unsigned bodies and a thousand idle event
    streams against `botkit start` (the default settings, but 5 s read timeouts to keep the run short and
    127.0.0.1 as a trusted proxy so that X-Forwarded-For can play many clients). For each: the server's CPU
    and peak memory per abusive request, and the p99 latency of a Telegram user's webhooks meanwhile."""
    import json
    import sys

    import aiohttp

    from bench.procs import cpu_seconds, status_kib
    from tests.support import BotProcess

    config = tmp_path / "bot.config.py"
    config.write_text(
        'app = "examples.counter.bot:app"\ninitial_state = {"count": 0}\n'
        f'channels = {{"telegram": {{"access_token": {TOKEN!r}, "secret_token": {SECRET!r}, "api_base": {fake_api.url!r}}}, "web": {{}}}}\n'
        'server = {"read_timeout": 5, "header_timeout": 5, "trusted_proxies": ["127.0.0.1"]}\n')
    rows = []
    async with BotProcess(config) as bot:
        pid = bot.process.pid
        legit = Legit(bot.url)
        log = bytearray()

        async def drain() -> None:  # the server's log: a full pipe would stop the server
            while chunk := await bot.process.stdout.read(65536):
                log.extend(chunk)

        draining = asyncio.ensure_future(drain())

        async def quiet_window(seconds: float = 12.0) -> float:
            """The server's CPU share (of one core) while the flood's connections are only held and the
            legit user pauses."""
            legit.paused = True
            await asyncio.sleep(0.5)
            before = cpu_seconds(pid)
            await asyncio.sleep(seconds)
            share = (cpu_seconds(pid) - before) / seconds
            legit.paused = False
            return share

        async def phase(name: str, abusive: int, flood: tuple[str, ...] | None, seconds: float = 5.0) -> dict:
            cpu_before, rss_before, sent_before = cpu_seconds(pid), status_kib(pid, "VmRSS"), legit.sent
            until = asyncio.Event()
            sender = asyncio.ensure_future(legit.run(until))
            sampler = asyncio.ensure_future(peak_rss(pid, until))
            result: dict = {}
            held = None  # the share of a core while the flood's connections were only held
            if flood is None:
                await asyncio.sleep(seconds)
            else:
                client = await asyncio.create_subprocess_exec(sys.executable, "-c", FLOOD_CLIENT, *flood,
                                                              stdout=asyncio.subprocess.PIPE)
                assert client.stdout is not None
                lines = []
                async for line in client.stdout:
                    lines.append(line)
                    if line.strip() == b"ready":
                        held = await quiet_window()
                await client.wait()
                result = json.loads(lines[-1])
            until.set()
            latencies, peak = await sender, await sampler
            row = {"name": name, "abusive": abusive, "result": result, "cpu": cpu_seconds(pid) - cpu_before,
                   "legit": legit.sent - sent_before, "p99": p99(latencies), "rss_before": rss_before, "peak": peak,
                   "rss_after": status_kib(pid, "VmRSS"), "held": held}
            rows.append(row)
            async with aiohttp.ClientSession() as http, http.get(bot.url + "/healthz") as health:
                assert health.status == 200, f"/healthz after {name}: {health.status}"
            return row

        try:
            quiet = await phase("no flood (baseline)", 0, None)
            legit_cpu = quiet["cpu"] / max(1, quiet["legit"])
            streams = await phase("1,000 idle event streams, 25 s", 1000, ("streams", bot.url, "125", "8", "25"))
            assert streams["result"] == {"200": 1000, "one more: 503": 1}
            refused = await phase("3,000 new sessions, one client", 3000, ("sessions", bot.url, "3000", "1", "50"))
            assert refused["result"] == {"201": 10, "429": 2990}
            many = await phase("3,000 new sessions, 3,000 clients", 3000, ("sessions", bot.url, "3000", "3000", "50"))
            created = many["result"].get("201", 0)  # at most sessions_per_minute (300) less those made this minute
            assert created <= 300 - 10 and created + many["result"]["429"] == 3000
            slow = await phase("500 bodies that never arrive", 500, ("slow", str(bot.port), "500", SECRET, "30"))
            assert slow["result"] == {"408": 500}
            large = await phase("300 unsigned 1 MiB bodies", 300, ("unsigned", bot.url, "300", str(1024 * 1024), "20"))
            assert large["result"] == {"401": 300}
        finally:
            draining.cancel()
            await asyncio.gather(draining, return_exceptions=True)
    assert b"Traceback" not in log, log.decode(errors="replace")[-3000:]

    replies = [int(c.json["text"].removeprefix("Count: ")) for c in fake_api.calls_to("sendMessage") if c.json["chat_id"] == 777]
    assert legit.statuses == {200: legit.sent} and replies == list(range(1, legit.sent + 1))
    print(f"\n{'flood':38} {'abusive':>8} {'CPU ms/abusive':>15} {'peak RSS KiB/abusive':>21} {'RSS growth MiB':>15} "
          f"{'legit webhooks':>15} {'legit p99 ms':>13}")
    for row in rows:
        own = row["cpu"] - row["legit"] * legit_cpu
        per = f"{own / row['abusive'] * 1000:.3f}" if row["abusive"] else f"{legit_cpu * 1000:.3f} (legit)"
        peak = f"{(row['peak'] - row['rss_before']) / row['abusive']:.1f}" if row["abusive"] else "-"
        print(f"{row['name']:38} {row['abusive']:>8} {per:>15} {peak:>21} {(row['rss_after'] - row['rss_before']) / 1024:>15.1f} "
              f"{row['legit']:>15} {row['p99'] * 1000:>13.1f}")
    resolution = 100 / os.sysconf("SC_CLK_TCK") / 12
    print(f"1,000 idle event streams, once open (12 s, the legit user paused): {rows[1]['held'] * 100:.2f} % of a core "
          f"(the process clock resolves {resolution:.2f} %)")
