"""The aiohttp application: the only module that speaks HTTP. It turns every channel's routes into
aiohttp routes (a plain ``Request`` in, a ``Reply`` out), serves /healthz, starts and stops the bot."""
from __future__ import annotations

import asyncio
import gc
import os
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from botkit.adapters.base import Route
from botkit.app.bot import Bot
from botkit.app.config import Config
from botkit.core.errors import RequestRejected
from botkit.core.requests import Reply, Request

log = logging.getLogger("botkit.server")

BOT_KEY = web.AppKey("bot", Bot)
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'


def create_app(bot: Bot) -> web.Application:
    """An application serving ``bot``; it starts the bot on start-up and stops it on cleanup."""
    app = web.Application(client_max_size=bot.config.server["client_max_size"])
    app[BOT_KEY] = bot
    app.router.add_get("/healthz", healthz)
    if bot.role != "worker":
        for name, route in bot.routes():
            app.router.add_route(route.method, route.path, _handler(bot, name, route))
    app.on_startup.append(_start_bot)
    app.on_shutdown.append(_shutdown_channels)
    app.on_shutdown.append(_drain)
    app.on_cleanup.append(_stop_bot)
    return app


def _handler(bot: Bot, channel: str, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    adapter = bot.channels[channel]
    server_limit = bot.config.server["client_max_size"]
    limit = min(adapter.max_body_size or server_limit, server_limit)
    setting = "server.client_max_size" if limit == server_limit else f"the {channel} channel's limit"
    too_large = RequestRejected(f"the request body is over {limit} bytes ({setting})", 413)

    async def handle(request: web.Request) -> web.StreamResponse:
        head = Request(
            method=request.method, path=request.path, headers=request.headers, query=request.query,
            scheme=request.scheme, host=request.host, raw_path=request.raw_path, remote=request.remote,
            match=dict(request.match_info),
        )
        if route.handler is None:
            try:
                await adapter.check_headers(head)
            except RequestRejected as exc:
                return await _send(request, adapter.reject(exc))
        if (request.content_length or 0) > limit:
            return await _send(request, adapter.reject(too_large))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return await _send(request, adapter.reject(too_large))
        if len(body) > limit:
            return await _send(request, adapter.reject(too_large))
        plain = replace(head, body=body)
        if route.handler is None:
            reply = await bot.receive(channel, plain)
        else:
            reply = await route.handler(plain)
        return await _send(request, reply)

    return handle


async def _send(request: web.Request, reply: Reply) -> web.StreamResponse:
    if reply.stream is None:
        plain = web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        plain.content_type = reply.content_type.split(";")[0]
        if "charset=" in reply.content_type:
            plain.charset = reply.content_type.split("charset=")[1]
        return plain
    response = web.StreamResponse(status=reply.status, headers={"Content-Type": reply.content_type, **reply.headers})
    await response.prepare(request)
    chunks = reply.stream
    try:
        async for chunk in chunks:
            await response.write(chunk)
    except (ConnectionError, RuntimeError) as exc:  # the client went away
        log.debug("stream to %s closed: %s", request.remote, exc)
    finally:
        await chunks.aclose()
    return response


async def healthz(request: web.Request) -> web.Response:
    bot = request.app[BOT_KEY]
    if not bot.started:
        return web.json_response({"status": "starting"}, status=503)
    body: dict[str, Any] = {"status": "ok", "pid": os.getpid(), "role": bot.role, "channels": sorted(bot.channels),
                            "in_flight": bot.dispatcher.in_flight}
    if bot.inbox is not None:
        try:
            stats = await bot.inbox.stats()
        except Exception as exc:
            body["inbox"] = {"error": f"{type(exc).__name__}: {exc}"}
        else:
            age = None if stats.oldest is None else round(bot.clock() - stats.oldest, 3)
            body["inbox"] = {"depth": stats.depth, "oldest_age_seconds": age}
    return web.json_response(body)


async def _start_bot(app: web.Application) -> None:
    bot = app[BOT_KEY]
    await bot.start()
    served = ", ".join(f"{name} at {path}" for name, path in _paths(bot)) or "no channel"
    log.info("botkit serving %s on the %s driver", served, bot.config.session["driver"])


async def _shutdown_channels(app: web.Application) -> None:
    """Let channels end long-lived responses (event streams) so shutdown does not wait on them."""
    for channel in app[BOT_KEY].channels.values():
        await channel.shutdown()


async def _drain(app: web.Application) -> None:
    """Let handlers that are running finish before the store and the HTTP client close."""
    bot = app[BOT_KEY]
    try:
        async with asyncio.timeout(bot.config.server["shutdown_timeout"]):
            await bot.dispatcher.idle()
    except TimeoutError:
        log.warning("%d handler(s) still running at the shutdown timeout", bot.dispatcher.in_flight)


async def _stop_bot(app: web.Application) -> None:
    await app[BOT_KEY].stop()


def _paths(bot: Bot) -> list[tuple[str, str]]:
    paths: dict[str, set[str]] = {}
    for name, route in bot.routes():
        paths.setdefault(name, set()).add(route.path)
    return [(name, ", ".join(sorted(found))) for name, found in paths.items()]


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
