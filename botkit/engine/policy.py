"""The session settings the engine acts on, read once from ``session`` in bot.config.py."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botkit.core.session import DEDUPE_WINDOW


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    initial_state: Mapping[str, Any] = field(default_factory=dict)
    expires_in: float | None = None
    """Minutes of inactivity after which a session starts afresh; None: never."""
    history: int = 50
    """Messages kept in a session's transcript, both directions."""
    max_state_size: int = 1024 * 1024
    """Bytes of JSON state a session may hold; 0: no limit."""
    timeout: float = 5.0
    """Seconds one store call may take before the webhook answers 503."""
    lock_timeout: float = 35.0
    """Seconds ``begin`` may wait for another process's lease, plus ``timeout``."""
    dedupe_window: float = DEDUPE_WINDOW
    """Seconds a handled event's id is kept to recognise a redelivery or a replay of it: at least the
    longest ``replay_window`` of the channels (the app widens it to that)."""

    @classmethod
    def from_settings(cls, session: Mapping[str, Any], initial_state: Mapping[str, Any]) -> SessionPolicy:
        timeout = float(session["timeout"])
        return cls(
            initial_state=initial_state,
            expires_in=session["expires_in"],
            history=int(session["history"]),
            max_state_size=int(session["max_state_size"]),
            timeout=timeout,
            lock_timeout=float(session["lock_timeout"]) + timeout,
            dedupe_window=float(session.get("dedupe_window", DEDUPE_WINDOW)),
        )

    @property
    def expires_in_seconds(self) -> float | None:
        return None if self.expires_in is None else self.expires_in * 60.0
