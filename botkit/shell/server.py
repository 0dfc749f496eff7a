"""The aiohttp application: the only module that speaks HTTP. It turns every channel's routes into
aiohttp routes (a plain ``Request`` in, a ``Reply`` out), serves /healthz, starts and stops the bot.

It also guards the process against clients that hold connections open (docs/deployment.md): a request's
head must arrive within ``server.header_timeout`` seconds and its body within ``server.read_timeout``;
beyond ``server.max_connections`` open connections a new one is answered 503 and closed; a client that
goes away mid-request costs one INFO line, not a traceback. The client's address is the peer's, or, when
the peer is one of ``server.trusted_proxies``, the one they name in ``X-Forwarded-For``; the access log
shows it, with the values of query strings left out (Meta's handshake carries the verify token there).
"""
from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import resource
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, cast

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_protocol import RequestHandler

from botkit.adapters.base import Route
from botkit.app import observing
from botkit.app.bot import Bot
from botkit.app.config import Config
from botkit.core.errors import RequestRejected
from botkit.core.requests import Reply, Request
from botkit.desk import Desk
from botkit.observe import metrics, scope

log = logging.getLogger("botkit.server")

BOT_KEY = web.AppKey("bot", Bot)
BOTS_KEY = web.AppKey("bots", list[Bot])
PREFIX_KEY = web.AppKey("prefix", str)
"""Where a bot's app is mounted when one server runs several bots (``/support``)."""
CLIENT_KEY = web.RequestKey("client", str)
"""The client's address (behind trusted proxies, the one they name) on every aiohttp request."""
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'
"""The access log line (``AccessLog`` writes it; the format string is what aiohttp would use for it)."""
KEEPALIVE = 75.0
"""Seconds an idle keep-alive connection stays open: longer than the usual load balancer's idle timeout
(60 s), so that the balancer, not botkit, closes idle connections (else a request can race the close)."""
REFUSED_LINGER = 1.0
"""Seconds a connection refused at the cap may still send (discarded) after its 503, so that closing it
does not reset the connection before the client has read the 503."""


def create_app(bot: Bot) -> web.Application:
    """An application serving ``bot``; it starts the bot on start-up and stops it on cleanup."""
    observing.setup(bot.config)
    proxies = TrustedProxies(bot.config.server["trusted_proxies"])
    app = web.Application(client_max_size=bot.config.server["client_max_size"], middlewares=[_each_request(proxies)])
    app[BOT_KEY] = bot
    app.router.add_get("/healthz", healthz)
    if bot.config.server["metrics"]:
        app.router.add_get("/metrics", metrics_page)
        app.cleanup_ctx.append(_metrics_flusher)
    if bot.role != "worker":
        for name, route in bot.routes():
            app.router.add_route(route.method, route.path, _handler(bot, name, route))
    if bot.role != "worker" and bot.config.desk is not None:
        _serve_desk(app, Desk(bot))
    app.on_startup.append(_start_bot)
    app.on_shutdown.append(_shutdown_channels)
    app.on_shutdown.append(_drain)
    app.on_cleanup.append(_stop_bot)
    return app


def create_several(bots: Sequence[Bot]) -> web.Application:
    """The application serving ``bots``: one bot's app as it is; several bots' apps each under
    ``/<name>/`` (``/support/webhooks/telegram``), with ``/healthz`` answering for all of them. The
    server's own settings (address, timeouts, connection cap, access log) are the first bot's."""
    if len(bots) == 1:
        return create_app(bots[0])
    app = web.Application(client_max_size=max(bot.config.server["client_max_size"] for bot in bots))
    app[BOT_KEY] = bots[0]
    app[BOTS_KEY] = list(bots)
    app.router.add_get("/healthz", healthz_of_all)
    for bot in bots:
        served = create_app(bot)
        served[PREFIX_KEY] = f"/{bot.config.bot_name}"
        app.add_subapp(served[PREFIX_KEY], served)
    return app


async def healthz_of_all(request: web.Request) -> web.Response:
    bots = request.app[BOTS_KEY]
    started = all(bot.started for bot in bots)
    body = {"status": "ok" if started else "starting", "pid": os.getpid(),
            "bots": {bot.config.bot_name: {"started": bot.started, "role": bot.role, "channels": sorted(bot.channels)}
                     for bot in bots}}
    return web.json_response(body, status=200 if started else 503)


