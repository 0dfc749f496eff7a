"""The rows of the bench: which server, which session driver, how many workers, and how to start it."""
from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import peers
from bench.peers import Launch
from bench.procs import python

TOKEN = "123456:bench-token"
SECRET = "bench-secret-token"
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_PREFIX = f"botkit-bench:{os.getpid()}:"
POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_TABLE = f"botkit_bench_sessions_{os.getpid()}"
"""Named after this runner, so that benches run at once by others on the same Redis and PostgreSQL
neither share sessions nor empty each other's."""
SERVICES = {"redis": ("127.0.0.1", 6379), "postgres": ("127.0.0.1", 5432)}
CACHED = "postgres+redis-cache"
"""The driver option of the cache rows: PostgreSQL with Redis in front (``session.cache = "redis"``)."""
INBOX_ACK_WITHIN = 1.0
"""``server.ack_within`` of the inbox rows: botkit's default (the webhook waits up to a second for its handler)."""


@dataclass(frozen=True)
class Row:
    """One server set-up. ``variant`` names a launch variant (see bench.launch) for ablation rows; ``peer``
    another framework running the same bot (see bench.peers), ``driver`` then naming its session driver.

    ``ack_within`` is the generated config's ``server.ack_within``: None (every row but the inbox ones)
    answers each webhook once its handler has run, as the baseline does and as botkit did before the
    inbox; a number stores the events in the driver's inbox and answers after at most that many seconds
    (the ``… inbox`` rows). ``handler_ms``: the handler sleeps that long before counting (the table of
    ``--handler-ms``; 0 everywhere else)."""

    driver: str | None  # None: the no-framework baseline
    workers: int = 1
    variant: str | None = None
    peer: str | None = None
    ack_within: float | None = None
    handler_ms: int = 0

    @property
    def inbox(self) -> bool:
        return self.ack_within is not None

    @property
    def is_baseline(self) -> bool:
        return self.driver is None

    @property
    def name(self) -> str:
        name = self.peer or self.driver or "baseline"
        if self.inbox:
            name += " inbox"
        if self.variant:
            name += f" ({self.variant})"
        return f"{name} ×{self.workers}" if self.workers > 1 else name


MAIN_ROWS = [Row("memory"), Row("memory", ack_within=INBOX_ACK_WITHIN), Row("file"),
             Row("redis"), Row("redis", ack_within=INBOX_ACK_WITHIN), Row("postgres"),
             Row("file", 2), Row("redis", 2), Row("postgres", 2)]
"""The memory driver has no ×2 row: its sessions live in one process, so it refuses to be shared. Each
``… inbox`` row follows the answer-after row of its driver (docs/performance.md, "Answer first")."""
INBOX_ROWS = [Row("redis", 2, ack_within=INBOX_ACK_WITHIN), Row("postgres", ack_within=INBOX_ACK_WITHIN),
              Row("postgres", 2, ack_within=INBOX_ACK_WITHIN)]
"""More inbox rows, run only when named (``--rows "redis ×2,redis inbox ×2"``): across two workers the
webhook's process and the handler's may differ, and the handler's tells the webhook's over the live bus."""
CACHE_ROWS = [Row(CACHED), Row(CACHED, 2)]
"""PostgreSQL with a Redis cache, run only when named (``--rows "postgres,postgres+redis-cache"``)."""
ABLATION_ROWS = [Row("memory", variant="access log"), Row("memory", variant="no history"),
                 Row("memory", variant="no uvloop"), Row("memory", variant="stdlib json"),
                 Row("memory", variant="default gc"), Row(None, variant="gc tuned")]
PEER_ROWS = [Row("memory", peer="bottender"), Row("memory", peer="bottender", variant="answer first")]
"""Bottender 1.5.5 on its memory session driver: answering the webhook once the bot has run (``sync``, as
botkit and the baseline do), and as Bottender does by default for Telegram (200 first, the bot after)."""
CONFIG_VARIANTS = {"access log", "no history", "metrics"}
"""Variants made in the generated bot.config.py; the others are bench.launch's."""


