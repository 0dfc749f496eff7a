"""The load generator: Telegram updates from many users over keep-alive connections, in its own process.

Closed loop (default): every connection sends its next update as soon as the previous one is answered,
so ``--connections`` requests are always in flight: the maximum throughput. Open loop (``--rate``):
updates are due at a fixed rate whatever the server does, and each latency counts from the moment
the update was due, so a slow server's queueing shows in the percentiles (no coordinated omission).

Only requests due in the measured window (after ``--warmup``, for ``--duration``) are counted; the
result is one JSON object on stdout.

End to end (``--api``, the fake Bot API's address): before the load it asks the fake API to mark each
chat's count and log the arrival of every reply from then on; after the load it waits until every
webhook answered 200 has had its reply (or none came for ``--reply-wait`` seconds), fetches the log and
matches the k-th request it sent to a chat with that chat's k-th reply (the counting bot's ``Count: N``,
less the count at the mark). A request's end-to-end latency runs from when it was due (as the webhook
latency does) to when its reply reached the fake API; both processes read ``time.monotonic()``.
``replies_rps`` counts the replies that arrived inside the measured window. Two requests of one chat in
flight at once may be handled in the other order than sent: the match then swaps their two latencies.

    python -m bench.loadgen --url http://127.0.0.1:5000/webhooks/telegram --secret S [--rate 1500] [--api URL]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from time import monotonic as clock  # the fake API stamps replies with the same clock
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench.http11 import FramingError, request, status_of, take_message
from bench.loop import install_uvloop

SECRET_HEADER = b"X-Telegram-Bot-Api-Secret-Token"
UPDATE = (
    b'{"update_id":%d,"message":{"message_id":%d,"from":{"id":%d,"is_bot":false,"first_name":"User",'
    b'"language_code":"en"},"chat":{"id":%d,"first_name":"User","type":"private"},"date":1700000000,'
    b'"text":"hello"}}'
)
FIRST_CHAT_ID = 100_000_000
CDF_POINTS = [1, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97, 98, 99, 99.5, 99.9, 100]


@dataclass
class Load:
    """The traffic: who sends, where, and which update id comes next (unique across runs)."""

    host: str
    port: int
    path: bytes
    headers: bytes
    users: int
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    next_id: int = field(default_factory=lambda: int(time.time() * 1_000_000))

    def next_request(self) -> tuple[bytes, int]:
        """The next update, and its chat."""
        update_id = self.next_id
        self.next_id += 1
        chat = FIRST_CHAT_ID + self.rng.randrange(self.users)
        body = UPDATE % (update_id, update_id, chat, chat)
        return request(b"POST", self.path, b"%s:%d" % (self.host.encode(), self.port), self.headers, body), chat


@dataclass
class Tally:
    """Latencies (ms) and statuses of the requests due inside the measured window."""

    window: tuple[float, float]
    latencies: list[float] = field(default_factory=list)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    pending: int = 0

    def counts(self, due: float) -> bool:
        return self.window[0] <= due < self.window[1]

    def record(self, due: float, done: float, status: int | str) -> None:
        if self.counts(due):
            self.statuses[str(status)] += 1
            if status == 200:
                self.latencies.append((done - due) * 1000.0)


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due: float | None = None
        self.sent = -1
        """The index of the request in flight in the driver's log of sends."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.driver.idle(self)

    def send(self, due: float) -> None:
        self.due = due
        message, chat = self.driver.load.next_request()
        self.sent = self.driver.log_send(chat, due)
        self.transport.write(message)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            message = take_message(self.buffer)
        except FramingError:
            self.transport.close()  # type: ignore[union-attr]
            return
        if message is None:
            return
        due, self.due = self.due, None
        if due is not None:
            self.driver.answered(due, status_of(message[0]), self.sent)
        self.driver.idle(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.due is not None:
            self.driver.answered(self.due, "connection lost", self.sent)
            self.due = None
        self.driver.lost(self)


class Driver:
    """Feeds due requests to idle connections; reconnects lost ones while the run lasts."""

    def __init__(self, load: Load, tally: Tally, end: float, rate: float | None) -> None:
        self.load = load
        self.tally = tally
        self.end = end
        self.rate = rate
        self.loop = asyncio.get_running_loop()
        self.waiting: collections.deque[float] = collections.deque()
        self.free: list[Connection] = []
        self.in_flight = 0
        self.reconnects = 0
        self.answered_ok = 0
        self.finished = asyncio.Event()
        self.sent_chats: list[int] = []
        self.sent_due: list[float] = []
        self.sent_ok = bytearray()
        """Every request sent, in order: its chat, when it was due, whether it was answered 200."""

    def log_send(self, chat: int, due: float) -> int:
        self.sent_chats.append(chat)
        self.sent_due.append(due)
        self.sent_ok.append(0)
        return len(self.sent_ok) - 1

    async def connect(self) -> None:
        await self.loop.create_connection(lambda: Connection(self), self.load.host, self.load.port)

    def idle(self, connection: Connection) -> None:
        now = clock()
        if self.rate is None and now < self.end:
            self._send(connection, now)
        elif self.waiting:
            self._send(connection, self.waiting.popleft())
        else:
            self.free.append(connection)
            self.check_finished()

    def check_finished(self) -> None:
        if clock() >= self.end and self.in_flight == 0 and not self.waiting:
            self.finished.set()

    def _send(self, connection: Connection, due: float) -> None:
        self.in_flight += 1
        if self.tally.counts(due):
            self.tally.pending += 1
        connection.send(due)

    def answered(self, due: float, status: int | str, sent: int) -> None:
        self.in_flight -= 1
        if status == 200:
            self.answered_ok += 1
            self.sent_ok[sent] = 1
        if self.tally.counts(due):
            self.tally.pending -= 1
        self.tally.record(due, clock(), status)

    def lost(self, connection: Connection) -> None:
        if connection in self.free:
            self.free.remove(connection)
        if clock() < self.end:
            self.reconnects += 1
            self.loop.create_task(self.connect())

    def due(self, when: float) -> None:
        if self.free:
            self._send(self.free.pop(), when)
        else:
            self.waiting.append(when)

    async def schedule(self, start: float) -> None:
        """Open loop: one request due every 1/rate seconds from ``start`` until the end."""
        assert self.rate is not None
        interval = 1.0 / self.rate
        next_due = start
        while next_due < self.end:
            now = clock()
            while next_due <= now and next_due < self.end:
                self.due(next_due)
                next_due += interval
            await asyncio.sleep(max(0.001, next_due - clock()))  # uvloop timers tick in ms: no busy loop


async def run(url: str, secret: str, connections: int, users: int, warmup: float, duration: float,
              rate: float | None, drain: float, api: str | None = None, reply_wait: float = 10.0) -> dict[str, Any]:
    if api is not None:
        get_json(api + "/mark")
    parts = urlsplit(url)
    headers = SECRET_HEADER + b": " + secret.encode() + b"\r\n"
    load = Load(parts.hostname or "127.0.0.1", parts.port or 80, (parts.path or "/").encode(), headers, users)
    start = clock() + 0.2  # connections open before the clock starts
    window = (start + warmup, start + warmup + duration)
    tally = Tally(window)
    driver = Driver(load, tally, window[1], rate)
    await asyncio.gather(*(driver.connect() for _ in range(connections)))
    if rate is not None:
        await asyncio.sleep(max(0.0, start - clock()))
        await driver.schedule(start)
    await asyncio.sleep(max(0.0, window[1] - clock()))
    driver.check_finished()
    try:
        await asyncio.wait_for(driver.finished.wait(), drain)
    except TimeoutError:
        pass
    result = summary(tally, duration, rate, connections, users)
    result.update(reconnects=driver.reconnects, ok_whole_run=driver.answered_ok)
    if api is not None:
        waited = await wait_for_replies(api, driver.answered_ok, reply_wait)
        result.update(end_to_end(driver, get_json(api + "/arrivals"), window))
        result["reply_wait_s"] = waited
    return result


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30.0) as answer:
        return orjson.loads(answer.read())


