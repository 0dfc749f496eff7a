"""The chat page of the web channel: ``index.html``, ``chat.css`` and ``chat.js`` from ``adapters/static``."""
from __future__ import annotations

import html
from pathlib import Path

from botkit.adapters.base import Route, RouteHandler
from botkit.core.requests import Reply, Request

STATIC = Path(__file__).with_name("static")
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src * data: blob:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
ASSET_TYPES = {"chat.css": "text/css", "chat.js": "text/javascript"}


def page_routes(prefix: str, title: str) -> list[Route]:
    """The page at ``<prefix>/`` and its assets at ``<prefix>/static/``; ``<prefix>`` redirects to the page, so
    the page's relative URLs (``static/…``, ``api/…``) resolve under the prefix."""
    page = (STATIC / "index.html").read_text(encoding="utf-8").replace("{{title}}", html.escape(title)).encode()

    def served(body: bytes, content_type: str, headers: dict[str, str]) -> RouteHandler:
        async def serve(request: Request) -> Reply:
            return Reply(200, body, content_type, dict(headers))

        return serve

    async def to_page(request: Request) -> Reply:
        return Reply(308, b"", headers={"Location": f"{prefix}/"})

    routes = [Route("GET", f"{prefix}/", served(page, "text/html; charset=utf-8", PAGE_HEADERS))]
    for name, content_type in ASSET_TYPES.items():
        routes.append(Route("GET", f"{prefix}/static/{name}",
                            served((STATIC / name).read_bytes(), content_type, ASSET_HEADERS)))
    if prefix:
        routes.append(Route("GET", prefix, to_page))
    return routes
