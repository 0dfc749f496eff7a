"""Session keys: ``<platform>:<id>``, the one place that knows their shape."""
from __future__ import annotations

import hashlib

SEPARATOR = ":"
OWN = "botkit"
"""The platform part of the keys of botkit's own records kept beside the sessions (the desk's list of
conversations in human mode, ``botkit:handoffs``): no channel uses it, and listings leave them out."""


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


def is_conversation(key: str) -> bool:
    """Whether ``key`` is a conversation's session, not one of botkit's own records (``OWN``)."""
    return key.partition(SEPARATOR)[0] != OWN


def shown(key: str) -> str:
    """A session key as log lines above DEBUG show it: the platform and a short hash of the rest
    (``sms:#1f0c3a9e5b``), so that one conversation can be followed through the log without the log
    holding phone numbers or chat ids. The hash is not a secret: someone who guesses a key can check the
    guess. The dispatcher logs the key in full at DEBUG."""
    platform, separator, ident = key.partition(SEPARATOR)
    digest = hashlib.blake2b((ident if separator else key).encode(), digest_size=5).hexdigest()
    return f"{platform}{SEPARATOR}#{digest}" if separator else f"#{digest}"
