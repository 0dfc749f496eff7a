"""A clock that only moves when the test says so."""
from __future__ import annotations

import time
from datetime import timedelta


class FakeClock:
    """Seconds since the epoch, like ``time.time``; starts at the real time (or ``start``) and stands
    still until ``advance``. The bot, its store, its scheduler and its channels all read it."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the clock does not go back ({seconds} s)")
        self.now += seconds

    def set(self, when: float) -> None:
        if when < self.now:
            raise ValueError(f"the clock does not go back ({when} is before {self.now})")
        self.now = when


def duration(delay: float | timedelta = 0.0, *, seconds: float = 0.0, minutes: float = 0.0, hours: float = 0.0,
             days: float = 0.0) -> float:
    """Seconds in ``delay`` (a number of seconds or a timedelta) plus the named units."""
    base = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    total = base + seconds + minutes * 60 + hours * 3600 + days * 86400
    if total < 0:
        raise ValueError(f"time only goes forward; {total} s is negative")
    return total