async def wait_for_replies(api: str, expected: int, patience: float) -> float:
    """Wait until the fake API has had ``expected`` replies since the mark, or none came for ``patience``
    seconds (a reply lost for good); the seconds waited."""
    began = last_change = clock()
    seen = -1
    while True:
        arrived = int(get_json(api + "/marked")["arrivals"])
        if arrived >= expected:
            break
        if arrived != seen:
            seen, last_change = arrived, clock()
        elif clock() - last_change > patience:
            break
        await asyncio.sleep(0.05)
    return clock() - began


def end_to_end(driver: Driver, arrivals: dict[str, list[float]], window: tuple[float, float]) -> dict[str, Any]:
    """Each request due in the window matched to its reply: the k-th request of a chat answered 200 and
    the chat's k-th reply since the mark (``arrivals``: per chat, [k, time, k, time, …])."""
    replies: dict[int, dict[int, float]] = {}
    duplicates = in_window = 0
    for name, flat in arrivals.items():
        mine: dict[int, float] = {}
        for k, at in zip(flat[::2], flat[1::2], strict=True):
            if int(k) in mine:
                duplicates += 1
            else:
                mine[int(k)] = at
            in_window += window[0] <= at < window[1]
        replies[int(name)] = mine
    seen: collections.Counter[int] = collections.Counter()
    latencies: list[float] = []
    missing = 0
    for chat, due, ok in zip(driver.sent_chats, driver.sent_due, driver.sent_ok, strict=True):
        if not ok:
            continue
        seen[chat] += 1
        if not window[0] <= due < window[1]:
            continue
        arrived = replies.get(chat, {}).get(seen[chat])
        if arrived is None:
            missing += 1
        else:
            latencies.append((arrived - due) * 1000.0)
    latencies.sort()
    extra = sum(max(0, len(mine) - seen[chat]) for chat, mine in replies.items())
    return {
        "replies_rps": in_window / (window[1] - window[0]),
        "e2e_ms": latency_summary(latencies),
        "e2e": {"matched": len(latencies), "missing": missing, "duplicates": duplicates, "extra": extra},
    }


