"""Scheduled steps (``step_to_in``/``step_to_at``): where they wait and the loop that runs them.

The session driver picks the step store: ``redis`` keeps steps in Redis (shared by every worker, claimed
atomically, durable), ``file`` in a file beside the sessions (durable, shared through ``flock``), and any
other driver in this process.
"""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from .base import StepStore
from .memory import MemoryStepStore
from .scheduler import Scheduler
from .step import Step

if TYPE_CHECKING:
    from ..bot import Bot

REDIS_DEFAULTS = {"url": "redis://127.0.0.1:6379/0", "prefix": "botkit:", "cluster": False}
LEASE_MARGIN = 60.0
"""Seconds a claimed step may run beyond the session lock's wait before another process may claim it."""


def step_store_for(bot: "Bot", driver: str | None = None) -> tuple[StepStore, str | None]:
    """The step store matching the bot's session driver, and a caveat to log at start-up (if any)."""
    driver = driver or getattr(bot.store, "name", None) or bot.config.session["driver"]
    if driver == "redis":
        from .redis import RedisStepStore

        settings = {**REDIS_DEFAULTS, **bot.config.store_settings("redis")}
        if getattr(bot.store, "name", None) == "redis":
            settings.update({k: v for k, v in bot.store.settings.items() if k in REDIS_DEFAULTS})
        return RedisStepStore(settings["url"], settings["prefix"], cluster=bool(settings["cluster"])), None
    if driver == "file":
        from .file import FileStepStore

        dirname = getattr(bot.store, "dirname", None)
        if dirname is None:
            dirname = bot.config.resolve_path(bot.config.store_settings("file").get("dirname", ".session"))
        return FileStepStore(dirname), None
    caveat = None
    if driver != "memory":
        caveat = (f"scheduled steps are kept in this process with the {driver} driver: a restart loses them, "
                  "and each worker runs the steps its own handlers scheduled")
    return MemoryStepStore(), caveat


def make_scheduler(bot: "Bot", driver: str | None = None) -> Scheduler:
    from ..flows import run_step

    store, caveat = step_store_for(bot, driver)
    expires_in = None if bot.expires_in is None else bot.expires_in * 60
    return Scheduler(store, partial(run_step, bot), clock=bot.clock, lease=bot.lock_timeout + LEASE_MARGIN,
                     expires_in=expires_in, caveat=caveat)


__all__ = ["MemoryStepStore", "Scheduler", "Step", "StepStore", "make_scheduler", "step_store_for"]
