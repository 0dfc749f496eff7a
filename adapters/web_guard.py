"""What keeps the web chat's open API from being abused: cross-site requests refused, new sessions and
messages counted per client address and in all, warnings that do not flood the log.

``POST /api/session`` needs no credentials, so any web page could make its visitors' browsers call it
(``fetch(url, {method: "POST", mode: "no-cors"})`` needs no CORS preflight). Browsers say where such a
request comes from in ``Origin``, and a no-cors request cannot declare ``Content-Type:
application/json``: the API refuses a request from another site's page (403) and a browser's request
that is not declared JSON (415).
"""
from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from botkit.core.errors import ConfigError, Forbidden, RequestRejected
from botkit.core.requests import Request

log = logging.getLogger("botkit.adapters.web")

DEFAULT_PORTS = {"http": 80, "https": 443}
JSON = "application/json"
WARN_EVERY = 60.0


class Throttled(RequestRejected):
    """A request refused for a while (429, or 503 when the server as a whole is full): ``Retry-After``."""

    status = 429

    def __init__(self, reason: str, retry_after: int, status: int | None = None) -> None:
        super().__init__(reason, status)
        self.retry_after = retry_after


def client_key(remote: str | None) -> str | None:
    """Who a rate limit counts: the client's IPv4 address, or its IPv6 /64 (one subscriber's network:
    a single host may use any address in it). None for a request with no address: one made in-process
    (botkit.testing, code calling the channel), never one the server received."""
    if not remote:
        return None
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Origins:
    """The origins whose pages may call the API: the page's own (the host the request names, or the one
    a proxy names in ``X-Forwarded-Host``) and ``allowed_origins`` (``"*"``: any)."""

    def __init__(self, channel: str, allowed: Iterable[str]) -> None:
        self.channel = channel
        self.any = "*" in allowed
        self.allowed = {_normal(origin) for origin in allowed if origin != "*"}

    @classmethod
    def validate(cls, channel: str, value: Any) -> tuple[str, ...]:
        setting = f"channels.{channel}.allowed_origins"
        if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
            raise ConfigError(setting, f'must be a list of origins such as ["https://shop.example.com"], not {value!r}')
        for origin in value:
            if origin == "*":
                continue
            if not isinstance(origin, str) or _normal(origin) is None:
                raise ConfigError(setting, f'{origin!r} is not an origin: write scheme://host[:port], e.g. "https://shop.example.com"')
        return tuple(value)

    def check(self, request: Request) -> None:
        """Forbidden (403) for a request a browser sent from another site's page."""
        origin = request.headers.get("Origin")
        if origin is None or self.any:
            return
        normal = _normal(origin)
        if normal is not None and (normal in self.allowed or self._same_host(normal, request)):
            return
        raise Forbidden(f"requests from pages at {origin[:200]!r} are not accepted; a page on another site "
                        f"may use this chat only when it is listed in channels.{self.channel}.allowed_origins")

    @staticmethod
    def _same_host(origin: tuple[str, str, int | None], request: Request) -> bool:
        scheme, host, port = origin
        default = DEFAULT_PORTS[scheme]
        for named in (request.host, request.headers.get("X-Forwarded-Host")):
            if not named:
                continue
            parts = urlsplit("//" + named.split(",")[0].strip())
            try:
                named_port = parts.port
            except ValueError:
                continue
            if parts.hostname == host and (named_port if named_port != default else None) == port:
                return True
        return False


def _normal(origin: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port or None for the scheme's default)``, or None for what is not an http(s) origin
    (``null``: a sandboxed page or a privacy setting)."""
    parts = urlsplit(origin.strip().lower())
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return None
    return parts.scheme, parts.hostname, None if port in (None, DEFAULT_PORTS[parts.scheme]) else port


def require_json(request: Request) -> None:
    """415 unless a request with a body, or any request a browser sent, declares ``Content-Type:
    application/json``: what a cross-site no-cors request cannot do."""
    declared = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if declared == JSON:
        return
    from_browser = "Origin" in request.headers or "Sec-Fetch-Mode" in request.headers
    if request.body.strip() or from_browser:
        raise RequestRejected(f"send the body as JSON with Content-Type: {JSON}", 415)


class Warnings:
    """A warning per kind at most once a minute, with how many it stands for (a flood stays one line)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def warn(self, kind: str, message: str, *args: Any) -> None:
        count = self._counts[kind] = self._counts.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._last.get(kind, -WARN_EVERY) < WARN_EVERY:
            return
        self._last[kind], self._counts[kind] = now, 0
        log.warning(message + " (%d time(s) since the last such warning)", *args, count)


def check_limit(channel: str, key: str, value: Any) -> None:
    """A per-minute limit: a positive whole number, or None (off)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ConfigError(f"channels.{channel}.{key}", f"must be a positive whole number (a minute), or None to turn it off, not {value!r}")
