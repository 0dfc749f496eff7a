"""Just enough HTTP/1.1 framing for the bench's own load generator and fake API.

Both sit on the same two cores as the server under test, so they speak HTTP through bare asyncio
protocols instead of aiohttp: each message costs them a few microseconds, leaving the CPU to the server.
Bodies must carry a Content-Length (aiohttp's server and client always send one for these messages).
"""
from __future__ import annotations

END_OF_HEAD = b"\r\n\r\n"


class FramingError(ValueError):
    """The peer sent something this little parser does not handle (chunked bodies, garbage)."""


def take_message(buffer: bytearray) -> tuple[bytes, bytes] | None:
    """Remove one complete message from ``buffer``: (head without the blank line, body), or None
    when the message has not fully arrived yet."""
    end = buffer.find(END_OF_HEAD)
    if end < 0:
        return None
    head = bytes(buffer[:end])
    length = content_length(head)
    start = end + len(END_OF_HEAD)
    if len(buffer) < start + length:
        return None
    body = bytes(buffer[start : start + length])
    del buffer[: start + length]
    return head, body


def content_length(head: bytes) -> int:
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        if b"\r\ntransfer-encoding:" in lower:
            raise FramingError("chunked bodies are not supported")
        return 0
    value_start = at + len(b"\r\ncontent-length:")
    value_end = lower.find(b"\r\n", value_start)
    try:
        return int(head[value_start : value_end if value_end >= 0 else None])
    except ValueError:
        raise FramingError(f"bad Content-Length in {head[:200]!r}") from None


def status_of(head: bytes) -> int:
    """The status code of a response head (``HTTP/1.1 200 OK``)."""
    try:
        return int(head[9:12])
    except ValueError:
        raise FramingError(f"not an HTTP response: {head[:200]!r}") from None


def response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    reason = b"OK" if status == 200 else b"Error"
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        status, reason, content_type, len(body), body)


def request(method: bytes, path: bytes, host: bytes, headers: bytes, body: bytes) -> bytes:
    """``headers``: extra header lines, each ending in CRLF."""
    return b"%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        method, path, host, len(body), headers, body)
