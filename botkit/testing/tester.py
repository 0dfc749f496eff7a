"""``BotTester``: a bot from its config, talked to as a platform's users talk to it, on a clock the test moves.

Every message goes the way a real one goes: signed as the platform signs it, through the channel's own
verification and parsing, the inbox, the handler and the session store, out through the channel's sender
to an in-process fake of the platform's API, and read back from that call into a ``Message``.
"""
from __future__ import annotations

import asyncio
import copy
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode, urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

from botkit.app.bot import Bot
from botkit.app.config import Config, load_app, load_config
from botkit.app.registry import adapter_class
from botkit.core.errors import ConfigError, RequestRejected
from botkit.core.requests import Reply, Request
from botkit.core.session import Session
from botkit.engine.dispatcher import Handler
from botkit.storage import SessionStore, driver_class, make_store
from botkit.testing.clock import FakeClock, duration
from botkit.testing.http import FakeHttp, HttpCall
from botkit.testing.messages import Button, Message
from botkit.testing.platforms import Identity, Inbound, Platform, TesterError, platform_for

log = logging.getLogger("botkit.testing")

SETTLE_TIMEOUT = 10.0
"""Real seconds the bot may stay busy after a message before the test fails (a handler that never ends)."""
DEFAULT_USER = "user"


class BotFailed(AssertionError):
    """The bot logged an error while handling what the test sent: a handler raised, a send was refused by
    the platform, a state did not fit. The original exception is chained (``__cause__``)."""


