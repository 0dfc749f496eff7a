"""`botkit steps list [KEY]`: the scheduled steps waiting to run, as JSON."""
from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from botkit.app.config import Config, load_config


def register(sub: Any, config_option: Callable[[argparse.ArgumentParser], None]) -> None:
    steps = sub.add_parser("steps", help="scheduled steps waiting to run")
    config_option(steps)
    leaf = steps.add_subparsers(dest="action", required=True).add_parser(
        "list", help="every session's steps, or KEY's, earliest first, as JSON")
    leaf.add_argument("key", nargs="?", help="a session key, as `botkit sessions list` prints it")
    leaf.add_argument("--config", "-c", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    steps.set_defaults(run=cmd_steps)


def cmd_steps(args: argparse.Namespace) -> int:
    return asyncio.run(list_steps(load_config(args.config), args.key))


async def list_steps(config: Config, key: str | None) -> int:
    from botkit.app.bot import Bot

    bot = Bot(config, channels={}, handler=_no_handler, role="web")
    store, _ = bot.store.step_store()
    shown: dict[str, Any] = {"driver": config.session["driver"]}
    if not store.durable:
        shown.update(steps=None, note="this driver keeps scheduled steps inside the running bot, out of this "
                                      "command's reach; the file and redis drivers keep them where it can look")
        print(json.dumps(shown))
        await bot.http.close()
        return 0
    await store.open()
    try:
        pending = await store.pending(key)
    finally:
        await store.close()
        await bot.http.close()
    now = bot.clock()
    shown["steps"] = [{"id": step.id, "session_key": step.key, "slug": step.slug, "due_at": due,
                       "due_in_seconds": round(due - now, 3), "scheduled_at": step.scheduled_at,
                       "from_slug": step.from_slug, "unless_moved": step.unless_moved} for due, step in pending]
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0


async def _no_handler(context: Any) -> None:
    """Listing steps runs no handler."""
