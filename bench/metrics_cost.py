"""``python -m bench --metrics``: what ``server.metrics = True`` costs. Each botkit row gets a twin with
metrics on (``<row> (metrics)``), run right after it between the same baselines; while the twin is loaded
this scrapes its ``/metrics`` every ``SCRAPE_EVERY`` seconds, as a Prometheus server would (but more
often). With ``--repeat N`` the runs alternate off, on, off, on…, and the cost is taken over the medians."""
from __future__ import annotations

import statistics
import threading
import time
import urllib.request
from dataclasses import replace
from typing import Any

from bench.scenarios import Row

VARIANT = "metrics"
SCRAPE_EVERY = 1.0


def with_twins(rows: list[Row]) -> list[Row]:
    """Each plain botkit row followed by its metrics-on twin."""
    out: list[Row] = []
    for row in rows:
        out.append(row)
        if not row.is_baseline and row.peer is None and row.variant is None:
            out.append(replace(row, variant=VARIANT))
    return out


class Scraper:
    """GET ``url`` every ``SCRAPE_EVERY`` seconds in a thread until stopped; counts the answers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.scrapes = 0
        self.failures = 0
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(SCRAPE_EVERY):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    self.bytes = len(response.read())
                    self.scrapes += 1
            except OSError:
                self.failures += 1


def comparison(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per row with a twin: the median req/s and ratio to the baselines beside, off and on, and the cost."""
    found = []
    for twin in sorted({run["row"] for run in runs if run["variant"] == VARIANT}):
        plain = twin.replace(f" ({VARIANT})", "")
        off = [run for run in runs if run["row"] == plain]
        on = [run for run in runs if run["row"] == twin]
        if not off or not on:
            continue
        entry: dict[str, Any] = {"row": plain, "runs": [len(off), len(on)]}
        for key, pick in (("rps", lambda run: run["closed"]["rps"]), ("ratio", lambda run: run.get("ratio")),
                          ("cpu_us", lambda run: -run["closed"]["server_cpu_us_per_request"])):
            a = [value for run in off if (value := pick(run)) is not None]
            b = [value for run in on if (value := pick(run)) is not None]
            if a and b:
                entry[f"{key}_off"], entry[f"{key}_on"] = statistics.median(a), statistics.median(b)
                entry[f"{key}_cost_percent"] = 100.0 * (1 - entry[f"{key}_on"] / entry[f"{key}_off"])
        if "cpu_us_off" in entry:  # negated above so that a cost is positive alike; shown as µs
            entry["cpu_us_off"], entry["cpu_us_on"] = -entry["cpu_us_off"], -entry["cpu_us_on"]
            entry["cpu_us_cost_percent"] = 100.0 * (entry["cpu_us_on"] / entry["cpu_us_off"] - 1)
        entry["scrapes"] = sum(run.get("scrapes", 0) for run in on)
        found.append(entry)
    return found


def print_comparison(found: list[dict[str, Any]]) -> None:
    if not found:
        return
    print("\nmetrics on vs off (medians; cost = how much less throughput with metrics on)")
    for entry in found:
        print(f"  {entry['row']}: {entry['rps_off']:.0f} → {entry['rps_on']:.0f} req/s "
              f"(cost {entry['rps_cost_percent']:+.1f}%); vs baseline {entry.get('ratio_off', float('nan')):.3f} → "
              f"{entry.get('ratio_on', float('nan')):.3f} (cost {entry.get('ratio_cost_percent', float('nan')):+.1f}%); "
              f"server CPU {entry.get('cpu_us_off', float('nan')):.0f} → {entry.get('cpu_us_on', float('nan')):.0f} µs/request "
              f"(cost {entry.get('cpu_us_cost_percent', float('nan')):+.1f}%); "
              f"runs {entry['runs'][0]}+{entry['runs'][1]}, {entry['scrapes']} scrapes of /metrics")


