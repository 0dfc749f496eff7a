"""CPU a forged webhook costs before its 401: µs per unsigned request, per channel.

    python -m bench.unsigned_cost [--size BYTES] [--seconds S]

Each channel gets the largest body it would read (``--size``, 1 MiB by default, or its ``max_body_size``
when smaller: a bigger one is refused with 413 before it is read) shaped to cost the most (Twilio: a form
of as many fields as it takes; the others: JSON), with a well-formed but wrong credential (a signature
of the right length, a secret of the right alphabet, an RS256 token with a wrong signature from a cached
key). It runs what the server runs for a webhook: ``check_headers``, the size check, then verify → parse.
The figure is the process's CPU time per request; the HTTP server's own reading of the body is not in
it (it is the same for every channel, and nothing for a body refused on its headers).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from botkit import Bot
from botkit.adapters.base import Adapter
from botkit.app.config import config_from_mapping
from botkit.app.webhook import receive
from botkit.core.errors import RequestRejected
from botkit.core.requests import Request

MiB = 1024 * 1024
TWILIO_SID = "AC" + "0" * 32
TEAMS_APP_ID = "0a6ab4a3-6c6d-4e46-9a79-0b1c8b5e2f10"


@dataclass
class Case:
    channel: str
    settings: dict[str, Any]
    headers: Callable[[Adapter], Awaitable[dict[str, str]]]
    body: Callable[[int], bytes]
    content_type: str = "application/json"
    shape: str = "one JSON string"


def json_body(size: int) -> bytes:
    """A JSON document of ``size`` bytes (one long string: the cheapest JSON to make, the costliest to hash)."""
    head, tail = b'{"object":"page","entry":[],"padding":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def form_body(size: int, count: int | None = None) -> bytes:
    """A form of ``size`` bytes: ``count`` fields sharing the bytes, or as many short ones as fit.
    Parsing, sorting and signing them is Twilio's cost."""
    fields = urlencode({"MessageSid": "SM" + "0" * 32, "From": "+15551234567", "To": "+15557654321"}).encode()
    if count is None:
        count = (size - len(fields)) // len(b"&F0000000=v")
    width = max((size - len(fields)) // count - len(b"&F0000000="), 1)
    body = fields + b"".join(b"&F%07d=" % n + b"v" * width for n in range(count))
    return body[:size] + b"v" * (size - len(body))


def few_fields(size: int) -> bytes:
    """500 long fields: under any sane bound on the number of fields, so the whole form is parsed."""
    return form_body(size, 500)


async def static(headers: dict[str, str]) -> dict[str, str]:
    return headers


async def teams_headers(adapter: Adapter) -> dict[str, str]:
    """A token with a cached kid and the right claims but a signature from another key: the costliest refusal."""
    from botkit.adapters.botframework_auth import SigningKey

    real, forger = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    cached = SigningKey(real.public_key(), None)

    async def get(kid: str) -> SigningKey | None:  # the keys as a running server holds them
        return cached

    adapter.verifier.keys.get = get  # type: ignore[attr-defined]
    now = int(time.time())
    claims = {"iss": "https://api.botframework.com", "aud": TEAMS_APP_ID, "nbf": now - 10, "exp": now + 3600,
              "serviceurl": "https://smba.trafficmanager.net/amer/"}
    return {"Authorization": "Bearer " + jwt.encode(claims, forger, algorithm="RS256", headers={"kid": "k1"})}


CASES = [
    Case("telegram", {"access_token": "1:tg", "secret_token": "tg-secret"},
         lambda a: static({"X-Telegram-Bot-Api-Secret-Token": "wrong-secret"}), json_body),
    Case("messenger", {"access_token": "EAA", "app_secret": "fb-secret", "verify_token": "v"},
         lambda a: static({"X-Hub-Signature-256": "sha256=" + "0" * 64}), json_body),
    Case("whatsapp", {"provider": "cloud", "access_token": "EAA", "app_secret": "wa-secret", "verify_token": "v",
                      "phone_number_id": "1234567890"},
         lambda a: static({"X-Hub-Signature-256": "sha256=" + "0" * 64}), json_body),
    Case("line", {"access_token": "line-token", "channel_secret": "line-secret"},
         lambda a: static({"X-Line-Signature": base64.b64encode(b"\0" * 32).decode()}), json_body),
    Case("sms", {"account_sid": TWILIO_SID, "auth_token": "twilio-token", "phone_number": "+15557654321"},
         lambda a: static({"X-Twilio-Signature": base64.b64encode(b"\0" * 20).decode()}), form_body,
         "application/x-www-form-urlencoded", "many short fields"),
    Case("sms", {"account_sid": TWILIO_SID, "auth_token": "twilio-token", "phone_number": "+15557654321"},
         lambda a: static({"X-Twilio-Signature": base64.b64encode(b"\0" * 20).decode()}), few_fields,
         "application/x-www-form-urlencoded", "500 long fields"),
    Case("teams", {"app_id": TEAMS_APP_ID, "app_password": "teams-password"}, teams_headers, json_body),
]


async def never(events: Any, inband: Any) -> Any:
    raise AssertionError("an unsigned request reached the handler")


async def never_handled(context: Any) -> None:
    raise AssertionError("an unsigned request reached the handler")


async def one(adapter: Adapter, request: Request, limit: int) -> tuple[int, int]:
    """What the server does with one webhook request: its answer's status and the bytes of body it read."""
    try:
        await adapter.check_headers(replace_body(request, b""))
    except RequestRejected as exc:
        return exc.status, 0
    if len(request.body) > limit:
        return 413, 0
    return (await receive(adapter, request, never)).status, len(request.body)


def replace_body(request: Request, body: bytes) -> Request:
    fields = {name: getattr(request, name) for name in Request.__dataclass_fields__}
    return Request(**{**fields, "body": body})


async def measure(case: Case, size: int, seconds: float) -> tuple[int, int, float]:
    """The bytes read, the status, and µs of CPU per request."""
    config = config_from_mapping({"channels": {case.channel: case.settings}, "initial_state": {}}, root=None)
    bot = Bot(config, handler=never_handled)
    adapter = bot.channels[case.channel]
    limit = min(getattr(adapter, "max_body_size", None) or size, size)
    body = case.body(limit)
    headers = {"Content-Type": case.content_type, **(await case.headers(adapter))}
    request = Request("POST", adapter.path, headers=headers, body=body, scheme="https", host="bot.example.com",
                      raw_path=adapter.path, remote="203.0.113.7")
    status, read = await one(adapter, request, limit)
    runs, started = 0, time.process_time()
    while time.process_time() - started < seconds:
        for _ in range(5):
            await one(adapter, request, limit)
        runs += 5
    spent = time.process_time() - started
    return read, status, spent / runs * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=MiB, help="bytes an attacker sends (default 1 MiB)")
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds to spend per channel")
    args = parser.parse_args()
    print(f"{'channel':<10} {'body':<18} {'bytes read':>10} {'status':>6} {'µs CPU / request':>17}")
    for case in CASES:
        read, status, micros = await measure(case, args.size, args.seconds)
        print(f"{case.channel:<10} {case.shape:<18} {read:>10,} {status:>6} {micros:>17,.0f}")


if __name__ == "__main__":
    asyncio.run(main())
