"""The bench: every row against the no-framework baseline, alternating, then the idle-session memory.

    python -m bench                       # the whole table (about 10 minutes), JSON in bench/results/
    python -m bench --rows memory --duration 5 --no-idle      # a quick look at one row
    python -m bench --peers               # adds Bottender running the same bot (Node.js and npm needed)
    python -m bench --rows "memory,memory inbox,redis,redis inbox" --handler-ms 200   # answer first

Each run starts its server afresh (``botkit start --config <generated>`` or the baseline), loads it for
``--warmup`` + ``--duration`` seconds with ``--connections`` requests in flight from ``--users`` users
(closed loop: the maximum throughput), then sends half that rate for the same time (open loop: the
latency a server has with headroom). Baselines run before and after every row; a row's ratio is its
throughput over the mean of the two baselines beside it, so drift on the machine cancels out.

Every server under test (the baseline too) runs pinned to one core, the load generator, the fake API and
this runner to another (``--no-pin`` to let the scheduler place them), so that a row's figures and its
ratio measure the same split of the machine on every run. The fake API checks the counting bot's replies:
each chat's counts must come 1, 2, … N with no repeat (a lost increment) and no gap. It also stamps each
reply's arrival, so every load reports the end-to-end latency (webhook sent to reply in) and the replies
per second beside the webhook's own latency: the ``… inbox`` rows (``server.ack_within`` 1.0: the webhook
stored, answered once handled or after a second) against the answer-after rows of their drivers.

``--handler-ms N`` adds a table where the handler sleeps N ms first, at a fixed rate (open loop), with
the inbox rows answering at once (``--handler-ack-within``, 0): their webhooks stay fast while the
replies take the handler's time.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson

from bench import metrics_cost, peers, procs
from bench.report import print_handler_table, print_table, summarise
from bench.scenarios import (
    ABLATION_ROWS,
    CACHE_ROWS,
    INBOX_ACK_WITHIN,
    INBOX_ROWS,
    MAIN_ROWS,
    PEER_ROWS,
    SECRET,
    Row,
    clean_store,
    server_launch,
    unavailable,
)

RESULTS = Path(__file__).resolve().parent / "results"
STORE_PROCESSES = {"redis": ("redis-server",), "postgres": ("postgres",)}
"""The store servers whose CPU belongs to a row's work (counted apart, not as other processes' noise)."""


@dataclass
class Settings:
    duration: float
    warmup: float
    connections: int
    users: int
    half: bool
    max_noise: float = 0.25
    retries: int = 2
    reply_wait: float = 10.0


class Bench:
    def __init__(self, settings: Settings, logs: Path, pinning: procs.Pinning | None = None) -> None:
        self.settings = settings
        self.logs = logs
        self.pinning = pinning
        self.api_port = procs.free_port()
        self.api = procs.spawn("fake_api", procs.python("bench.fake_api", "--port", str(self.api_port)), logs,
                               cpus=self.load_cpus)
        self.api_base = f"http://127.0.0.1:{self.api_port}"
        procs.wait_healthy(self.api, self.api_base + "/stats")

    def close(self) -> None:
        self.api.stop()

    @property
    def server_cpus(self) -> frozenset[int] | None:
        return self.pinning.server if self.pinning else None

    @property
    def load_cpus(self) -> frozenset[int] | None:
        return self.pinning.load if self.pinning else None

    def replies(self) -> int:
        return int(procs.get_json(self.api_base + "/stats")["requests"])  # type: ignore[index]

    def increments(self) -> dict[str, Any]:
        return procs.get_json(self.api_base + "/increments")  # type: ignore[return-value]

    def measure(self, row: Row, *, half: bool, rate: float | None = None) -> dict[str, Any]:
        """One run of one row: start its server, closed loop, open loop at half rate, stop; then the
        counts its replies carried (both loads, one server: each chat's counts go on from one to the next).
        With ``rate``: one open-loop load at that rate instead (``"open"``), for the slow-handler table."""
        port = procs.free_port()
        with tempfile.TemporaryDirectory(prefix="botkit-bench-") as workdir:
            clean_store(row.driver)
            procs.get_json(self.api_base + "/reset")
            launch = server_launch(row, Path(workdir), port, self.api_base)
            server = procs.spawn(f"server-{port}", launch.argv, self.logs, cpus=self.server_cpus, cwd=launch.cwd,
                                 env=launch.env)
            try:
                if launch.healthz:
                    procs.wait_healthy(server, f"http://127.0.0.1:{port}/healthz")
                else:
                    procs.wait_listening(server, port)
                url = f"http://127.0.0.1:{port}/webhooks/telegram"
                result: dict[str, Any] = {"row": row.name, "driver": row.driver, "workers": row.workers,
                                          "variant": row.variant, "peer": row.peer, "ack_within": row.ack_within,
                                          "handler_ms": row.handler_ms}
                scraper = metrics_cost.Scraper(f"http://127.0.0.1:{port}/metrics") if row.variant == metrics_cost.VARIANT else None
                with scraper or contextlib.nullcontext():
                    if rate is not None:
                        result["open"] = self.quiet_load(server, row, url, rate=rate)
                    else:
                        result["closed"] = self.quiet_load(server, row, url)
                if scraper is not None:
                    result |= {"scrapes": scraper.scrapes, "scrape_failures": scraper.failures, "metrics_bytes": scraper.bytes}
                if rate is None and half and result["closed"]["rps"] > 0:
                    result["half"] = self.quiet_load(server, row, url, rate=result["closed"]["rps"] / 2)
                result["peak_rss_bytes"] = server.peak_rss()
            finally:
                server.stop()
                clean_store(row.driver)
        result["increments"] = self.increments()
        # The baseline's ×N processes each count in their own dict: its repeats there are not lost updates.
        result["increments"]["checked"] = not (row.is_baseline and row.workers > 1)
        if server.process.returncode not in (0, -15):
            result["exit_status"] = server.process.returncode
        return result

    def quiet_load(self, server: procs.Child, row: Row, url: str, rate: float | None = None) -> dict[str, Any]:
        """A load run, repeated (up to ``retries`` times) while other processes on the machine took more
        than ``max_noise`` cores meanwhile: on a shared machine their bursts would pass for the server's."""
        attempts = []
        for _ in range(1 + self.settings.retries):
            attempts.append(self.observed_load(server, row, url, rate))
            if attempts[-1]["other_cpu_cores"] <= self.settings.max_noise:
                break
        best = min(attempts, key=lambda attempt: attempt["other_cpu_cores"])
        best["attempts"] = len(attempts)
        return best

    def observed_load(self, server: procs.Child, row: Row, url: str, rate: float | None) -> dict[str, Any]:
        """A load run with what it cost the server (and its Redis or PostgreSQL server) and what the rest
        of the machine did meanwhile."""
        store_processes = STORE_PROCESSES.get(row.driver or "", ())
        replies, cpu, store = self.replies(), server.cpu_seconds(), procs.named_cpu_seconds(store_processes)
        ours, busy = self.our_cpu(server), procs.machine_busy_seconds()
        began = time.monotonic()
        # The baseline's ×N processes count apart: a chat's counts repeat, its replies cannot be matched.
        result = self.load(url, rate, end_to_end=not (row.is_baseline and row.workers > 1))
        elapsed = time.monotonic() - began
        store = procs.named_cpu_seconds(store_processes) - store
        others = (procs.machine_busy_seconds() - busy) - (self.our_cpu(server) - ours) - store
        handled = max(1, result["ok_whole_run"])
        result["server_cpu_us_per_request"] = 1e6 * (server.cpu_seconds() - cpu) / handled
        if store_processes:
            result["store_cpu_us_per_request"] = 1e6 * store / handled
        result["replies_per_request"] = (self.replies() - replies) / handled
        result["other_cpu_cores"] = max(0.0, others / elapsed)
        return result

    def our_cpu(self, server: procs.Child) -> float:
        """CPU seconds of the bench's own processes: the server, the fake API, finished load generators."""
        return server.cpu_seconds() + self.api.cpu_seconds() + procs.children_cpu_seconds()

    def load(self, url: str, rate: float | None = None, end_to_end: bool = True) -> dict[str, Any]:
        s = self.settings
        argv = procs.python("bench.loadgen", "--url", url, "--secret", SECRET, "--connections", str(s.connections),
                            "--users", str(s.users), "--warmup", str(s.warmup), "--duration", str(s.duration))
        if rate is not None:
            argv += ["--rate", f"{rate:.1f}"]
        if end_to_end:
            argv += ["--api", self.api_base, "--reply-wait", str(s.reply_wait)]
        done = subprocess.run(argv, capture_output=True, env=procs.child_env(), cwd=procs.REPO,
                              timeout=s.warmup + s.duration + 300, preexec_fn=procs.on_cores(self.load_cpus))
        if done.returncode != 0:
            raise RuntimeError(f"the load generator failed:\n{done.stderr.decode(errors='replace')}")
        return orjson.loads(done.stdout)


def plan(rows: list[Row], half: bool) -> list[tuple[Row, bool]]:
    """Baseline, row, baseline, row, …, baseline, per worker count; (row, with an open-loop run)."""
    steps: list[tuple[Row, bool]] = []
    for workers in sorted({row.workers for row in rows}):
        group = [row for row in rows if row.workers == workers]
        steps.append((Row(None, workers), half))
        for row in group:
            steps += [(row, half), (Row(None, workers), False)]
    return steps


def handler_rows(rows: list[Row], handler_ms: int, ack_within: float) -> list[Row]:
    """The slow-handler table's rows: each inbox row among ``rows`` after its driver's answer-after row,
    the handler sleeping ``handler_ms``, the inbox rows answering after at most ``ack_within``."""
    chosen: list[Row] = []
    for row in rows:
        if row.inbox and row.peer is None and row.variant is None:
            chosen += [Row(row.driver, row.workers, handler_ms=handler_ms),
                       Row(row.driver, row.workers, ack_within=ack_within, handler_ms=handler_ms)]
    return chosen


def is_baseline(run: dict[str, Any]) -> bool:
    return run["driver"] is None and run["variant"] is None


def with_ratios(runs: list[dict[str, Any]]) -> None:
    for index, run in enumerate(runs):
        if is_baseline(run):
            continue
        beside = [runs[i]["closed"]["rps"] for i in (index - 1, index + 1)
                  if 0 <= i < len(runs) and is_baseline(runs[i]) and runs[i]["workers"] == run["workers"]]
        run["baseline_rps"] = sum(beside) / len(beside) if beside else None
        run["ratio"] = run["closed"]["rps"] / run["baseline_rps"] if beside else None
        replies = run["closed"].get("replies_rps")
        run["replies_ratio"] = replies / run["baseline_rps"] if beside and replies is not None else None


def idle_sessions(count: int) -> dict[str, Any]:
    done = subprocess.run(procs.python("bench.idle_sessions", "--sessions", str(count)), capture_output=True,
                          env=procs.child_env(), cwd=procs.REPO, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"bench.idle_sessions failed:\n{done.stderr.decode(errors='replace')}")
    return orjson.loads(done.stdout)


def machine(with_peers: bool = False) -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    packages = {}
    for name in ("aiohttp", "orjson", "uvloop", "redis", "asyncpg", "gunicorn"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    found = {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
             "kernel": platform.release(), "packages": packages, "botkit": botkit_under_test()}
    if with_peers:
        found["node"] = peers.node_version()
        found["packages"]["bottender"] = peers.installed_version()
    return found


def botkit_under_test() -> str:
    """Where the servers import botkit from (this checkout, through ``procs.child_env``'s PYTHONPATH, even
    when another checkout is installed in editable mode)."""
    done = subprocess.run([sys.executable, "-c", "import botkit; print(botkit.__file__)"], capture_output=True,
                          text=True, env=procs.child_env(), cwd=procs.REPO, timeout=60)
    return str(Path(done.stdout.strip()).parent) if done.returncode == 0 else f"not importable: {done.stderr[-300:]}"


def selected_rows(names: str | None, ablations: bool, with_peers: bool = False) -> list[Row]:
    """The main rows (and the ablation or peer rows), or the rows named, in table order."""
    everything = [*MAIN_ROWS, *INBOX_ROWS, *CACHE_ROWS, *ABLATION_ROWS, *PEER_ROWS]
    if not names:
        return [*MAIN_ROWS, *(ABLATION_ROWS if ablations else []), *(PEER_ROWS if with_peers else [])]
    wanted = {name.strip() for name in names.split(",")}
    chosen = [row for row in everything if row.name in wanted]
    unknown = wanted - {row.name for row in chosen}
    if unknown:
        known = ", ".join(row.name for row in everything)
        raise SystemExit(f"unknown row(s) {', '.join(sorted(unknown))}; known: {known}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", help="comma-separated row names (default: every main row)")
    parser.add_argument("--ablations", action="store_true", help="add the rows without uvloop, orjson, with the access log")
    parser.add_argument("--peers", action="store_true",
                        help="add the rows of other frameworks running the same bot (Bottender 1.5.5: needs Node.js and npm)")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the server to one core and the load generator and fake API to another")
    parser.add_argument("--pin-cpus", metavar="S,L",
                        help="the server's core and the load generator's (default: the first two this process may use)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1, help="run the whole plan this many times (medians are reported)")
    parser.add_argument("--no-half", action="store_true", help="skip the open-loop runs at half the maximum rate")
    parser.add_argument("--max-noise", type=float, default=0.25,
                        help="cores other processes may use during a load run before it is run again")
    parser.add_argument("--retries", type=int, default=2, help="runs again of a load run disturbed by other processes")
    parser.add_argument("--idle-sessions", type=int, default=100_000, help="sessions for the memory figure (0: skip)")
    parser.add_argument("--no-idle", action="store_true", help="skip the idle-session memory figure")
    parser.add_argument("--ack-within", type=float, default=INBOX_ACK_WITHIN,
                        help="server.ack_within of the inbox rows (seconds; the other rows answer after the handler)")
    parser.add_argument("--handler-ms", type=int, default=0,
                        help="add a table where the handler sleeps this many ms (open loop; the inbox rows and "
                             "their drivers' answer-after rows)")
    parser.add_argument("--handler-rate", type=float,
                        help="requests per second of that table (default: half what --connections sleeping "
                             "handlers can serve, connections × 500 / handler-ms)")
    parser.add_argument("--handler-ack-within", type=float, default=0.0,
                        help="server.ack_within of that table's inbox rows (default 0: answer once stored)")
    parser.add_argument("--reply-wait", type=float, default=10.0,
                        help="after a load, seconds without a new reply before the missing ones are given up")
    parser.add_argument("--metrics", action="store_true",
                        help="each botkit row also with server.metrics on, right after it, /metrics scraped every "
                             "second (with --repeat: off, on, off, on…; the cost over the medians)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)

    rows = [replace(row, ack_within=args.ack_within) if row.inbox else row
            for row in selected_rows(args.rows, args.ablations, args.peers)]
    if args.metrics:
        rows = metrics_cost.with_twins(rows)
    skipped = {row.name: reason for row in rows if (reason := unavailable(row))}
    for name, reason in skipped.items():
        print(f"bench: {name}: not available: {reason}", file=sys.stderr)
    runnable = [row for row in rows if row.name not in skipped]
    settings = Settings(args.duration, args.warmup, args.connections, args.users, not args.no_half,
                        args.max_noise, args.retries, args.reply_wait)
    slow = handler_rows(runnable, args.handler_ms, args.handler_ack_within) if args.handler_ms > 0 else []
    slow_rate = args.handler_rate or args.connections * 500.0 / max(1, args.handler_ms)
    if args.handler_ms > 0 and not slow:
        print("bench: --handler-ms: no inbox row among the rows run (memory inbox, redis inbox…): no table",
              file=sys.stderr)
    pinning = None if args.no_pin else procs.Pinning.choose(args.pin_cpus)
    if pinning is None and not args.no_pin:
        print("bench: fewer than two cores available: nothing is pinned", file=sys.stderr)
    if pinning is not None:
        os.sched_setaffinity(0, pinning.load)  # this runner, and the helpers it starts, beside the load generator
    steps = plan(runnable, settings.half) * args.repeat
    slow_steps = slow * args.repeat
    pinned = (f"server on core {','.join(map(str, sorted(pinning.server)))}, load generator and fake API on "
              f"{','.join(map(str, sorted(pinning.load)))}" if pinning else "not pinned")
    print(f"bench: {len(steps) + len(slow_steps)} runs of {args.warmup:g}+{args.duration:g} s; {len(skipped)} row(s) "
          f"not available; {pinned}; servers import botkit from {botkit_under_test()}", file=sys.stderr)
    runs: list[dict[str, Any]] = []
    slow_runs: list[dict[str, Any]] = []
    total = len(steps) + len(slow_steps)
    with tempfile.TemporaryDirectory(prefix="botkit-bench-logs-") as logs:
        bench = Bench(settings, Path(logs), pinning)
        try:
            for number, (row, half) in enumerate(steps, 1):
                started = time.monotonic()
                runs.append(bench.measure(row, half=half))
                progress(number, total, row, runs[-1]["closed"], started)
            for number, row in enumerate(slow_steps, len(steps) + 1):
                started = time.monotonic()
                slow_runs.append(bench.measure(row, half=False, rate=slow_rate))
                progress(number, total, row, slow_runs[-1]["open"], started, f" (handler {row.handler_ms} ms)")
        finally:
            bench.close()
    with_ratios(runs)
    idle = None if args.no_idle or not args.idle_sessions else idle_sessions(args.idle_sessions)
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(any(row.peer for row in runnable)),
        "settings": vars(settings) | {"repeat": args.repeat, "pinning": pinning.describe() if pinning else None},
        "rows": summarise(rows, runs, skipped),
        "idle_sessions": idle,
        "runs": runs,
    }
    if args.metrics:
        results["metrics_cost"] = metrics_cost.comparison(runs)
    if slow:
        results["handler"] = {"handler_ms": args.handler_ms, "rate": slow_rate, "ack_within": args.handler_ack_within,
                              "rows": summarise(slow, slow_runs, {}, load="open", baselines=False),
                              "runs": slow_runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print_table(results)
    metrics_cost.print_comparison(results.get("metrics_cost") or [])
    if slow:
        print_handler_table(results)
    print(f"\nresults: {args.out}")
    return 0


def progress(number: int, total: int, row: Row, load: dict[str, Any], started: float, note: str = "") -> None:
    e2e = load.get("e2e_ms", {}).get("p99")
    print(f"  [{number}/{total}] {row.name}{note}: {load['rps']:.0f} req/s, "
          f"p99 {load['latency_ms']['p99'] or float('nan'):.1f} ms"
          + ("" if e2e is None else f" (end to end {e2e:.1f} ms, {load['replies_rps']:.0f} replies/s)")
          + f", other processes used {load['other_cpu_cores']:.2f} cores ({time.monotonic() - started:.0f} s)",
          file=sys.stderr)
