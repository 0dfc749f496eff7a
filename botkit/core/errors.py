"""The exceptions botkit raises, each meaning one thing to the user or the platform."""
from __future__ import annotations

from typing import Any


class BotkitError(Exception):
    """Base class of every error botkit raises on purpose."""


class ConfigError(BotkitError):
    """A mistake in bot.config.py: names the setting and says how to fix it."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class RequestRejected(BotkitError):
    """A webhook request that must not reach the handler; carries the HTTP status to answer."""

    status = 400

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status


class Unauthorized(RequestRejected):
    status = 401


class Forbidden(RequestRejected):
    status = 403


class BadRequest(RequestRejected):
    status = 400


class SkipSave(BotkitError):
    """Raised by a handler to end its run leaving the session exactly as it was, with no error logged
    (a scheduled step whose session moved on, say)."""


class StoreUnavailable(BotkitError):
    """The session store did not answer in time; the webhook answers 503 so the platform redelivers."""


class StoreRefused(BotkitError):
    """The session store answered, and refused the data for good (a character it cannot hold, a value
    over one of its limits): trying again would fail the same way. Not "unavailable": the event is not
    saved, its webhook answers 200 and its inbox entry is acknowledged, so nothing redelivers it. The
    message names the store's error class, never the data."""


class VersionConflict(BotkitError):
    """A save found a newer record than the one loaded (a lost lease): refused, never merged."""


class SendError(BotkitError):
    """An outbound platform call failed for good; carries the platform's answer."""

    def __init__(self, method: str, url: str, status: int | None, body: Any, reason: str = "") -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        detail = reason or f"HTTP {status}"
        super().__init__(f"{method} {url} failed: {detail}: {body!r}"[:2000])