def recording_cost(requests: int = 200_000) -> dict[str, float]:
    """What metrics add to one request, measured in this process (CPU time, so other processes on the machine
    barely move it): the calls a webhook's request makes with metrics on, and one scrape's exposition."""
    from botkit.observe import metrics

    metrics.enable()

    def one_request() -> None:
        metrics.webhook("telegram", 200)
        metrics.lease_wait(0.0002)
        metrics.store_call("begin", 0.0001)
        metrics.seen("telegram:12345")
        metrics.send("telegram", 200, 0)
        metrics.handler_seconds("telegram", 0.0004)
        metrics.store_call("commit", 0.0001)
        metrics.event("telegram", "text", "handled", {})

    started = time.process_time()
    for _ in range(requests):
        one_request()
    per_request = (time.process_time() - started) / requests
    started = time.process_time()
    for _ in range(100):
        metrics.sample(inbox_depth=0, inbox_oldest_age=None, steps_due=0)
        body, _ = metrics.exposition()
    per_scrape = (time.process_time() - started) / 100
    return {"recording_us_per_request": per_request * 1e6, "scrape_ms": per_scrape * 1e3, "scrape_bytes": len(body)}


def hot_path_ab(blocks: int = 20, per_block: int = 2000) -> dict[str, float]:
    """The memory row's path in this process (telegram webhook → verify, parse, dispatch on the memory
    driver, the counting bot, one send to a stub that answers at once, the 200), ``per_block`` requests with
    metrics off, then on, alternately ``blocks`` times: the median CPU per request of each."""
    import asyncio

    import orjson
    from multidict import CIMultiDict

    import botkit.observe.metrics as metrics
    from botkit.app.bot import Bot
    from botkit.app.config import config_from_mapping
    from botkit.core.requests import Request
    from botkit.http import HttpClient

    class Answering(HttpClient):
        async def _attempts(self, *args: Any) -> tuple[int | None, Any, int]:
            return 200, {"ok": True, "result": {}}, 1

    async def counter(context: Any) -> None:
        count = context.state["count"] + 1
        context.set_state({"count": count})
        await context.send_text(f"Count: {count}")

    config = config_from_mapping({
        "app": counter, "initial_state": {"count": 0}, "server": {"ack_within": None},
        "session": {"driver": "memory", "stores": {"memory": {"max_size": 100_000}}},
        "channels": {"telegram": {"access_token": "1:x", "secret_token": "s", "api_base": "http://127.0.0.1:9"}}})
    headers = CIMultiDict({"X-Telegram-Bot-Api-Secret-Token": "s", "Content-Type": "application/json"})
    metrics.enable()
    live, off = metrics._live, None

    async def run() -> dict[str, list[float]]:
        bot = Bot(config, http=Answering())
        await bot.start()
        seconds: dict[str, list[float]] = {"off": [], "on": []}
        update = 0
        try:
            for _ in range(blocks):
                for arm in ("off", "on"):
                    metrics._live = live if arm == "on" else off
                    started = time.process_time()
                    for _ in range(per_block):
                        update += 1
                        body = orjson.dumps({"update_id": update, "message": {"message_id": update, "date": 1700000000,
                                             "text": "hi", "chat": {"id": update % 1000, "type": "private"}}})
                        reply = await bot.receive("telegram", Request("POST", "/webhooks/telegram", headers, body=body))
                        assert reply.status == 200
                    seconds[arm].append((time.process_time() - started) / per_block)
                    metrics.flush()
        finally:
            metrics._live = live
            await bot.stop()
        return seconds

    seconds = asyncio.run(run())
    off_us, on_us = statistics.median(seconds["off"]) * 1e6, statistics.median(seconds["on"]) * 1e6
    return {"off_us_per_request": off_us, "on_us_per_request": on_us, "cost_percent": 100 * (on_us / off_us - 1)}


if __name__ == "__main__":
    figures = recording_cost()
    print(f"metrics on: {figures['recording_us_per_request']:.2f} µs of CPU per request recorded; one scrape "
          f"{figures['scrape_ms']:.2f} ms ({figures['scrape_bytes']} bytes)")
    path = hot_path_ab()
    print(f"the memory row's path in one process, off/on alternately, medians: {path['off_us_per_request']:.1f} → "
          f"{path['on_us_per_request']:.1f} µs of CPU per request (cost {path['cost_percent']:+.1f}%)")
