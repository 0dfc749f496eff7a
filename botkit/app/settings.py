"""The top-level names of bot.config.py botkit knows, and the check that catches a misspelt one.

A name within two edits of a known setting (one for names of four letters or fewer) is taken for a typo:
``sesion = {...}`` would otherwise be a custom value, and the bot would quietly run on the memory store.
Custom values go in ``extra = {...}`` or under names starting with ``_``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from botkit.core.errors import ConfigError

KNOWN = (
    "app", "initial_state", "session", "server", "http", "channels", "extra", "middleware", "bot_memory",
    "on_session_start", "on_session_end", "name", "desk",
)
"""Every top-level setting; others add theirs here."""


def distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) from ``a`` to ``b``: optimal string alignment."""
    rows = [list(range(len(b) + 1))]
    for i, left in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, right in enumerate(b, 1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (left != right))
            if i > 1 and j > 1 and left == b[j - 2] and a[i - 2] == right:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def likely_setting(name: str, known: Iterable[str] = KNOWN) -> str | None:
    """The known setting ``name`` is probably a misspelling of, or None."""
    best: tuple[int, str] | None = None
    for setting in known:
        if name == setting:
            return None
        edits = distance(name.lower(), setting)
        if edits <= (1 if len(setting) <= 4 else 2) and (best is None or edits < best[0]):
            best = (edits, setting)
    return None if best is None else best[1]


def custom_values(settings: Mapping[str, Any], known: Iterable[str] = KNOWN) -> dict[str, Any]:
    """``context.extra``: the ``extra`` dict, and the other names the file defines that are not botkit's.
    ConfigError for a name that looks like a misspelt setting."""
    known = tuple(known)
    found: dict[str, Any] = {}
    for name, value in settings.items():
        if name in known or name.startswith("_"):
            continue
        setting = likely_setting(name, known)
        if setting is not None:
            raise ConfigError(name, f'unknown setting; did you mean `{setting}`? (custom values go in extra = {{"{name}": ...}} '
                                    "or a name starting with _)")
        found[name] = value
    extra = settings.get("extra")
    if extra is None:
        return found
    if not isinstance(extra, Mapping):
        raise ConfigError("extra", f"must be a dict of your own values, not {type(extra).__name__}")
    return {**found, **extra}
