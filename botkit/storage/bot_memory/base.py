"""What every bot memory offers: ``get``, ``set`` and ``delete`` of JSON values by string key.

A value is written at once, outside the session's save: a handler that raises after ``set`` leaves the
value set (bot memory is not rolled back with the session's state)."""
from __future__ import annotations

import abc
from typing import Any

import orjson

from botkit.core.errors import BotkitError

DEFAULT_MAX_VALUE_SIZE = 1024 * 1024


class ValueTooLarge(BotkitError, ValueError):
    """A value over ``bot_memory.max_value_size`` bytes of JSON: refused, nothing is written."""


class BotMemory(abc.ABC):
    """Values by key, encoded as JSON (orjson); drivers store the encoded bytes."""

    shared = False
    """True when every process using the store sees the same values."""

    def __init__(self) -> None:
        self.max_value_size = DEFAULT_MAX_VALUE_SIZE
        """Bytes of JSON one value may take (``bot_memory.max_value_size``; 0: no limit)."""

    async def open(self) -> None:
        """Prepare (a table, an index); called once at start-up, after the session store opened."""

    async def close(self) -> None:
        """Called once at shutdown, before the session store closes."""

    async def get(self, key: str, default: Any = None) -> Any:
        data = await self._get(_checked(key))
        return default if data is None else orjson.loads(data)

    async def set(self, key: str, value: Any) -> None:
        """Store ``value`` (anything JSON can hold) under ``key``; raise ValueTooLarge (nothing stored)
        when its JSON is over ``max_value_size`` bytes, TypeError when JSON cannot hold it."""
        _checked(key)
        try:
            data = orjson.dumps(value)
        except TypeError as exc:
            raise TypeError(f"bot memory {key!r}: the value is not JSON-serialisable ({exc})") from None
        if self.max_value_size and len(data) > self.max_value_size:
            raise ValueTooLarge(f"bot memory {key!r}: the value is {len(data)} bytes of JSON, over "
                                f"bot_memory.max_value_size ({self.max_value_size}); not stored")
        await self._set(key, data)

    async def delete(self, key: str) -> bool:
        """Forget ``key``; True if it was there."""
        return await self._delete(_checked(key))

    @abc.abstractmethod
    async def _get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def _set(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    async def _delete(self, key: str) -> bool: ...


def _checked(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"a bot memory key is a non-empty string, not {key!r}")
    return key
