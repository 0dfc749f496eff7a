"""What every fake platform does: give the channel test credentials, sign what its users send as the
platform signs it, and answer (and read back) what the bot calls, as the platform would."""
from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from botkit.adapters.base import Adapter
from botkit.core.requests import Reply
from botkit.testing.clock import FakeClock
from botkit.testing.http import HttpCall
from botkit.testing.messages import Button, Message

Deliver = Callable[[str, list[Message]], None]
"""Hands what the bot sent to a conversation (by its platform address) to the tester."""


class TesterError(Exception):
    """The test asked for something the channel cannot do (pressing a button on SMS, say)."""

    __test__ = False  # not a test class, whatever pytest makes of its name


@dataclass(slots=True)
class Identity:
    """One tester user as the platform knows them."""

    name: str
    session_key: str
    address: str
    """What the platform's calls name the conversation by (a chat id, a PSID, a phone number …)."""
    ids: dict[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return self.name[:1].upper() + self.name[1:]


@dataclass(slots=True)
class Inbound:
    """A request as the platform sends it to the bot: signed, with its raw body."""

    path: str
    headers: dict[str, str]
    body: bytes = b""
    method: str = "POST"
    query: dict[str, str] = field(default_factory=dict)


class Platform:
    """One fake platform for one channel of the bot under test."""

    adapters: ClassVar[tuple[str, ...]] = ()
    """The adapter classes (module:Class of botkit.adapters) this platform stands in for."""
    secrets: ClassVar[tuple[str, ...]] = ()
    """Settings the test replaces with its own credentials."""
    buttons: ClassVar[bool] = True
    """False when users cannot press anything on this channel (SMS)."""

    def __init__(self, name: str, clock: FakeClock, deliver: Deliver) -> None:
        self.name = name
        self.clock = clock
        self.deliver = deliver
        self.seq = itertools.count(1)
        self.users: dict[str, Identity] = {}
        self.addresses: dict[str, Identity] = {}
        self.origin = "http://127.0.0.1:5000"
        """Where the platform believes the bot is served (what Twilio signs)."""
        self._adapter: Adapter | None = None
        self.base = secrets.randbelow(10**6) * 1000
        """Ids differ from one test to the next, so tests sharing a store never share a session."""

    # -- set-up ------------------------------------------------------------------------------------

    def test_settings(self) -> dict[str, Any]:
        return {}

    def settings(self, configured: Mapping[str, Any]) -> dict[str, Any]:
        """The channel's settings for the test: what bot.config.py says, with test credentials."""
        kept = {key: value for key, value in configured.items() if key not in self.secrets and key != "enabled"}
        return {**kept, **self.test_settings()}

    def attach(self, adapter: Adapter) -> None:
        self._adapter = adapter

    @property
    def adapter(self) -> Adapter:
        assert self._adapter is not None, "the platform is not attached to a channel yet"
        return self._adapter

    @property
    def path(self) -> str:
        return self.adapter.path

    def identity(self, name: str) -> Identity:
        found = self.users.get(name)
        if found is None:
            found = self.users[name] = self.new_identity(name, len(self.users) + 1)
            if found.address:
                self.addresses[found.address] = found
        return found

    def new_identity(self, name: str, n: int) -> Identity:
        raise NotImplementedError

    async def open(self, user: Identity) -> None:
        """What the platform does before a user's first message (the web chat starts a session)."""

    async def close(self) -> None:
        """The test ends."""

    # -- what users send ---------------------------------------------------------------------------

    def text(self, user: Identity, text: str) -> Inbound:
        raise NotImplementedError

    def press(self, user: Identity, button: Button, message: Message | None) -> Inbound:
        raise NotImplementedError

    def replies_in(self, user: Identity, reply: Reply) -> list[Message]:
        """Messages the webhook's own answer carries (the web chat's); none on other channels."""
        return []

    # -- what the bot calls ------------------------------------------------------------------------

    def answers(self, url: str) -> bool:
        return url.startswith(self.adapter.api_base + "/")

    def answer(self, call: HttpCall) -> tuple[int, Any]:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------------------

    def next(self) -> int:
        return next(self.seq)

    def message(self, kind: str, to: str, raw: Any, *, text: str | None = None, buttons: tuple[Button, ...] = (),
                url: str | None = None, cards: tuple[Any, ...] = (), id: str | None = None) -> Message:
        return Message(kind, text=text, buttons=buttons, url=url, cards=cards, channel=self.name, to=to,
                       id=id, at=self.clock(), raw=raw)


def url_path(url: str) -> str:
    return urlsplit(url).path
