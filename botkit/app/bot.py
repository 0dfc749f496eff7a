"""The Bot: the composition root. It builds the parts from the config (store, channels, HTTP client,
dispatcher, scheduler), starts and stops them, and is the one place that knows them all; none of the
parts holds the Bot. It also offers the transport-free webhook (``receive``) and the bot-started work
(``run``, ``send_text``)."""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from botkit.adapters.base import Adapter, Route
from botkit.app.config import Config, load_app
from botkit.app.registry import adapter_class
from botkit.app.webhook import receive
from botkit.core.errors import BotkitError
from botkit.core.events import Event
from botkit.core.keys import SessionKey
from botkit.core.requests import Reply, Request
from botkit.core.sending import Sender
from botkit.core.session import Session
from botkit.engine.context import Context
from botkit.engine.dispatcher import Dispatcher, Handler, Inband, Outcome
from botkit.engine.policy import SessionPolicy
from botkit.engine.scheduler import Scheduler
from botkit.engine.transcript import attach
from botkit.flows.context import FlowContext
from botkit.flows.steps import run_step
from botkit.http import HttpClient
from botkit.storage import SessionStore, make_store

log = logging.getLogger("botkit")

STEP_LEASE_MARGIN = 60.0
"""Seconds a claimed step may run beyond the session lock's wait before another process may claim it."""


class Bot:
    """One running bot. Build it from a Config; ``start`` before use and ``stop`` after.

    ``handler``, ``clock``, ``store`` and ``channels`` can be passed in, so tests and embedding code can
    swap them.
    """

    def __init__(
        self,
        config: Config,
        *,
        handler: Handler | None = None,
        clock: Callable[[], float] = time.time,
        store: SessionStore | None = None,
        channels: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.handler: Handler = handler or load_app(config)
        self.policy = SessionPolicy.from_settings(config.session, config.initial_state)
        self.http = HttpClient(**config.http)
        self.store = store if store is not None else make_store(config.session, config.resolve_path, clock)
        step_store, caveat = self.store.step_store()
        self.scheduler = Scheduler(
            step_store, partial(run_step, self.run), clock=clock,
            lease=self.policy.lock_timeout + STEP_LEASE_MARGIN,
            expires_in=self.policy.expires_in_seconds, caveat=caveat,
        )
        self.dispatcher = Dispatcher(self.store, self.policy, clock=clock, handler=self.handler,
                                     senders=self._sender, contexts=self._context)
        self.channels: dict[str, Adapter] = {}
        for name, settings in (channels if channels is not None else config.enabled_channels).items():
            cls = adapter_class(name, dict(settings))
            self.add_channel(cls(name, cls.validate(name, settings), self))
        self.started = False

    @property
    def initial_state(self) -> Mapping[str, Any]:
        return self.policy.initial_state

    @property
    def adapters(self) -> dict[str, Adapter]:
        """The enabled channels by name (the name they have in bot.config.py)."""
        return self.channels

    def add_channel(self, channel: Adapter) -> None:
        """Serve one more channel (the console adds itself this way)."""
        self.channels[channel.name] = channel
        self.dispatcher.middleware.extend(channel.middleware())

    async def start(self) -> None:
        await self.store.open()
        for channel in self.channels.values():
            await channel.start()
        await self.scheduler.start()
        self.started = True

    async def stop(self) -> None:
        self.started = False
        try:
            await self.scheduler.stop(grace=float(self.config.server["shutdown_timeout"]))
        except Exception:
            log.exception("stopping the scheduler failed")
        for channel in self.channels.values():
            try:
                await channel.stop()
            except Exception:
                log.exception("stopping the %s channel failed", channel.name)
        await self.http.close()
        await self.store.close()

    async def __aenter__(self) -> Bot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- events ------------------------------------------------------------------------------------

    async def receive(self, channel: str, request: Request) -> Reply:
        """A platform's webhook request to ``channel``, answered: verify, parse, handle, respond. Free of
        any web framework: the server (botkit.shell.server) and tests call it alike."""
        return await receive(self.channels[channel], request, self.dispatch)

    async def dispatch(self, events: list[Event], inband: Inband | None = None) -> list[Outcome]:
        return await self.dispatcher.dispatch(events, inband)

    def routes(self) -> list[tuple[str, Route]]:
        """Every channel's routes, with the channel's name."""
        return [(name, route) for name, channel in self.channels.items() for route in channel.routes()]

    def channel_for(self, session: Session) -> Adapter:
        """The channel a session's messages go out through: the one it last came through, else the
        first enabled channel serving its platform."""
        if session.channel is not None and session.channel in self.channels:
            return self.channels[session.channel]
        platform = SessionKey(session.id).platform
        for channel in self.channels.values():
            if channel.platform == platform:
                return channel
        raise BotkitError(f"no enabled channel serves {platform!r} sessions")

    def _sender(self, event: Event, session: Session, inband: Inband | None) -> Sender:
        if event.channel is not None and event.channel in self.channels:
            return self.channels[event.channel].sender(event, inband)
        return self.channel_for(session).push_sender(session.id, session.address)

    def _context(self, event: Event, session: Session, sender: Sender) -> Context:
        return FlowContext(event, session, sender, policy=self.policy, clock=self.clock, app=self.handler,
                           extra=self.config.extra, bot=self, schedule=self.scheduler.add)

    async def load_session(self, session_key: str) -> Session | None:
        """The session as stored, or None when there is none or it expired (read-only: no lease); its
        history is read on demand (``await session.load_history()``)."""
        record = await self.store.load(session_key)
        if record is None:
            return None
        session = Session.from_record(record)
        return None if session.is_expired(self.clock()) else attach(session, self.store, self.policy.history)

    async def hit(self, name: str, window: float) -> tuple[int, float]:
        """Count a hit on a rate-limit counter shared by every process using the store."""
        return await self.store.incr(name, window)

    # -- messages the bot starts -------------------------------------------------------------------

    async def run(self, session_key: str, handler: Callable[[Any], Awaitable[Any]], *, event_type: str = "push",
                  data: Mapping[str, Any] | None = None, event_id: str | None = None) -> Outcome:
        """Run ``handler`` on a session as if an event had come: under the session's lock, with its
        state, a push sender (through the session's channel) and a save afterwards. Scheduled steps and
        proactive sends go through here. ``event_id`` makes a repeated run (a scheduled step claimed
        again) a duplicate, not run twice."""
        key = SessionKey(session_key)
        event = Event(platform=key.platform, type=event_type, session_key=key, data=dict(data or {}), id=event_id)
        return await self.dispatcher.handle(event, handler)

    async def send_text(self, session_key: str, text: str, **options: Any) -> None:
        """Send a message to a session from outside a handler (a cron job, another service)."""
        await self._push(session_key, lambda context: context.send_text(text, **options))

    async def send(self, session_key: str, kind: str, *args: Any, **options: Any) -> None:
        """``bot.send("telegram:1", "image", url)``: any of the channel's ``send_<kind>`` methods."""
        await self._push(session_key, lambda context: getattr(context, f"send_{kind}")(*args, **options))

    async def _push(self, session_key: str, send: Callable[[Context], Awaitable[Any]]) -> None:
        failure: list[BaseException] = []

        async def handler(context: Context) -> None:
            try:
                await send(context)
            except BaseException as exc:
                failure.append(exc)
                raise

        await self.run(session_key, handler)
        if failure:
            raise failure[0]
