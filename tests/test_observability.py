"""Observability as an operator meets it: Prometheus scraping `botkit start --workers 2`, one trace per
webhook across a web and a worker process, and logs (text or JSON) that hold no secret, token or message
text at INFO (docs/observability.md)."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.stores import REDIS_URL, bot_folder, free_port, redis_store
from tests.test_inbox_processes import Server
from tests.test_workers import HEADERS, SECRET, TOKEN, Workers, post_all, update

ROOT = Path(__file__).resolve().parents[1]


def telegram(fake_api: Any) -> dict[str, Any]:
    return {"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}}


def redis_session(store: Any) -> dict[str, Any]:
    return {"driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": store.prefix}}}


# -- Prometheus ----------------------------------------------------------------------------------------

class Prometheus:
    """Debian's prometheus, started by the test on a free port, scraping ``target`` every 500 ms."""

    def __init__(self, folder: Path, target: str) -> None:
        if shutil.which("prometheus") is None:
            reason = "prometheus is not on PATH; install Debian's prometheus package (scripts/services.sh does)"
            if os.environ.get("BOTKIT_REQUIRE_SERVICES") == "1":
                pytest.fail(reason)
            pytest.skip(reason)
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (folder / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n"
            f"scrape_configs:\n  - job_name: botkit\n    static_configs:\n      - targets: ['{target}']\n")
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Prometheus:
        with open(self.folder / "prometheus.log", "wb") as log:
            self.process = subprocess.Popen(
                ["prometheus", f"--config.file={self.folder / 'prometheus.yml'}", f"--storage.tsdb.path={self.folder / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"], stdout=log, stderr=subprocess.STDOUT)
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                assert self.process.poll() is None, (self.folder / "prometheus.log").read_text()[-3000:]
                try:
                    async with http.get(self.url + "/-/ready") as response:
                        if response.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("prometheus did not come up:\n" + (self.folder / "prometheus.log").read_text()[-3000:])

    async def __aexit__(self, *exc: Any) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    async def query(self, promql: str) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as http, http.get(self.url + "/api/v1/query", params={"query": promql}) as response:
            answer = await response.json()
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result


async def test_prometheus_scrapes_two_workers_and_counts_every_webhook(fake_api, tmp_path):
    sent = 40
    async with redis_store(tmp_path) as store:
        config = bot_folder(tmp_path / "bot", session=redis_session(store), channels=telegram(fake_api),
                            server={"metrics": True, "log_format": "json"})
        async with Workers(config, workers=2) as server:
            posts = [("/webhooks/telegram", update(n, n % 10 + 1)) for n in range(1, sent + 1)]
            assert await post_all(server.url, posts, concurrency=8, fresh_connections=True) == [200] * sent
            assert len(await pids_serving(server, "/webhooks/telegram", sent)) == 2, "both workers took webhooks"
            async with Prometheus(tmp_path / "prometheus", f"127.0.0.1:{server.port}") as prometheus:
                promql = 'sum(botkit_webhooks_total{channel="telegram",status="200"})'
                seen: list[dict[str, Any]] = []
                for _ in range(150):
                    seen = await prometheus.query(promql)
                    if seen and float(seen[0]["value"][1]) == sent:
                        break
                    await asyncio.sleep(0.2)
                assert seen and float(seen[0]["value"][1]) == sent, (seen, server.logs())
                handled = await prometheus.query('sum(botkit_events_total{channel="telegram",type="text",outcome="handled"})')
                assert float(handled[0]["value"][1]) == sent
                sends = await prometheus.query('sum(botkit_sends_total{channel="telegram",status="200"})')
                assert float(sends[0]["value"][1]) == sent
                timed = await prometheus.query('sum(botkit_handler_seconds_count{channel="telegram"})')
                assert float(timed[0]["value"][1]) == sent
                commits = await prometheus.query('sum(botkit_store_call_seconds_count{operation="commit"})')
                assert float(commits[0]["value"][1]) == sent
                depth = await prometheus.query("botkit_inbox_depth")
                assert depth and float(depth[0]["value"][1]) == 0
                dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
                for panel in dashboard["panels"]:
                    for target in panel["targets"]:  # each of the dashboard's queries is PromQL Prometheus takes
                        await prometheus.query(target["expr"].replace("$__rate_interval", "1m"))
    for line in (server.out.read_text() + server.err.read_text()).splitlines():  # gunicorn's lines too
        assert {"time", "level", "logger", "message"} <= set(json.loads(line)), line


async def pids_serving(server: Workers, path: str, requests: int) -> set[str]:
    """The pids in the JSON access log's lines (``<pid> client "POST path …"``) once ``requests`` are there."""
    for _ in range(100):
        lines = [json.loads(line) for line in server.out.read_text().splitlines()]
        served = [line["message"].split(">")[0].lstrip("<") for line in lines
                  if line["logger"] == "gunicorn.access" and f"POST {path} " in line["message"]]
        if len(served) >= requests:
            return set(served)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(served)} of {requests} requests to {path} in the access log")


