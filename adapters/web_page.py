"""The chat page of the web channel: ``index.html``, ``chat.css`` and ``chat.js`` from ``adapters/static``."""
from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("static")
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src * data: blob:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


def page_routes(prefix: str, title: str) -> list[web.AbstractRouteDef]:
    """The page at ``<prefix>/`` and its assets at ``<prefix>/static/``; ``<prefix>`` redirects to the page, so
    the page's relative URLs (``static/…``, ``api/…``) resolve under the prefix."""
    body = (STATIC / "index.html").read_text(encoding="utf-8").replace("{{title}}", html.escape(title)).encode()

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)

    def asset(name: str):
        async def serve(request: web.Request) -> web.FileResponse:
            return web.FileResponse(STATIC / name, headers=ASSET_HEADERS)

        return serve

    async def to_page(request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect(f"{prefix}/")

    routes = [
        web.get(f"{prefix}/", page),
        web.get(f"{prefix}/static/chat.css", asset("chat.css")),
        web.get(f"{prefix}/static/chat.js", asset("chat.js")),
    ]
    if prefix:
        routes.append(web.get(prefix, to_page))
    return routes
