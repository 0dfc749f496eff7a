"""What the webhook channels check alike before a request reaches a handler: a credential header that can
be read at all, and the age of a signed delivery.

A signature over a body proves who sent it, not when: a captured delivery verifies forever. The platforms
that sign a body with a timestamp inside it (Meta, LINE, Teams) let a channel refuse one older than the
platform would ever redeliver (``replay_window``, seconds; None turns the check off).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from botkit.core.errors import ConfigError, Unauthorized
from botkit.core.events import Event
from botkit.core.requests import Request

MILLIS_AFTER = 1e11
"""A number of epoch seconds above this is in the year 5138: such a timestamp is in milliseconds."""


def credential(request: Request, name: str) -> str | None:
    """The header ``name``, stripped; None when absent or blank. A value no credential can hold (bytes
    that are not printable ASCII) is refused at once: 401, like any other wrong credential."""
    value = request.headers.get(name)
    if value is None:
        return None
    if not value.isascii() or not value.isprintable():
        raise Unauthorized(f"{name} holds bytes no credential has")
    return value.strip() or None


def epoch_seconds(value: Any, *, millis: bool = False) -> float | None:
    """An epoch timestamp from a body (a number, or a string of digits) in seconds; None when it is not
    one. ``millis``: the platform counts milliseconds."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    stamp = value / 1000 if millis else float(value)
    return stamp if math.isfinite(stamp) else None


def entry_seconds(value: Any) -> float | None:
    """An epoch timestamp whose unit the platform does not fix (Meta's ``entry[].time``: milliseconds on
    Messenger, seconds on WhatsApp), told apart by its size."""
    stamp = epoch_seconds(value)
    if stamp is not None and abs(stamp) > MILLIS_AFTER:
        return stamp / 1000
    return stamp


def replay_window(name: str, settings: Mapping[str, Any]) -> float | None:
    """The channel's validated ``replay_window``: positive seconds, or None (off)."""
    window = settings.get("replay_window")
    if window is None:
        return None
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not math.isfinite(window) or window <= 0:
        raise ConfigError(f"channels.{name}.replay_window", f"must be a number of seconds above 0, or None; not {window!r}")
    return float(window)


def refuse_stale(events: Iterable[Event], window: float | None, now: float) -> None:
    """Unauthorized when the newest signed timestamp of a delivery is older than ``window`` seconds: the
    platform stopped redelivering it long ago, so it is a replay. A delivery without timestamps passes."""
    if window is None:
        return
    stamps = [event.timestamp for event in events if event.timestamp is not None]
    age = now - max(stamps) if stamps else 0.0
    if age > window:
        raise Unauthorized(f"a delivery {age:.0f} s old, over the channel's replay_window of {window:.0f} s: a replay")