async def test_metrics_are_off_by_default(fake_api, tmp_path):
    async with redis_store(tmp_path) as store:
        config = bot_folder(tmp_path / "bot", session=redis_session(store), channels=telegram(fake_api))
        async with Server(config) as server, aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as response:
            assert response.status == 404


# -- traces --------------------------------------------------------------------------------------------

def read_spans(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for file in sorted(folder.glob("spans-*.jsonl")) for line in file.read_text().splitlines()]


@pytest.fixture
def traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """botkit processes started by the test configure the OpenTelemetry SDK through BOTKIT_OTEL_SETUP."""
    pytest.importorskip("opentelemetry.sdk")
    spans = tmp_path / "spans"
    spans.mkdir()
    monkeypatch.setenv("BOTKIT_OTEL_SETUP", "tests.otel_setup:setup")
    monkeypatch.setenv("BOTKIT_TEST_SPANS", str(spans))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return spans


async def test_one_webhook_is_one_trace_across_the_web_and_the_worker_process(fake_api, tmp_path, traced):
    async with redis_store(tmp_path) as store:
        config = bot_folder(tmp_path / "bot", session=redis_session(store), channels=telegram(fake_api))
        async with Server(config, "--role", "web") as web, Server(config, "--role", "worker") as worker:
            async with aiohttp.ClientSession() as http:
                async with http.post(web.url + "/webhooks/telegram", json=update(1, 7), headers=HEADERS) as response:
                    assert response.status == 200
            await fake_api.wait_for(1, "/sendMessage", timeout=30)
            for _ in range(100):
                spans = read_spans(traced)
                if {"webhook", "handle"} <= {span["name"] for span in spans}:
                    break
                await asyncio.sleep(0.1)
            assert worker.process is not None and web.process is not None
            web_pid, worker_pid = web.process.pid, worker.process.pid
    assert len({span["trace_id"] for span in spans}) == 1, spans
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {"webhook", "verify", "parse", "inbox", "handle", "handler", "send"}, spans
    assert {by_name[name]["pid"] for name in ("webhook", "verify", "parse", "inbox")} == {web_pid}
    assert {by_name[name]["pid"] for name in ("handle", "handler", "send")} == {worker_pid}
    assert by_name["webhook"]["parent_id"] is None
    for child, parent in [("verify", "webhook"), ("parse", "webhook"), ("inbox", "webhook"), ("handle", "inbox"),
                          ("handler", "handle"), ("send", "handler")]:
        assert by_name[child]["parent_id"] == by_name[parent]["span_id"], (child, parent)
    assert by_name["send"]["attributes"]["http.response.status_code"] == 200
    assert by_name["webhook"]["attributes"]["botkit.channel"] == "telegram"


# -- logs ----------------------------------------------------------------------------------------------

PRIVATE_TEXT = "my-private-words-q7x"
ECHO_BOT = '''
async def app(context):
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text("you said " + (context.event.text or "") + " and the reply is private-reply-k2v")
'''