class RequestRefused(AssertionError):
    """The channel refused a request the fake platform sent (wrong signature, rate limit …)."""

    def __init__(self, message: str, status: int, body: bytes) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class _Failures(logging.Handler):
    """Errors the bot logs while the test runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Harness:
    """What the users of one ``BotTester`` share: the bot, its clock, the fake platform and what it saw."""

    def __init__(self, config: Config | str | os.PathLike[str] | None, *, channel: str | None, driver: str,
                 handler: Handler | None, start: float | None, raise_errors: bool) -> None:
        self.config = config if isinstance(config, Config) else load_config(config)
        self.clock = FakeClock(start)
        self.raise_errors = raise_errors
        name, settings, adapter = _channel(self.config, channel)
        fake = platform_for(adapter)
        if fake is None:
            raise ConfigError(f"channels.{name}", f"botkit.testing has no fake platform for {adapter.__module__}."
                                                  f"{adapter.__qualname__}")
        self.channel = name
        self.platform: Platform = fake(name, self.clock, self.deliver)
        self.http = FakeHttp([self.platform])
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self.driver = self.config.session["driver"] if driver == "config" else driver
        store = self._store()
        self.bot = Bot(self.config, handler=handler or load_handler(self.config), clock=self.clock, store=store,
                       channels={name: self.platform.settings(settings)}, http=self.http)
        self.adapter = self.bot.channels[name]
        self.platform.attach(self.adapter)
        server = self.config.server
        self.platform.origin = f"http://{server['host']}:{server['port']}"
        self.testers: dict[str, BotTester] = {}
        self.outbox: list[Message] = []
        self.failures = _Failures()
        self.started = False

    def _store(self) -> SessionStore:
        cls = driver_class(self.driver)
        settings = dict(self.config.store_settings(self.driver))
        if "dirname" in cls.defaults:  # never the bot's own session folder
            self._tempdir = tempfile.TemporaryDirectory(prefix="botkit-test-", ignore_cleanup_errors=True)
            settings["dirname"] = self._tempdir.name
        cls.validate(settings)
        session = {**self.config.session, "driver": self.driver,
                   "stores": {**self.config.session["stores"], self.driver: settings}}
        return make_store(session, self.config.resolve_path, self.clock)

    # -- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.started:
            return
        logging.getLogger("botkit").addHandler(self.failures)
        try:
            await self.bot.start()
        except BaseException:
            logging.getLogger("botkit").removeHandler(self.failures)
            raise
        self.started = True

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        try:
            if self.driver != "memory" and self._tempdir is None:  # leave nothing behind in a shared store
                for tester in self.testers.values():
                    if tester.session_key:
                        try:
                            await self.bot.store.delete(tester.session_key)
                        except Exception as exc:
                            log.warning("could not delete %s after the test: %s", tester.session_key, exc)
            await self.bot.stop()
            await self.platform.close()
        finally:
            logging.getLogger("botkit").removeHandler(self.failures)
            if self._tempdir is not None:
                self._tempdir.cleanup()

    def check_started(self) -> None:
        if not self.started:
            raise TesterError("the bot is not running: use `async with BotTester(...) as bot:` (or `await bot.start()`)")

    # -- what the platform sends -------------------------------------------------------------------

    async def post(self, inbound: Inbound) -> Reply:
        """The request as the server hands it to the channel: headers checked before the body is read,
        the channel's body limit, then the webhook walk (``Bot.receive``)."""
        origin = urlsplit(self.platform.origin)
        raw_path = inbound.path + (f"?{urlencode(inbound.query)}" if inbound.query else "")
        head = Request(inbound.method, inbound.path, headers=CIMultiDictProxy(CIMultiDict(inbound.headers)),
                       query=dict(inbound.query), scheme=origin.scheme, host=origin.netloc, raw_path=raw_path,
                       remote="127.0.0.1")
        try:
            await self.adapter.check_headers(head)
        except RequestRejected as exc:
            return self.adapter.reject(exc)
        server_limit = int(self.config.server["client_max_size"])
        limit = min(self.adapter.max_body_size or server_limit, server_limit)
        if len(inbound.body) > limit:
            return self.adapter.reject(RequestRejected(f"the request body is over {limit} bytes", 413))
        return await self.bot.receive(self.channel, replace(head, body=inbound.body))

    def deliver(self, address: str, messages: list[Message]) -> None:
        identity = self.platform.addresses.get(address)
        tester = self.testers.get(identity.name) if identity is not None else None
        for message in messages:
            message = replace(message, user=tester.name if tester is not None else None)
            self.outbox.append(message)
            if tester is not None:
                tester.replies.append(message)

    # -- waiting for the bot -----------------------------------------------------------------------

    async def settle(self) -> None:
        """Return once the bot has nothing left to do now: every event handled, every step due by the
        clock run, every message delivered."""
        bot = self.bot
        deadline = time.monotonic() + SETTLE_TIMEOUT
        rounds = 0
        while True:
            for _ in range(8):
                await asyncio.sleep(0)
            if not await self._busy():
                if bot.role == "web" or not await bot.scheduler.run_due():
                    return
                continue
            rounds += 1
            if time.monotonic() > deadline:
                raise BotFailed(f"the bot is still busy {SETTLE_TIMEOUT:g} s after the last message (a handler that "
                                "does not end, or an event waiting for a store that does not answer)")
            await asyncio.sleep(0 if rounds < 100 else 0.002)

    async def _busy(self) -> bool:
        bot = self.bot
        if bot.dispatcher.in_flight or bot.scheduler.busy or (bot.worker is not None and bot.worker.busy):
            return True
        return bot.inbox is not None and (await bot.inbox.stats()).depth > 0

    async def refresh(self) -> None:
        for tester in self.testers.values():
            key = tester.session_key
            tester._session = await self.bot.load_session(key) if key else None

    def failures_since(self, mark: int) -> None:
        """Raise BotFailed for the first error the bot logged since ``mark`` (when the test wants that)."""
        found = self.failures.records[mark:]
        if not found or not self.raise_errors:
            return
        first = found[0]
        cause = first.exc_info[1] if first.exc_info else None
        more = f" (and {len(found) - 1} more error(s))" if len(found) > 1 else ""
        raise BotFailed(f"the bot logged an error: {first.getMessage()}{more}") from cause


