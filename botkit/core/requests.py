"""A webhook request and its reply, free of any web framework: channels read one and return the other,
and the server (botkit.shell.server) is the only module that speaks aiohttp."""
from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Request:
    """What a channel sees of an HTTP request. ``headers`` look up case-insensitively when the server
    hands them over (``multidict.CIMultiDictProxy``); ``url`` is the URL as this server received it."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    scheme: str = "http"
    host: str = "127.0.0.1"
    raw_path: str = ""
    remote: str | None = None
    match: Mapping[str, str] = field(default_factory=dict)
    """Values of the route's placeholders (``/{name}``)."""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.raw_path or self.path}"


@dataclass(slots=True)
class Reply:
    """An HTTP answer: a body, or ``stream`` (an async iterator of chunks, e.g. server-sent events)."""

    status: int = 200
    body: bytes = b"ok"
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)
    stream: AsyncGenerator[bytes, None] | None = None

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, orjson.dumps(data), "application/json", dict(headers or {}))

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain",
             headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, text.encode(), content_type, dict(headers or {}))

    @property
    def text_body(self) -> str:
        return self.body.decode()