def summary(tally: Tally, duration: float, rate: float | None, connections: int, users: int) -> dict[str, Any]:
    latencies = sorted(tally.latencies)
    ok = len(latencies)
    return {
        "mode": "closed" if rate is None else "open",
        "rate": rate,
        "connections": connections,
        "users": users,
        "duration": duration,
        "requests": sum(tally.statuses.values()),
        "ok": ok,
        "rps": ok / duration,
        "statuses": dict(tally.statuses),
        "unanswered": tally.pending,
        "latency_ms": latency_summary(latencies),
        "cdf": [[p, percentile(latencies, p)] for p in CDF_POINTS],
    }


def latency_summary(latencies: list[float]) -> dict[str, float | None]:
    """Percentiles of sorted latencies (ms)."""
    return {
        "p50": percentile(latencies, 50),
        "p90": percentile(latencies, 90),
        "p99": percentile(latencies, 99),
        "p99.9": percentile(latencies, 99.9),
        "max": latencies[-1] if latencies else None,
        "mean": sum(latencies) / len(latencies) if latencies else None,
    }


def percentile(ordered: list[float], p: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100.0))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--connections", type=int, default=64, help="requests in flight (closed loop), pool size (open loop)")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, help="requests per second, open loop; default: closed loop")
    parser.add_argument("--drain", type=float, default=15.0, help="seconds to wait for answers after the window")
    parser.add_argument("--api", help="the fake Bot API (http://host:port): measure end to end, webhook sent to reply in")
    parser.add_argument("--reply-wait", type=float, default=10.0,
                        help="with --api: give up waiting for the replies after this many seconds without one")
    args = parser.parse_args(argv)
    install_uvloop()
    result = asyncio.run(run(args.url, args.secret, args.connections, args.users, args.warmup, args.duration,
                             args.rate, args.drain, args.api, args.reply_wait))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")


if __name__ == "__main__":
    main()