def said(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    body = update(update_id, chat_id)
    body["message"]["text"] = text
    return body


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_logs_at_info_hold_no_secret_token_or_message_text(log_format, fake_api, tmp_path, traced):
    async with redis_store(tmp_path) as store:
        config = bot_folder(tmp_path / "bot", session=redis_session(store), channels=telegram(fake_api),
                            server={"log_format": log_format, "metrics": True}, http={"backoff": 0.05})
        (config.parent / "bot.py").write_text(ECHO_BOT)
        fake_api.on("/sendMessage", status=500, times=1)  # a retried send logs its URL (which holds the bot token)
        async with Server(config) as server:
            async with aiohttp.ClientSession() as http:
                for n in (1, 2, 1):  # the third is a platform's redelivery of the first: a duplicate
                    async with http.post(server.url + "/webhooks/telegram", json=said(n, 42, f"{PRIVATE_TEXT} {n}"),
                                         headers=HEADERS) as response:
                        assert response.status == 200
                async with http.post(server.url + "/webhooks/telegram", json=said(9, 42, PRIVATE_TEXT),
                                     headers={"X-Telegram-Bot-Api-Secret-Token": "wrong-" + SECRET}) as response:
                    assert response.status == 401
                async with http.get(server.url + "/metrics") as response:
                    assert response.status == 200
            await fake_api.wait_for(3, "/sendMessage", timeout=30)
        output = server.log.read_text()
    lines = output.splitlines()
    assert any("retry" in line for line in lines), output
    for secret in (SECRET, TOKEN, TOKEN.split(":")[1], PRIVATE_TEXT, "private-reply-k2v", "telegram:42"):
        assert secret not in output, f"{secret!r} is in the log:\n{output}"
    if log_format == "json":
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        assert all({"time", "level", "logger", "message"} <= set(record) for record in records)
        duplicate = [record for record in records if "handled already" in record["message"]]
        assert len(duplicate) == 1, output
        assert duplicate[0]["channel"] == "telegram" and duplicate[0]["session_key"].startswith("telegram:#")
        assert duplicate[0]["event_id"] == "1" and len(duplicate[0]["trace_id"]) == 32
    else:
        assert all(not line.startswith("{") for line in lines)


def test_a_wrong_log_format_is_one_config_error_line(tmp_path):
    config = bot_folder(tmp_path / "bot", server={"log_format": "xml"})
    done = subprocess.run([sys.executable, "-m", "botkit", "start", "--config", str(config)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ['botkit: config error: server.log_format: must be "text" or "json", not \'xml\'']


# -- outcomes, in this process ----------------------------------------------------------------------------

async def test_events_are_counted_by_outcome_and_a_middleware_can_count_one_as_rate_limited(tmp_path):
    from botkit.observe import metrics
    from tests.stores import bot_on, memory_store, text_event

    async def limit(context: Any, call_next: Any) -> None:
        if context.event.text == "too many":
            metrics.count_as(context.event.meta, metrics.RATE_LIMITED)
            return
        await call_next(context)

    metrics.enable()
    before = counted_outcomes()
    async with memory_store(tmp_path) as store:
        bot = bot_on(store, tmp_path)
        bot.dispatcher.middleware.append(limit)
        await bot.dispatch([text_event(bot, event_id="1")])
        await bot.dispatch([text_event(bot, event_id="1")])
        await bot.dispatch([text_event(bot, text="too many", event_id="2")])
    after = counted_outcomes()
    assert {outcome: after.get(outcome, 0) - before.get(outcome, 0) for outcome in after} == {
        "handled": 1, "duplicate": 1, "rate_limited": 1}


async def test_messages_dropped_by_session_rate_limit_are_counted_as_rate_limited(tmp_path):
    from botkit.engine.rate_limit import RateLimit
    from botkit.observe import metrics
    from tests.stores import bot_on, memory_store, text_event

    metrics.enable()
    before = counted_outcomes()
    async with memory_store(tmp_path) as store:
        bot = bot_on(store, tmp_path)
        bot.dispatcher.middleware.insert(0, RateLimit(2, store.incr))
        for n in range(4):
            await bot.dispatch([text_event(bot, event_id=str(n))])
    after = counted_outcomes()
    changed = {outcome: after[outcome] - before.get(outcome, 0) for outcome in after}
    assert {outcome: n for outcome, n in changed.items() if n} == {"handled": 2, "rate_limited": 2}


def counted_outcomes() -> dict[str, float]:
    from botkit.observe import metrics

    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    found: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line.startswith('botkit_events_total{channel="test"'):
            outcome = line.split('outcome="')[1].split('"')[0]
            found[outcome] = found.get(outcome, 0) + float(line.rsplit(" ", 1)[1])
    return found


async def test_without_the_inbox_the_handler_and_its_sends_are_in_the_webhooks_trace(fake_api, tmp_path, traced):
    config = bot_folder(tmp_path / "bot", channels=telegram(fake_api), server={"ack_within": None})
    async with Server(config) as server, aiohttp.ClientSession() as http:
        async with http.post(server.url + "/webhooks/telegram", json=update(1, 7), headers=HEADERS) as response:
            assert response.status == 200
        for _ in range(100):
            spans = read_spans(traced)
            if "webhook" in {span["name"] for span in spans}:
                break
            await asyncio.sleep(0.1)
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {"webhook", "verify", "parse", "handler", "send"} and len(spans) == 5, spans
    assert len({span["trace_id"] for span in spans}) == 1
    assert by_name["handler"]["parent_id"] == by_name["webhook"]["span_id"]
    assert by_name["send"]["parent_id"] == by_name["handler"]["span_id"]


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_steps_due_and_their_lateness_are_sampled(kind, tmp_path, monkeypatch):
    from botkit.app import observing
    from botkit.engine.scheduler import Scheduler
    from botkit.observe import metrics
    from botkit.storage.steps import MemoryStepStore, Step
    from botkit.storage.steps.redis import RedisStepStore
    from tests.stores import unique

    metrics.enable()
    now = 1_000_000.0
    store = MemoryStepStore() if kind == "memory" else RedisStepStore(REDIS_URL, unique("test-steps-"))
    ran: list[str] = []

    async def run(step: Step) -> None:
        ran.append(step.id)

    scheduler = Scheduler(store, run, clock=lambda: now)
    await store.open()
    try:
        for n, due in enumerate((now - 30, now - 2, now + 60)):
            await store.add(Step(id=f"s{n}", key="test:1", slug="a", due=due, scheduled_at=now - 100, session_created_at=1.0))
        await observing.sample(None, scheduler, lambda: now)
        assert gauge("botkit_scheduled_steps_due") == 2
        late_before = gauge("botkit_scheduled_step_lateness_seconds_count")
        await scheduler.run_due()
        assert sorted(ran) == ["s0", "s1"]
        await observing.sample(None, scheduler, lambda: now)
        assert gauge("botkit_scheduled_steps_due") == 0
        assert gauge("botkit_scheduled_step_lateness_seconds_count") - late_before == 2
    finally:
        for step in ("s0", "s1", "s2"):
            await store.done(step)
        await store.close()


def gauge(name: str) -> float:
    from botkit.observe import metrics

    body, _ = metrics.exposition()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines() if line.split("{")[0].split(" ")[0] == name)