def unavailable(row: Row) -> str | None:
    """Why the row cannot run on this checkout and machine, or None when it can."""
    if row.peer:
        return peers.unavailable(row.peer)
    if row.workers > 1 and importlib.util.find_spec("botkit.shell.workers") is None:
        return "--workers not available (botkit/workers.py not written yet)"
    for driver in ("redis", "postgres") if row.driver == CACHED else (row.driver,):
        if driver not in ("redis", "postgres"):
            continue
        module = f"botkit.storage.{driver}"
        if importlib.util.find_spec(module) is None:
            return f"driver not available ({module.replace('.', '/')}.py not written yet)"
        try:
            importlib.import_module(module)
        except Exception as exc:
            return f"driver not available ({type(exc).__name__}: {exc})"
        host, port = SERVICES[driver]
        try:
            socket.create_connection((host, port), timeout=1.0).close()
        except OSError:
            return f"{driver} not reachable on {host}:{port} (bash scripts/services.sh)"
    return None


def store_settings(driver: str, workdir: Path) -> dict[str, Any]:
    if driver == "memory":
        return {"max_size": 100_000}  # more than the bench's users: no eviction
    if driver == "file":
        return {"dirname": str(workdir / "sessions")}
    if driver == "redis":
        return {"url": REDIS_URL, "prefix": REDIS_PREFIX}
    if driver == "postgres":
        return {"dsn": POSTGRES_DSN, "table": POSTGRES_TABLE}
    return {}


def write_config(row: Row, workdir: Path, port: int, api_base: str) -> Path:
    """The bench bot's bot.config.py: the example counting bot behind the Telegram webhook."""
    assert row.driver is not None
    session: dict[str, Any] = {"driver": row.driver, "stores": {row.driver: store_settings(row.driver, workdir)}}
    if row.driver == CACHED:
        session = {"driver": "postgres", "cache": "redis", "stores": {
            "postgres": store_settings("postgres", workdir), "redis": store_settings("redis", workdir)}}
    if row.variant == "no history":
        session["history"] = 0
    settings: dict[str, Any] = {
        "app": "bench.slow_counter:app" if row.handler_ms else "examples.counter.bot:app",
        "initial_state": {"count": 0},
        "session": session,
        "channels": {"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": api_base}},
        "server": {"host": "127.0.0.1", "port": port, "access_log": row.variant == "access log",
                   "ack_within": row.ack_within, "metrics": row.variant == "metrics"},
    }
    if row.handler_ms:
        settings["bench_handler_ms"] = row.handler_ms  # read by bench.slow_counter (the config's extra)
    path = workdir / "bot.config.py"
    path.write_text("".join(f"{name} = {value!r}\n" for name, value in settings.items()))
    return path


def server_launch(row: Row, workdir: Path, port: int, api_base: str) -> Launch:
    if row.peer == "bottender":
        return peers.bottender(port, api_base, TOKEN, max_size=store_settings("memory", workdir)["max_size"],
                               sync=row.variant != "answer first")
    return Launch(server_argv(row, workdir, port, api_base))


def server_argv(row: Row, workdir: Path, port: int, api_base: str) -> list[str]:
    """The command of a baseline or botkit row."""
    assert row.peer is None, row
    if row.is_baseline:
        argv = python("bench.baseline", "--port", str(port), "--api-base", api_base, "--token", TOKEN,
                      "--secret", SECRET, "--workers", str(row.workers))
        return [*argv, "--tune-gc"] if row.variant == "gc tuned" else argv
    config = write_config(row, workdir, port, api_base)
    command = ["start", "--config", str(config), "--port", str(port)]
    if row.workers > 1:
        command += ["--workers", str(row.workers)]
    if row.variant and row.variant not in CONFIG_VARIANTS:
        return python("bench.launch", row.variant, *command)
    return [botkit_script(), *command]


def botkit_script() -> str:
    """The installed ``botkit`` command of this interpreter (not a shim that would add a process)."""
    script = Path(sys.executable).parent / "botkit"
    return str(script) if script.exists() else (shutil.which("botkit") or "botkit")


def clean_store(driver: str | None) -> None:
    """Forget what a run left in a shared store, so every run starts from no session."""
    if driver == CACHED:
        clean_store("redis")
        clean_store("postgres")
    elif driver == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=REDIS_PREFIX + "*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
        finally:
            client.close()
    elif driver == "postgres":
        import asyncio

        import asyncpg

        async def drop() -> None:
            """The session table and those botkit names after it (``_counters``, the inbox's ``_inbox``…)."""
            connection = await asyncpg.connect(POSTGRES_DSN)
            try:
                names = await connection.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND (tablename = $1 OR starts_with(tablename, $1 || '_'))", POSTGRES_TABLE)
                if names:  # at once, CASCADE: the _history table's foreign key names the session table
                    await connection.execute("DROP TABLE IF EXISTS " + ", ".join(f'"{name}"' for (name,) in names)
                                             + " CASCADE")
            finally:
                await connection.close()

        asyncio.run(drop())
