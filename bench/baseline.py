"""The no-framework baseline: the irreducible work of a Telegram webhook in plain aiohttp.

Read the body, check the secret header, parse the JSON, one outbound POST to the Bot API through one
shared ClientSession, answer 200. It keeps a per-chat count in a dict so that its reply is the counting
bot's, and uses uvloop and orjson as botkit does: the ceiling one process reaches on this machine.

    python -m bench.baseline --port P --api-base URL --token T --secret S [--workers N]
"""
from __future__ import annotations

import argparse
import hmac
import multiprocessing
import signal
import socket

import aiohttp
import orjson
from aiohttp import web

from bench.loop import install_uvloop

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SESSION = web.AppKey("session", aiohttp.ClientSession)


def make_app(api_base: str, token: str, secret: str) -> web.Application:
    url = f"{api_base}/bot{token}/sendMessage"
    expected = secret.encode()
    counts: dict[int, int] = {}

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return web.Response(status=401)
        try:
            chat_id = orjson.loads(body)["message"]["chat"]["id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return web.Response(status=400)
        count = counts[chat_id] = counts.get(chat_id, 0) + 1
        payload = orjson.dumps({"chat_id": chat_id, "text": f"Count: {count}"})
        async with request.app[SESSION].post(url, data=payload, headers={"Content-Type": "application/json"}) as reply:
            await reply.read()
        return web.Response(text="ok")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def open_session(app: web.Application) -> None:
        app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))

    async def close_session(app: web.Application) -> None:
        await app[SESSION].close()

    app = web.Application()
    app.router.add_post("/webhooks/telegram", webhook)
    app.router.add_get("/healthz", healthz)
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    return app


def serve(sock: socket.socket, api_base: str, token: str, secret: str, tune_gc: bool = False) -> None:
    install_uvloop()
    if tune_gc:  # the ablation row "baseline (gc tuned)": botkit's own tuning, nothing else of botkit
        from botkit.shell.server import tune_gc as tune

        tune()
    web.run_app(make_app(api_base, token, secret), sock=sock, access_log=None, print=lambda *_: None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--workers", type=int, default=1, help="processes accepting on one shared socket")
    parser.add_argument("--tune-gc", action="store_true", help="botkit.server's cycle-collector threshold")
    args = parser.parse_args(argv)
    sock = socket.create_server((args.host, args.port), backlog=1024)
    serve_args = (sock, args.api_base, args.token, args.secret, args.tune_gc)
    if args.workers == 1:
        serve(*serve_args)
        return
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=serve, args=serve_args) for _ in range(args.workers)]
    for child in children:
        child.start()

    def stop(signum: int, frame: object) -> None:
        for child in children:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()


if __name__ == "__main__":
    main()
