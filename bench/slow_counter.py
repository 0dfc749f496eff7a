"""The counting bot with a slow handler, for ``python -m bench --handler-ms N``: it sleeps N ms (the
config's ``bench_handler_ms``: an LLM call, a slow API) and then counts and replies as
``examples/counter/bot.py`` does."""
from __future__ import annotations

import asyncio
from typing import Any

from examples.counter.bot import app as count


async def app(context: Any) -> None:
    await asyncio.sleep(context.extra.get("bench_handler_ms", 0) / 1000.0)
    await count(context)  # type: ignore[no-untyped-call]  # the example is written untyped, as users write it
