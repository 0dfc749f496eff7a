"""The bot's outbound HTTP client in a test: every call goes to an in-process fake of the platform, is
recorded, and is answered as the platform answers it. No socket is opened."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import aiohttp
from yarl import URL

from botkit.core.errors import SendError
from botkit.http import HttpClient, Retryable, RetryAfter, never, redact, retry_after_header


@dataclass(slots=True)
class HttpCall:
    """One call the bot made to a platform, with the fake platform's answer."""

    method: str
    url: str
    headers: dict[str, str]
    json: Any = None
    form: list[tuple[str, str]] | None = None
    status: int = 0
    answer: Any = None
    refused: str | None = None
    """Why the fake platform refused the call (as the platform would), or None."""

    @property
    def path(self) -> str:
        """The URL's path, percent-decoded."""
        return unquote(urlsplit(self.url).path)

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query))

    @property
    def data(self) -> dict[str, str]:
        """The form, as a dict (the last value of a repeated field)."""
        return dict(self.form or [])

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


class Answerer(Protocol):
    def answers(self, url: str) -> bool: ...

    def answer(self, call: HttpCall) -> tuple[int, Any]: ...


class FakeHttp(HttpClient):
    """An ``HttpClient`` whose calls are answered in-process by ``platforms`` (the first that answers the
    URL). A refused call raises ``SendError`` at once, as the real client does once its retries are spent;
    nothing is retried and nothing sleeps. A URL no fake answers raises too: a test never reaches the
    network."""

    def __init__(self, platforms: list[Answerer] | None = None, on_call: Callable[[HttpCall], None] | None = None) -> None:
        super().__init__(attempts=1)
        self.platforms: list[Answerer] = list(platforms or [])
        self.calls: list[HttpCall] = []
        self.on_call = on_call

    async def close(self) -> None:
        """Nothing to close: no connection is ever opened."""

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: aiohttp.BasicAuth | None = None,
        retry_after: RetryAfter = retry_after_header,
        retryable: Retryable = never,
    ) -> Any:
        text = str(url)
        call = HttpCall(method.upper(), text, dict(headers or {}), json, _form(data))
        if auth is not None:
            call.headers.setdefault("Authorization", auth.encode())
        self.calls.append(call)
        platform = next((p for p in self.platforms if p.answers(text)), None)
        if platform is None:
            call.refused = "no fake platform answers this URL"
            if self.on_call is not None:
                self.on_call(call)
            raise SendError(call.method, redact(text), None, None,
                            "botkit.testing: no fake platform answers this URL (a test never reaches the network)")
        call.status, call.answer = platform.answer(call)
        if self.on_call is not None:
            self.on_call(call)
        if call.status >= 400:
            raise SendError(call.method, redact(text), call.status, call.answer)
        return call.answer


def _form(data: Any) -> list[tuple[str, str]] | None:
    if data is None:
        return None
    if isinstance(data, Mapping):
        return [(str(key), str(value)) for key, value in data.items()]
    if isinstance(data, (list, tuple)):
        return [(str(key), str(value)) for key, value in data]
    if isinstance(data, (bytes, str)):
        raw = data.decode() if isinstance(data, bytes) else data
        return parse_qsl(raw, keep_blank_values=True)
    return [("", str(data))]


__all__ = ["FakeHttp", "HttpCall"]
