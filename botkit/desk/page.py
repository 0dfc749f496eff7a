"""The desk's page: ``desk.html``, ``desk.css`` and ``desk.js`` from ``botkit/desk/static``; it holds no
data: it asks the agent for the desk's secret and uses the desk API."""
from __future__ import annotations

from pathlib import Path

from botkit.adapters.base import Route, RouteHandler
from botkit.core.requests import Reply, Request

STATIC = Path(__file__).with_name("static")
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ASSETS = {"desk.css": "text/css", "desk.js": "text/javascript"}


def page_routes(prefix: str) -> list[Route]:
    def served(name: str, content_type: str, headers: dict[str, str]) -> RouteHandler:
        body = (STATIC / name).read_bytes()

        async def serve(request: Request) -> Reply:
            return Reply(200, body, content_type, dict(headers))

        return serve

    async def to_page(request: Request) -> Reply:  # relative: the desk may be served under /<bot name>/
        return Reply(308, b"", headers={"Location": prefix.rsplit("/", 1)[-1] + "/"})

    routes = [Route("GET", prefix, to_page),
              Route("GET", f"{prefix}/", served("desk.html", "text/html; charset=utf-8", PAGE_HEADERS))]
    for name, content_type in ASSETS.items():
        routes.append(Route("GET", f"{prefix}/static/{name}", served(name, content_type, {"X-Content-Type-Options": "nosniff",
                                                                                          "Cache-Control": "no-cache"})))
    return routes
