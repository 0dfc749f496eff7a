"""The one outbound HTTP client: a shared aiohttp ClientSession with timeouts, retries and backoff."""
from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from botkit.core.errors import SendError
from botkit.observe import metrics, scope, tracing

log = logging.getLogger("botkit.http")

RetryAfter = Callable[[int, Mapping[str, str], Any], "float | None"]
"""Reads a platform's own "wait this long" out of a failed answer (status, headers, parsed body)."""


Retryable = Callable[[int, Any], bool]
"""Says whether a failed answer (status, parsed body) other than 429/5xx is worth another try."""

_SECRET_PARAM = re.compile(r"((?:access_)?token|secret|key|signature)=[^&#]*", re.IGNORECASE)
_REDACTIONS: list[tuple[re.Pattern[str], str]] = []
"""Secrets in URL paths, contributed by the channels that put them there (``add_redaction``)."""


def add_redaction(pattern: re.Pattern[str], replacement: str) -> None:
    """Mask what ``pattern`` matches in every URL this client logs or reports (a bot token in a path)."""
    if all(known is not pattern for known, _ in _REDACTIONS):
        _REDACTIONS.append((pattern, replacement))


def redact(url: str) -> str:
    """The URL with secrets it may carry (query tokens, channels' path secrets) masked, for logs and errors."""
    url = _SECRET_PARAM.sub(lambda m: m.group(1) + "=***", url)
    for pattern, replacement in _REDACTIONS:
        url = pattern.sub(replacement, url)
    return url


def never(status: int, body: Any) -> bool:
    return False


def retry_after_header(status: int, headers: Mapping[str, str], body: Any) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class HttpClient:
    """Retries 429 (honouring Retry-After), 5xx and connection errors with exponential backoff and
    jitter; never retries another 4xx. A call that finally fails raises SendError with the answer."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 0.5,
        max_wait: float = 30.0,
    ) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.attempts = attempts
        self.backoff = backoff
        self.max_wait = max_wait
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
                connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=300),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

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
        """Send, retrying what can be retried; returns the parsed JSON answer (or its text). Pass a
        ``yarl.URL(..., encoded=True)`` to send a path exactly as given (ids with ``%3A`` in them)."""
        channel = scope.channel.get()
        with tracing.span("send", {"http.request.method": method, "botkit.channel": channel}) as span:
            status, body, attempt = await self._attempts(method, url, json, data, headers, auth, retry_after, retryable)
            metrics.send(channel, status, attempt - 1)
            tracing.set_attribute(span, "http.response.status_code", status)
            tracing.set_attribute(span, "botkit.retries", attempt - 1)
        if isinstance(body, SendError):
            raise body
        return body

    async def _attempts(self, method: str, url: str | URL, json: Any, data: Any, headers: Mapping[str, str] | None,
                        auth: aiohttp.BasicAuth | None, retry_after: RetryAfter, retryable: Retryable) -> tuple[int | None, Any, int]:
        """Try until an answer below 400, a 4xx not worth retrying, or the last attempt: (status, body, attempts);
        a final failure's body is the SendError to raise."""
        status: int | None = None
        body: Any = None
        reason = ""
        attempt = 0
        for attempt in range(1, self.attempts + 1):
            wait: float | None = None
            try:
                async with self.session.request(
                    method, url, json=json, data=data, headers=headers, auth=auth
                ) as response:
                    status = response.status
                    body = await _read(response)
                    if status < 400:
                        return status, body, attempt
                    if status == 429:
                        wait = retry_after(status, response.headers, body)
                    elif status < 500 and not retryable(status, body):
                        return status, SendError(method, redact(str(url)), status, body), attempt
                reason = f"HTTP {status}"
            except (TimeoutError, aiohttp.ClientError) as exc:
                status, body, reason = None, None, f"{type(exc).__name__}: {exc}".rstrip(": ")
            if attempt == self.attempts:
                break
            if wait is None:
                wait = self.backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
            wait = min(wait, self.max_wait)
            log.warning("%s %s: %s; retry %d/%d in %.2fs", method, redact(str(url)), reason, attempt, self.attempts - 1, wait)
            await asyncio.sleep(wait)
        return status, SendError(method, redact(str(url)), status, body, reason), self.attempts


async def _read(response: aiohttp.ClientResponse) -> Any:
    raw = await response.read()
    if not raw:
        return None
    if "json" in (response.content_type or ""):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return raw.decode(response.get_encoding() if response.charset else "utf-8", "replace")