# -- the client's address ------------------------------------------------------------------------------

class TrustedProxies:
    """``server.trusted_proxies``: the addresses (or networks) whose ``X-Forwarded-For`` is believed."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(network, strict=False) for network in networks]

    def trusts(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str | None:
        """The client's address: the peer's, unless the peer is a trusted proxy; then the right-most
        address in ``X-Forwarded-For`` that is not a trusted proxy (each proxy appends the address it
        saw, so anything to its left may be made up by the client)."""
        if peer is None or not self.networks or not self.trusts(peer):
            return peer
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                return peer  # a proxy that writes no address: believe nobody
            if not self.trusts(hop):
                return str(ip)
        return str(_ip(hops[0])) if hops else peer


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _each_request(proxies: TrustedProxies) -> Any:
    """Runs around every request, routed or not: notes the client's address, and tells the connection
    guard that the request's head has arrived (its header timeout stops) and when it is answered."""

    @web.middleware
    async def each_request(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        request[CLIENT_KEY] = proxies.client(request.remote, request.headers.getall("X-Forwarded-For", ())) or "-"
        scope.bind(None)  # the log's channel and session are the ones this request names, not the last one's
        transport = request.transport
        guarded = transport.get_protocol() if transport is not None else None
        if not isinstance(guarded, GuardedConnection):
            return await handler(request)
        guarded.request_started()
        try:
            return await handler(request)
        finally:
            guarded.request_finished()

    return each_request


# -- routes --------------------------------------------------------------------------------------------

def _handler(bot: Bot, channel: str, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    adapter = bot.channels[channel]
    server = bot.config.server
    server_limit = server["client_max_size"]
    read_timeout = float(server["read_timeout"])
    limit = min(adapter.max_body_size or server_limit, server_limit)
    setting = "server.client_max_size" if limit == server_limit else f"the {channel} channel's limit"
    too_large = RequestRejected(f"the request body is over {limit} bytes ({setting})", 413)
    too_slow = RequestRejected(f"the request body did not arrive within {read_timeout:g} s (server.read_timeout)", 408)

    async def handle(request: web.Request) -> web.StreamResponse:
        client = request.get(CLIENT_KEY, request.remote)
        head = Request(
            method=request.method, path=request.path, headers=request.headers, query=request.query,
            scheme=request.scheme, host=request.host, raw_path=request.raw_path, remote=client,
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
            async with asyncio.timeout(read_timeout):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return await _send(request, adapter.reject(too_large))
        except TimeoutError:
            log.info("%s: %s %s: the body did not arrive within %g s (server.read_timeout); answered 408",
                     client, request.method, request.path, read_timeout)
            response = await _send(request, adapter.reject(too_slow))
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()  # no lingering over the rest of a body that does not come
            return response
        except ConnectionError:
            log.info("%s: %s %s: the client went away while sending the body", client, request.method, request.path)
            return web.Response(status=499, reason="Client Closed Request")
        if len(body) > limit:
            return await _send(request, adapter.reject(too_large))
        plain = replace(head, body=body)
        if route.handler is None:
            reply = await bot.receive(channel, plain)
        else:
            reply = await route.handler(plain)
        return await _send(request, reply)

    async def counted(request: web.Request) -> web.StreamResponse:
        response = await handle(request)
        metrics.webhook(channel, response.status)
        return response

    return counted


DESK_BODY_LIMIT = 64 * 1024


def _serve_desk(app: web.Application, desk: Desk) -> None:
    """The agent desk's page and API (botkit.desk), at ``desk.path``."""
    for route in desk.routes():
        assert route.handler is not None
        app.router.add_route(route.method, route.path, _plain_handler(route.handler))

    async def end_streams(app: web.Application) -> None:
        desk.shutdown()

    app.on_shutdown.append(end_streams)


def _plain_handler(handler: Callable[[Request], Awaitable[Reply]]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if (request.content_length or 0) > DESK_BODY_LIMIT:
            return await _send(request, Reply.text("the request body is too large", 413))
        body = await request.read() if request.can_read_body else b""
        plain = Request(method=request.method, path=request.path, headers=request.headers, query=request.query,
                        body=body, scheme=request.scheme, host=request.host, raw_path=request.raw_path,
                        remote=request.get(CLIENT_KEY, request.remote), match=dict(request.match_info))
        return await _send(request, await handler(plain))

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
        log.debug("stream to %s closed: %s", request.get(CLIENT_KEY, request.remote), exc)
    finally:
        await chunks.aclose()
    return response


async def healthz(request: web.Request) -> web.Response:
    bot = request.app[BOT_KEY]
    if not bot.started:
        return web.json_response({"status": "starting"}, status=503)
    body: dict[str, Any] = {"status": "ok", "pid": os.getpid(), "role": bot.role, "channels": sorted(bot.channels),
                            "in_flight": bot.dispatcher.in_flight}
    if bot.rate_limit is not None:
        body["rate_limited"] = bot.rate_limit.dropped
    if bot.inbox is not None:
        try:
            stats = await bot.inbox.stats()
        except Exception as exc:
            body["inbox"] = {"error": f"{type(exc).__name__}: {exc}"}
        else:
            age = None if stats.oldest is None else round(bot.clock() - stats.oldest, 3)
            body["inbox"] = {"depth": stats.depth, "oldest_age_seconds": age}
    return web.json_response(body)


async def metrics_page(request: web.Request) -> web.Response:
    """``server.metrics``: the Prometheus text format (every worker's figures under ``--workers``)."""
    bot = request.app[BOT_KEY]
    await observing.sample(bot.inbox, bot.scheduler if bot.role != "web" else None, bot.clock)
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _metrics_flusher(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(metrics.flusher(), name="botkit-metrics")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _start_bot(app: web.Application) -> None:
    bot = app[BOT_KEY]
    await bot.start()
    prefix = app.get(PREFIX_KEY, "")
    served = ", ".join(f"{name} at {path}" for name, path in _paths(bot, prefix)) or "no channel"
    if bot.role != "worker" and bot.config.desk is not None:
        served += f", desk at {prefix}{bot.config.desk['path']}"
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


def _paths(bot: Bot, prefix: str = "") -> list[tuple[str, str]]:
    paths: dict[str, set[str]] = {}
    for name, route in bot.routes():
        paths.setdefault(name, set()).add(prefix + route.path)
    return [(name, ", ".join(sorted(found))) for name, found in paths.items()]


# -- the access log ------------------------------------------------------------------------------------

class AccessLog(AbstractAccessLogger):
    """One line a request: ``<client> "<method> <path>?<name>=*** HTTP/1.1" <status> <bytes> <seconds>s``.
    Query values are left out (``?hub.verify_token=***``): secrets and personal data travel there."""

    pid = False

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        client = request.get(CLIENT_KEY) or request.remote or "-"
        version = request.version
        line = (f'{client} "{request.method} {redacted_target(request.raw_path)} HTTP/{version.major}.{version.minor}" '
                f"{response.status} {response.body_length} {time:.6f}s")
        self.logger.info(f"<{os.getpid()}> {line}" if self.pid else line)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class WorkerAccessLog(AccessLog):
    """The same line, prefixed with the worker's pid (``botkit start --workers N``)."""

    pid = True


def redacted_target(target: str) -> str:
    """A request target with each query value replaced by ``***``:
    ``/webhooks/messenger?hub.mode=***&hub.verify_token=***&hub.challenge=***``."""
    path, question, query = target.partition("?")
    if not question:
        return path
    names = [part.partition("=")[0] + ("=***" if "=" in part else "") for part in query.split("&")]
    return f"{path}?{'&'.join(names)}"


# -- the connection guard ------------------------------------------------------------------------------

def connection_cap(configured: int | None) -> int:
    """``server.max_connections``, or by default the open-file limit less a quarter of it (at least 384
    kept for the session store's pool, the outbound HTTP client's 256 connections and the logs)."""
    if configured is not None:
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 10_000
    return max(32, soft - max(384, soft // 4))


def _raw_reply(status: str, text: str, *headers: str) -> bytes:
    """A whole HTTP/1.1 answer, written straight to a connection aiohttp does not handle (or no more)."""
    body = text.encode()
    head = [f"HTTP/1.1 {status}", "Content-Type: text/plain", f"Content-Length: {len(body)}", *headers, "Connection: close"]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


BUSY = _raw_reply("503 Service Unavailable", "the server has too many open connections; try again soon", "Retry-After: 1")
TOO_SLOW = _raw_reply("408 Request Timeout", "the request head did not arrive in time (server.header_timeout)")


class ConnectionGuard:
    """This process's open connections: counted, capped, and timed while they send a request's head."""

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open = 0
        self.refused = 0
        self._refused_logged = 0
        self._last_warning = -3600.0

    def wrap(self, inner: RequestHandler) -> GuardedConnection:
        return GuardedConnection(self, inner)

    def note_refused(self) -> None:
        self.refused += 1
        now = asyncio.get_running_loop().time()
        if now - self._last_warning >= 60:
            log.warning("%d connections open, the cap (server.max_connections); refusing new ones with 503 "
                        "(%d refused since the last warning)", self.open, self.refused - self._refused_logged)
            self._last_warning, self._refused_logged = now, self.refused


class GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, wrapped: refused at the cap, closed with 408 when a
    request's head takes longer than the header timeout (from the connection's start, or from the first
    byte of the next request on a kept-alive connection)."""

    __slots__ = ("_admitted", "_busy", "_timer", "_transport", "guard", "inner")

    def __init__(self, guard: ConnectionGuard, inner: RequestHandler) -> None:
        self.guard = guard
        self.inner = inner
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        guard = self.guard
        if guard.open >= guard.max_connections:
            guard.note_refused()
            self._transport.write(BUSY)
            if self._transport.can_write_eof():
                self._transport.write_eof()
            self._timer = asyncio.get_running_loop().call_later(REFUSED_LINGER, self._transport.abort)
            return
        self._admitted = True
        guard.open += 1
        self.inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return  # refused: what it sends is dropped
        if not self._busy and self._timer is None:
            self._arm()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._admitted:
            self.inner.eof_received()
        return None  # the transport closes, as with aiohttp's own protocol

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._admitted:
            self._admitted = False
            self.guard.open -= 1
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self.inner.resume_writing()

    def request_started(self) -> None:
        self._busy = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def request_finished(self) -> None:
        self._busy = False

    def _arm(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self.guard.header_timeout, self._too_slow)

    def _too_slow(self) -> None:
        self._timer = None
        transport = self._transport
        if self._busy or transport is None or transport.is_closing():
            return
        log.debug("closing a connection whose request head did not arrive within %g s", self.guard.header_timeout)
        transport.write(TOO_SLOW)
        transport.close()


class _GuardedServer(web.Server):
    """aiohttp's connection factory, handing out guarded connections."""

    guard: ConnectionGuard

    def __call__(self) -> RequestHandler:
        return cast(RequestHandler, self.guard.wrap(super().__call__()))


class BotRunner(web.AppRunner):
    """aiohttp's runner for a bot's app, with the connection guard and the access log (both
    ``botkit start`` and each ``--workers`` worker use it)."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        server = app[BOT_KEY].config.server
        kwargs.setdefault("keepalive_timeout", KEEPALIVE)
        kwargs.setdefault("access_log_class", AccessLog)
        kwargs.setdefault("shutdown_timeout", server["shutdown_timeout"])
        super().__init__(app, **kwargs)
        self.guard = ConnectionGuard(connection_cap(server["max_connections"]), float(server["header_timeout"]))

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _GuardedServer  # the same object, handing out guarded connections
        cast(_GuardedServer, server).guard = self.guard
        return server


# -- running -------------------------------------------------------------------------------------------

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


def run(config: Config, *, host: str | None = None, port: int | None = None, bot: Bot | None = None,
        bots: Sequence[Bot] = (), prepare: Callable[[web.Application], None] | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM), then shut down gracefully; ``bots``: several bots, each
    under ``/<name>/`` (``config`` is the first one's). ``prepare`` may add to the application before it
    starts (``--polling`` adds its pollers)."""
    install_fast_loop()
    tune_gc()
    app = create_several(bots) if bots else create_app(bot or Bot(config))
    server = config.server
    if prepare is not None:
        prepare(app)
    asyncio.run(_serve(app, host or server["host"], port if port is not None else server["port"]))


async def _serve(app: web.Application, host: str, port: int) -> None:
    server = app[BOT_KEY].config.server
    runner = BotRunner(app, access_log=logging.getLogger("aiohttp.access") if server["access_log"] else None,
                       handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("listening on %s (Ctrl-C stops)", ", ".join(listening_urls(runner.addresses)))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def listening_urls(addresses: Iterable[Any]) -> list[str]:
    """``http://host:port`` of each socket the server listens on (the port the system chose for port 0)."""
    urls = []
    for address in addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
            urls.append(f"http://{host}:{address[1]}")
        else:
            urls.append(str(address))
    return urls
