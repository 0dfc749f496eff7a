"""The aiohttp application: every enabled channel's routes, /healthz, start-up and graceful shutdown."""
from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

from aiohttp import web

from .bot import Bot
from .config import Config

log = logging.getLogger("botkit.server")

BOT_KEY = web.AppKey("bot", Bot)
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'


def create_app(bot: Bot) -> web.Application:
    """An application serving ``bot``; it starts the bot on start-up and stops it on cleanup."""
    app = web.Application(client_max_size=bot.config.server["client_max_size"])
    app[BOT_KEY] = bot
    app.router.add_get("/healthz", healthz)
    for adapter in bot.adapters.values():
        app.router.add_routes(adapter.routes())
    app.on_startup.append(_start_bot)
    app.on_shutdown.append(_shutdown_adapters)
    app.on_shutdown.append(_drain)
    app.on_cleanup.append(_stop_bot)
    return app


async def healthz(request: web.Request) -> web.Response:
    bot = request.app[BOT_KEY]
    if not bot.started:
        return web.json_response({"status": "starting"}, status=503)
    return web.json_response({"status": "ok", "channels": sorted(bot.adapters), "in_flight": bot.dispatcher.in_flight})


async def _start_bot(app: web.Application) -> None:
    bot = app[BOT_KEY]
    await bot.start()
    log.info("botkit serving %s on the %s driver", ", ".join(f"{a.name} at {_paths(a)}" for a in bot.adapters.values()) or "no channel", bot.config.session["driver"])


async def _shutdown_adapters(app: web.Application) -> None:
    """Let adapters end long-lived responses (event streams) so shutdown does not wait on them."""
    for adapter in app[BOT_KEY].adapters.values():
        await adapter.shutdown()


async def _drain(app: web.Application) -> None:
    """Let handlers that are running finish before the store and the HTTP client close."""
    bot = app[BOT_KEY]
    deadline = asyncio.get_running_loop().time() + bot.config.server["shutdown_timeout"]
    while bot.dispatcher.in_flight and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)


async def _stop_bot(app: web.Application) -> None:
    await app[BOT_KEY].stop()


def _paths(adapter: Any) -> str:
    paths = sorted({route.path for route in adapter.routes() if hasattr(route, "path")})
    return ", ".join(paths)


def install_fast_loop() -> None:
    """Use uvloop when it is installed (the `speed` extra): measured in docs/performance.md."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


GC_THRESHOLD = 10_000


def tune_gc() -> None:
    """Run the cycle collector less often. A webhook makes hundreds of short-lived objects (a session's
    history alone is 50 dicts); at Python's default threshold (700) the collector ran every few webhooks
    and walked the whole heap every thousand or so: a fifth of the server's CPU (docs/performance.md).
    Reference counting, which frees nearly all of those objects, is not affected."""
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def run(config: Config, *, host: str | None = None, port: int | None = None, bot: Bot | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM), then shut down gracefully."""
    install_fast_loop()
    tune_gc()
    bot = bot or Bot(config)
    server = config.server
    web.run_app(
        create_app(bot),
        host=host or server["host"],
        port=port if port is not None else server["port"],
        shutdown_timeout=server["shutdown_timeout"],
        access_log=logging.getLogger("aiohttp.access") if server["access_log"] else None,
        access_log_format=ACCESS_LOG_FORMAT,
        print=lambda *_: None,
        handle_signals=True,
    )
