"""The `botkit` command: start, console, init, sessions, and each channel's set-up commands."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from botkit.app.bot import ROLES
from botkit.app.config import Config, load_config
from botkit.core.errors import BotkitError, ConfigError

log = logging.getLogger("botkit")


BUILTIN_COMMANDS = {"start", "console", "init", "sessions", "inbox", "steps"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `botkit` command. Config mistakes print one line and exit with status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in BUILTIN_COMMANDS and not argv[0].startswith("-"):
        logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
        return _guarded(run_channel_command, argv)
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return _guarded(args.run, args)


def _guarded(command: Any, *args: Any) -> int:
    try:
        return command(*args) or 0
    except ConfigError as exc:
        print(f"botkit: config error: {exc}", file=sys.stderr)
        return 2
    except BotkitError as exc:
        print(f"botkit: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="botkit", description="Run and manage a botkit bot.")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    start = sub.add_parser("start", help="serve the bot's webhooks")
    start.add_argument("--config", "-c", action="append",
                       help="path of bot.config.py (default ./bot.config.py); repeat it to serve several bots, "
                            "each under /<name>/")
    start.add_argument("--host", help="address to listen on (server.host)")
    start.add_argument("--port", type=int, help="port to listen on (server.port)")
    start.add_argument("--workers", type=int, default=1, help="processes serving the one port (default 1)")
    start.add_argument("--role", choices=ROLES, default="all",
                       help="all (default): take webhooks and handle them; web: verify and store only; worker: handle only")
    start.add_argument("--polling", action="store_true",
                       help="Telegram: long-poll getUpdates instead of the webhook (no public URL needed)")
    start.add_argument("--reload", action="store_true", help="restart when the bot's files or config change")
    start.set_defaults(run=cmd_start)

    inbox = sub.add_parser("inbox", help="events waiting for their handler: depth and the oldest one's age")
    _config_option(inbox)
    inbox.set_defaults(run=cmd_inbox)

    console = sub.add_parser("console", help="talk to the bot in this terminal")
    _config_option(console)
    console.add_argument("--user", help="the console user's name (session key console:<user>)")
    console.set_defaults(run=cmd_console)

    init = sub.add_parser("init", help="create a new bot in DIR (bot.py, bot.config.py, test_bot.py)")
    init.add_argument("dir", nargs="?", default=".")
    init.set_defaults(run=cmd_init)

    sessions = sub.add_parser("sessions", help="list, show or delete stored sessions")
    _config_option(sessions)
    sessions_sub = sessions.add_subparsers(dest="action", required=True)
    sessions_sub.add_parser("list", help="every stored session key")
    sessions_sub.add_parser("show", help="a session's record and history as JSON").add_argument("key")
    sessions_sub.add_parser("delete", help="forget a session").add_argument("key")
    stats = sessions_sub.add_parser("stats", help="per channel: sessions active, started, ended, messages, milestones")
    stats.add_argument("--since", type=float, metavar="MINUTES", help="count only the last MINUTES (default: all kept)")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    for leaf in sessions_sub.choices.values():
        leaf.add_argument("--config", "-c", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sessions.set_defaults(run=cmd_sessions)
    from botkit.shell.steps_command import register as register_steps

    register_steps(sub, _config_option)
    parser.epilog = "Each channel adds its set-up commands: botkit telegram webhook set URL, …"
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="path of bot.config.py (default ./bot.config.py)")


def cmd_start(args: argparse.Namespace) -> int:
    if args.reload:
        return _start_reloading(args)
    from botkit.app.bot import Bot
    from botkit.app.several import several_bots
    from botkit.observe import logs

    configs = several_bots([load_config(path) for path in args.config or [None]])
    logs.install(configs[0].server["log_format"])
    bots = [Bot(config, role=args.role) for config in configs]  # fail fast, in the parent, on any config error
    for bot in bots:
        if args.role != "all" and (bot.inbox is None or not bot.inbox.shared):
            raise ConfigError("session.driver", f"--role {args.role} needs an inbox that processes share: use the redis or "
                              "postgres driver")
    if args.polling and (args.workers > 1 or args.role == "worker" or len(bots) > 1):
        raise ConfigError("--polling", "Telegram hands updates to one poller: run one bot in one process (no --workers, "
                          "no --role worker, one --config)")
    if args.workers > 1:
        from botkit.shell.workers import serve_workers

        return serve_workers(configs if len(configs) > 1 else configs[0], workers=args.workers, host=args.host,
                             port=args.port, role=args.role)
    from botkit.shell.server import run

    prepare = None
    if args.polling:
        from functools import partial

        from botkit.shell.polling import add_polling, pollers

        pollers(bots[0])  # no Telegram channel: the one-line error now, not at start-up
        prepare = partial(add_polling, bot=bots[0])
    if len(bots) > 1:
        run(configs[0], host=args.host, port=args.port, bots=bots)
    else:
        run(configs[0], host=args.host, port=args.port, bot=bots[0], prepare=prepare)
    return 0


def _start_reloading(args: argparse.Namespace) -> int:
    """The watching parent of `--reload`: it loads nothing itself, so a mistake in the bot waits for the fix."""
    if args.workers > 1:
        raise ConfigError("--reload", "restarts one process: drop --workers while developing")
    from botkit.shell.reload import child_args, serve_reloading

    configs = args.config or [None]
    return serve_reloading(configs, child_args(args.log_level, configs, args.host, args.port, args.role, args.polling))


def cmd_inbox(args: argparse.Namespace) -> int:
    return asyncio.run(_inbox(load_config(args.config)))


async def _inbox(config: Config) -> int:
    from botkit.app.bot import Bot

    bot = Bot(config, channels={}, handler=_no_handler, role="web")
    if bot.inbox is None:
        print(json.dumps({"driver": config.session["driver"], "inbox": None,
                          "note": "this driver has no inbox: webhooks answer once handled"}))
        return 0
    await bot.store.open()
    try:
        await bot.inbox.open()
        stats = await bot.inbox.stats()
        age = None if stats.oldest is None else round(bot.clock() - stats.oldest, 3)
        print(json.dumps({"driver": config.session["driver"], "depth": stats.depth, "oldest_age_seconds": age}))
    finally:
        await bot.inbox.close()
        await bot.store.close()
        await bot.http.close()
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from botkit.app.bot import Bot
    from botkit.shell.console import Console

    config = load_config(args.config)
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))
    asyncio.run(Console(Bot(config, channels={}), user=args.user).run())
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    target.mkdir(parents=True, exist_ok=True)
    templates = files("botkit") / "templates"
    for name in ("bot.py", "bot.config.py", "test_bot.py"):
        path = target / name
        if path.exists():
            print(f"botkit: {path} exists; left as it is", file=sys.stderr)
            continue
        path.write_text((templates / name).read_text())
        print(f"created {path}")
    print(f"next: edit {target / 'bot.py'}, then `botkit console --config {target / 'bot.config.py'}`; "
          f"`pytest {target}` runs its tests")
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.action == "stats":
        return asyncio.run(_stats(config, args.since, args.json))
    return asyncio.run(_sessions(config, args.action, getattr(args, "key", "")))


async def _stats(config: Config, since: float | None, as_json: bool) -> int:
    from botkit.app.bot import Bot
    from botkit.shell.stats import shown, stats

    bot = Bot(config, channels={}, handler=_no_handler)
    await bot.store.open()
    try:
        print(shown(await stats(bot.store, bot.clock(), since), as_json))
    finally:
        await bot.store.close()
    return 0


async def _sessions(config: Config, action: str, key: str) -> int:
    from botkit.app.bot import Bot
    from botkit.core.keys import is_conversation
    from botkit.core.session import Session
    from botkit.engine.transcript import attach

    bot = Bot(config, channels={}, handler=_no_handler)
    await bot.store.open()
    try:
        if action == "list":
            for found in sorted(filter(is_conversation, await bot.store.keys())):
                print(found)
        elif action == "show":
            record = await bot.store.load(key)
            if record is None:
                print(f"botkit: no session {key}", file=sys.stderr)
                return 1
            session = attach(Session.from_record(record), bot.store, bot.policy.history)
            shown = {"record": record, "history": await session.load_history()}
            print(json.dumps(shown, indent=2, ensure_ascii=False))
        elif action == "delete":
            if not await bot.store.delete(key):
                print(f"botkit: no session {key}", file=sys.stderr)
                return 1
            print(f"deleted {key}")
    finally:
        await bot.store.close()
    return 0


async def _no_handler(context: Any) -> None:
    """Session commands run no handler."""


def run_channel_command(argv: list[str]) -> int:
    """`botkit <channel> [--config PATH] …`: handed to that channel's adapter."""
    parser = argparse.ArgumentParser(prog=f"botkit {argv[0]}", add_help=False)
    _config_option(parser)
    args, rest = parser.parse_known_args(argv[1:])
    config = load_config(args.config)
    from botkit.app.bot import Bot

    name = argv[0]
    settings = config.channels.get(name)
    if settings is None:
        raise ConfigError(f"channels.{name}", "not in bot.config.py; add the channel to use its commands")
    bot = Bot(config, channels={name: settings}, handler=_no_handler)

    async def run() -> int:
        try:
            return await bot.adapters[name].command(rest)
        finally:
            await bot.http.close()

    return asyncio.run(run())
