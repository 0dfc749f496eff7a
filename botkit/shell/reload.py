"""`botkit start --reload`: run `botkit start` in a child process and start it again whenever a file of
the bot changes (its Python files, bot.config.py, a .env). watchfiles does the watching (inotify and its
peers, debounced) and the restarting; the session files the file driver writes are not watched."""
from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from watchfiles import Change, PythonFilter, run_process

from botkit.app.config import find_config

log = logging.getLogger("botkit")

WATCHED_EXTENSIONS = (".env", ".toml", ".yaml", ".yml")
"""Beside Python files: what a bot commonly reads its settings or texts from."""
STOP_GRACE = 10
"""Seconds the old process has to stop (it finishes running handlers) before it is killed."""


def serve_reloading(configs: Sequence[str | None], child_args: Sequence[str]) -> int:
    """Serve ``botkit start <child_args>`` and restart it on changes under each config's folder."""
    roots = sorted({str(find_config(config).parent) for config in configs})
    command = shlex.join([sys.executable, "-m", "botkit", *child_args])
    log.info("watching %s for changes (--reload); Ctrl-C stops", ", ".join(roots))

    def changed(changes: set[tuple[Change, str]]) -> None:
        names = sorted({os.path.relpath(path, roots[0]) for _, path in changes})
        log.info("%s changed: restarting", ", ".join(names[:5]) + (" …" if len(names) > 5 else ""))

    run_process(*roots, target=command, target_type="command", callback=changed,
                watch_filter=PythonFilter(extra_extensions=WATCHED_EXTENSIONS), sigint_timeout=STOP_GRACE)
    return 0


def child_args(log_level: str, configs: Sequence[str | None], host: str | None, port: int | None, role: str,
               polling: bool) -> list[str]:
    """The arguments of the `botkit start` each restart runs: the same, without --reload."""
    args = ["--log-level", log_level, "start"]
    for config in configs:
        if config is not None:
            args += ["--config", str(Path(config).resolve())]
    if host is not None:
        args += ["--host", host]
    if port is not None:
        args += ["--port", str(port)]
    args += ["--role", role]
    if polling:
        args.append("--polling")
    return args
