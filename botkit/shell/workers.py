"""`botkit start --workers N`: N processes serving one port, managed by gunicorn.

gunicorn's master binds the port and forks the workers; each worker runs aiohttp's gunicorn worker
(uvloop when installed) and builds its own Bot from the same config, so each has its own store
connections and HTTP client. Sessions stay consistent because the shared stores lease each session
to one process at a time (docs/sessions.md). Signals to the master:

- SIGTERM, SIGINT: graceful stop: workers stop accepting, finish what they handle (up to
  ``server.shutdown_timeout``), close the store, exit;
- SIGHUP: graceful restart: bot.config.py is read again, new workers start, the old ones stop gracefully;
- TTIN / TTOU: one worker more / fewer.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import math
import os
import queue
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.worker import GunicornUVLoopWebWorker, GunicornWebWorker
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from botkit.app.config import Config, load_config
from botkit.core.errors import BotkitError, ConfigError
from botkit.observe import logs
from botkit.shell.server import BotRunner, WorkerAccessLog
from botkit.storage import driver_class

log = logging.getLogger("botkit.workers")

ACCESS_LOG_FORMAT = '%P %a "%r" %s %b %Tfs'
"""The single process's access log line, prefixed with the worker's pid (``WorkerAccessLog`` writes it)."""
LINGER = 0.5
"""Seconds a stopping worker still reads requests on connections it had accepted."""


def serve_workers(config: Config | Sequence[Config], workers: int, host: str | None = None, port: int | None = None,
                  role: str = "all") -> int:
    """Serve ``config``'s bot (or several bots, each under ``/<name>/``) from ``workers`` processes on one
    port until stopped; the exit status."""
    if workers < 1:
        raise BotkitError("--workers must be at least 1")
    configs = [config] if isinstance(config, Config) else list(config)
    for each in configs:
        driver = each.session["driver"]
        if not driver_class(driver).shared:
            raise ConfigError("session.driver", f"the {driver} driver keeps sessions inside one process, so workers "
                              "would each keep their own; with --workers use redis, postgres, mongo or file")
        _check_store(each)
    config = configs[0]
    server = config.server
    metrics_dir = _metrics_dir() if server["metrics"] else None
    master = _Master(configs, role, {
        "bind": [_address(host or server["host"], port if port is not None else server["port"])],
        "workers": workers,
        "worker_class": _worker_class(),
        "graceful_timeout": math.ceil(server["shutdown_timeout"] + LINGER) + 5,
        "accesslog": "-" if server["access_log"] else None,
        "errorlog": "-",
        "loglevel": logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower(),
        "proc_name": "botkit",
        "control_socket_disable": True,
        "post_fork": _heed_an_early_stop,
        "child_exit": _worker_exited if server["metrics"] else _nothing,
        "logger_class": JsonLogger if server["log_format"] == "json" else "gunicorn.glogging.Logger",
    })
    try:
        master.run()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _metrics_dir() -> str | None:
    """prometheus_client's multiprocess mode: each worker writes its figures to files in one folder, and a
    scrape of any worker sums them. The folder is the user's ``PROMETHEUS_MULTIPROC_DIR`` (kept), else a
    fresh one made here (removed on exit); set before the workers fork, so they import the client in it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    made = tempfile.mkdtemp(prefix="botkit-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


def _worker_exited(arbiter: Any, worker: Any) -> None:
    """A worker is gone: its live gauges (the sampled ones) no longer count; its counters still do."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _nothing(arbiter: Any, worker: Any) -> None:
    pass


class JsonLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with ``server.log_format = "json"``: its own lines (the master's, the access log) too."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        logs.install("json", ("gunicorn.error", "gunicorn.access"))


class _Master(BaseApplication):  # type: ignore[misc]
    """gunicorn's application: settings from botkit, each worker's app from the bot config."""

    def __init__(self, configs: list[Config], role: str, options: dict[str, Any]) -> None:
        self.configs = configs
        self.role = role
        self.options = options
        super().__init__(prog="botkit")

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def reload(self) -> None:
        """SIGHUP: read bot.config.py again for the new workers; keep the running one if it is broken
        (a worker that cannot boot would make gunicorn stop altogether)."""
        if all(config.path is not None for config in self.configs):
            from botkit.app.bot import Bot
            from botkit.app.several import several_bots

            try:
                configs = several_bots([load_config(config.path) for config in self.configs])
                for config in configs:
                    Bot(config)
            except BotkitError as exc:
                log.error("reload: %s; the new workers keep the config the old ones had", exc)
            else:
                self.configs = configs
        super().reload()

    def load(self) -> Callable[[], Awaitable[web.AppRunner]]:
        configs, role = self.configs, self.role

        async def runner() -> web.AppRunner:
            from botkit.app.bot import Bot
            from botkit.shell.server import create_several, tune_gc

            tune_gc()

            server = configs[0].server
            return _LingeringRunner(
                create_several([Bot(config, role=role) for config in configs]),
                access_log=logging.getLogger("gunicorn.access") if server["access_log"] else None,
                access_log_class=WorkerAccessLog,
                access_log_format=ACCESS_LOG_FORMAT,
                handle_signals=False,
            )

        return runner


class _LingeringRunner(BotRunner):
    """botkit's runner (the connection guard, the access log) that stops listening, then lingers a moment
    before closing idle connections: a connection this worker accepted just before a restart gets its
    request read and answered instead of being cut."""

    async def cleanup(self) -> None:
        for site in list(self.sites):
            await site.stop()
        await asyncio.sleep(LINGER)
        await super().cleanup()


class _PromptExit:
    """aiohttp's worker notices SIGTERM at its next one-second tick; this wakes it at once. Its listeners
    are ``_Listener``s, so a stop or a reload logs no ``Bad file descriptor``."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)  # type: ignore[misc]
        self._notify_waiter_done()  # type: ignore[attr-defined]

    def run(self) -> None:
        self.sockets = [_Listener(listener) for listener in self.sockets]  # type: ignore[has-type]
        super().run()  # type: ignore[misc]


class _Listener:
    """A gunicorn listener as the worker's server sees it. When the server stops, uvloop closes the
    descriptor itself, then calls ``close()``: gunicorn's listener would close it again and log
    ``Error while closing socket [Errno 9] Bad file descriptor`` at every stop and reload."""

    def __init__(self, listener: Any) -> None:
        self._listener = listener

    def __getattr__(self, name: str) -> Any:
        return getattr(self._listener, name)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.sock.close()


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def _heed_an_early_stop(arbiter: Any, worker: Any) -> None:
    """In a worker just forked, before aiohttp's worker sets up its signal handlers: a stop the master sends
    now (it does when it was told to stop while it forked this worker) would reach the master's own
    handler, inherited through fork, and be lost: the worker would then serve on until the master kills it
    at the graceful timeout. Mark the worker stopped instead; it stops once it has started."""

    def stop(sig: int, frame: Any) -> None:
        worker.alive = False

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    queued = getattr(arbiter, "SIG_QUEUE", None)  # what reached the inherited handler since the fork
    if isinstance(queued, list):
        pending, queued[:] = list(queued), []
    else:
        pending = []
        while queued is not None:
            try:
                pending.append(queued.get_nowait())
            except queue.Empty:
                break
    if any(sig in STOP_SIGNALS for sig in pending):
        worker.alive = False


class Worker(_PromptExit, GunicornWebWorker):
    pass


class UVLoopWorker(_PromptExit, GunicornUVLoopWebWorker):
    pass


def _worker_class() -> str:
    if importlib.util.find_spec("uvloop") is None:
        return "botkit.shell.workers.Worker"
    return "botkit.shell.workers.UVLoopWorker"


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_store(config: Config) -> None:
    """Open the session store once before forking, so an unreachable store is one clear error line
    instead of every worker failing to boot."""
    from botkit.app.bot import Bot

    async def check() -> None:
        bot = Bot(config, channels={})
        try:
            await bot.store.open()
        finally:
            await bot.store.close()
            await bot.http.close()

    asyncio.run(check())