class BotTester:
    """A bot from ``bot.config.py`` (a path, a folder, a ``Config``, or None for ``./bot.config.py``) on one
    of its channels, talked to by a test as users of that platform talk to it::

        async with BotTester("bot.config.py", channel="telegram") as bot:
            await bot.send("hi")
            assert bot.replies[-1].text == "Count: 1"
            assert bot.state["count"] == 1

    ``channel``: a channel of the config or a registered one (``telegram``, ``messenger``, ``line``, ``sms``,
    ``whatsapp``, ``whatsapp.cloud``, ``teams``, ``web``); by default the config's first enabled channel,
    else its first listed one, else ``telegram``. The channel's own settings from the config are kept; its
    credentials are the test's. ``driver``: the session driver (``memory`` by default; ``config`` for the
    one the config names, or any driver name, with the config's settings for it; the file driver writes to
    a temporary folder). ``handler`` replaces the config's app. ``start``: the clock's start (epoch
    seconds; now by default). ``raise_errors``: an error the bot logs while handling the test's message
    (a handler that raised, a send the platform refused) fails the action with ``BotFailed``.
    """

    def __init__(self, config: Config | str | os.PathLike[str] | None = None, *, channel: str | None = None,
                 user: str = DEFAULT_USER, driver: str = "memory", handler: Handler | None = None,
                 start: float | None = None, raise_errors: bool = True, _harness: Harness | None = None) -> None:
        self._harness = _harness or Harness(config, channel=channel, driver=driver, handler=handler, start=start,
                                            raise_errors=raise_errors)
        if user in self._harness.testers:
            raise TesterError(f"there is a tester for {user!r} already: use bot.user({user!r})")
        self.name = user
        self.replies: list[Message] = []
        """What the bot sent to this user, in order (every message of every action so far)."""
        self._session: Session | None = None
        self._harness.testers[user] = self

    # -- life cycle --------------------------------------------------------------------------------

    async def start(self) -> BotTester:
        await self._harness.start()
        return self

    async def stop(self) -> None:
        await self._harness.stop()

    async def __aenter__(self) -> BotTester:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def started(self) -> bool:
        return self._harness.started

    # -- users -------------------------------------------------------------------------------------

    def user(self, name: str) -> BotTester:
        """Another user of the same bot (their own conversation and session); the same tester for a name
        asked again."""
        found = self._harness.testers.get(name)
        return found if found is not None else BotTester(user=name, _harness=self._harness)

    @property
    def users(self) -> dict[str, BotTester]:
        return dict(self._harness.testers)

    # -- what the user does ------------------------------------------------------------------------

    async def send(self, text: str) -> list[Message]:
        """The user writes ``text``; returns what the bot sent back (also appended to ``replies``)."""
        return await self._act(lambda user: self._platform.text(user, text), f"the message {text!r}")

    async def press(self, button: str | Button) -> list[Message]:
        """The user taps a button or quick reply the bot sent: found by its payload, else by its title,
        among this user's replies (newest first); a payload no button carries is sent as it is (a persistent
        menu, a link into the chat). Returns what the bot sent back."""
        platform = self._platform
        if not platform.buttons:
            raise TesterError(f"the {self.channel} channel has no buttons: a user answers by text (use send)")
        found, message = self._button(button) if isinstance(button, str) else (button, None)
        if found.payload is None and found.text is None:
            raise TesterError(f"the button {found.title!r} opens {found.url}: nothing reaches the bot")
        return await self._act(lambda user: platform.press(user, found, message), f"pressing {found.title!r}")

    async def advance(self, delay: float | timedelta = 0.0, *, seconds: float = 0.0, minutes: float = 0.0,
                      hours: float = 0.0, days: float = 0.0) -> list[Message]:
        """Move the clock on: sessions expire, and scheduled steps run at their due times, in order, without
        sleeping. Returns what the bot sent this user meanwhile."""
        harness = self._harness
        harness.check_started()
        clock, bot = harness.clock, harness.bot
        target = clock() + duration(delay, seconds=seconds, minutes=minutes, hours=hours, days=days)
        mark, errors = len(self.replies), len(harness.failures.records)
        await harness.settle()
        while True:
            upcoming = [due for due, _ in await bot.scheduler.pending() if due <= target]
            if not upcoming or min(upcoming) <= clock():
                break
            clock.set(min(upcoming))
            await harness.settle()
        clock.set(target)
        await harness.settle()
        if await bot.lifecycle.sweep():  # sessions that expired meanwhile end (their end hook runs)
            await harness.settle()
        await harness.refresh()
        harness.failures_since(errors)
        return self.replies[mark:]

    async def settle(self) -> None:
        """Wait until the bot has nothing left to do (after driving ``tester.bot`` directly)."""
        self._harness.check_started()
        await self._harness.settle()
        await self._harness.refresh()

    async def _act(self, make: Callable[[Identity], Inbound], what: str) -> list[Message]:
        harness = self._harness
        harness.check_started()
        user = await self._identity()
        mark, errors = len(self.replies), len(harness.failures.records)
        inbound = make(user)
        reply = await harness.post(inbound)
        if not 200 <= reply.status < 300:
            raise RequestRefused(f"the {self.channel} channel answered {reply.status} to {what} from {self.name}: "
                                 f"{reply.body[:300]!r}", reply.status, reply.body)
        harness.deliver(user.address, self._platform.replies_in(user, reply))
        await harness.settle()
        await harness.refresh()
        harness.failures_since(errors)
        return self.replies[mark:]

    async def _identity(self) -> Identity:
        identity = self._platform.identity(self.name)
        await self._platform.open(identity)
        return identity

    def _button(self, key: str) -> tuple[Button, Message | None]:
        for field in ("payload", "title", "text"):
            for message in reversed(self.replies):
                for found in message.all_buttons:
                    if getattr(found, field) == key:
                        return found, message
        return Button(key, payload=key), None

    # -- what the test reads -----------------------------------------------------------------------

    @property
    def _platform(self) -> Platform:
        return self._harness.platform

    @property
    def channel(self) -> str:
        return self._harness.channel

    @property
    def bot(self) -> Bot:
        """The running ``botkit.Bot``."""
        return self._harness.bot

    @property
    def clock(self) -> FakeClock:
        return self._harness.clock

    @property
    def now(self) -> float:
        return self._harness.clock()

    @property
    def session_key(self) -> str | None:
        """This user's session key (None on the web chat before the first message)."""
        identity = self._harness.platform.users.get(self.name)
        if identity is None:
            identity = self._harness.platform.identity(self.name)
        return identity.session_key or None

    @property
    def session(self) -> Session | None:
        """This user's session as stored after the last action; None before any, or once it expired."""
        return self._session

    @property
    def state(self) -> Mapping[str, Any]:
        """This user's state after the last action (``initial_state`` when there is no session)."""
        if self._session is None:
            return MappingProxyType(copy.deepcopy(dict(self._harness.bot.initial_state)))
        return MappingProxyType(self._session.state)

    @property
    def calls(self) -> list[HttpCall]:
        """Every call the bot made to the platform (all users), with the fake platform's answer."""
        return self._harness.http.calls

    @property
    def errors(self) -> list[str]:
        """What the bot logged as errors since it started (read them with ``raise_errors=False``)."""
        return [record.getMessage() for record in self._harness.failures.records]

    @property
    def outbox(self) -> list[Message]:
        """Every message the bot sent, to any conversation."""
        return self._harness.outbox

    def __repr__(self) -> str:
        return f"<BotTester {self.name!r} on {self.channel} ({len(self.replies)} replies)>"


