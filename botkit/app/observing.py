"""The bot's side of observability: turning metrics and tracing on from the config, and reading the
figures that are sampled at scrape time (the inbox, the scheduled steps) from the bot's stores."""
from __future__ import annotations

import logging
from collections.abc import Callable

from botkit.app.config import Config
from botkit.engine.scheduler import Scheduler
from botkit.observe import metrics, tracing
from botkit.storage.inbox import Inbox

log = logging.getLogger("botkit.observe")


def setup(config: Config) -> None:
    """In the process that runs a bot: metrics on when ``server.metrics``; the tracing SDK's set-up hook."""
    if config.server["metrics"]:
        metrics.enable()
    tracing.setup_from_env()


async def sample(inbox: Inbox | None, scheduler: Scheduler | None, clock: Callable[[], float]) -> None:
    """Read the gauges that are sampled when Prometheus scrapes; a store that fails leaves them as they were."""
    depth: int | None = None
    age: float | None = None
    steps_due: int | None = None
    if inbox is not None:
        try:
            stats = await inbox.stats()
        except Exception as exc:
            log.warning("metrics: the inbox's figures could not be read: %s", exc)
        else:
            depth = stats.depth
            age = None if stats.oldest is None else max(clock() - stats.oldest, 0.0)
    if scheduler is not None:
        try:
            steps_due = await scheduler.store.count_due_by(clock())
        except Exception as exc:
            log.warning("metrics: the scheduled steps could not be read: %s", exc)
    metrics.sample(inbox_depth=depth, inbox_oldest_age=age, steps_due=steps_due)
