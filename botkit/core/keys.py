"""Session keys: ``<platform>:<id>``, the one place that knows their shape."""
from __future__ import annotations

SEPARATOR = ":"


class SessionKey(str):
    """A session key such as ``telegram:16423``; a ``str``, so stores and logs take it as it is."""

    __slots__ = ()

    @classmethod
    def of(cls, platform: str, ident: str | int) -> SessionKey:
        return cls(f"{platform}{SEPARATOR}{ident}")

    @property
    def platform(self) -> str:
        """What comes before the first ``:`` (the whole key when it has none: stores take any key)."""
        return self.partition(SEPARATOR)[0]

    @property
    def ident(self) -> str:
        """What follows the platform: a chat id, a phone number, a web session id."""
        return self.partition(SEPARATOR)[2]