def _channel(config: Config, channel: str | None) -> tuple[str, dict[str, Any], type[Any]]:
    """The channel's name, its settings from the config and its adapter class."""
    if channel is None:
        enabled, listed = list(config.enabled_channels), list(config.channels)
        channel = enabled[0] if enabled else listed[0] if listed else "telegram"
    name, provider = channel, None
    if channel not in config.channels and "." in channel:
        name, _, provider = channel.partition(".")
    settings = dict(config.channels.get(name) or {})
    if provider is not None and settings.get("provider") != provider:
        settings = {"provider": provider}
    return name, settings, adapter_class(name, settings)


def load_handler(config: Config) -> Handler:
    """The config's app, imported from the config's folder, also when a module of that name was imported
    before from another folder (two bots' ``bot.py`` in one test run)."""
    target = config.app
    if isinstance(target, str):
        module_name = target.partition(":")[0]
        root = Path(config.root).resolve()
        cached = sys.modules.get(module_name)
        if cached is None or not _within(cached, root):
            for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
                del sys.modules[name]
            while str(root) in sys.path:
                sys.path.remove(str(root))
            sys.path.insert(0, str(root))
    handler: Handler = load_app(config)
    return handler


def _within(module: Any, root: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is None or Path(file).resolve().is_relative_to(root)
