"""The Bot: config, store, channels, the HTTP client and the dispatcher, wired together."""
from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Mapping

from .config import Config, load_app
from .context import Context
from .dispatcher import Dispatcher, Handler, Outcome
from .drivers import SessionStore, driver_class
from .errors import BotkitError
from .event import Event
from .http import HttpClient
from .registry import adapter_class
from .scheduling import Scheduler, make_scheduler
from .session import Session

log = logging.getLogger("botkit")


class Bot:
    """One running bot. Build it from a Config; ``start`` before use and ``stop`` after.

    ``handler``, ``clock`` and ``store`` can be passed in, so tests and embedding code can swap them.
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
        self.initial_state = config.initial_state
        session = config.session
        self.expires_in: float | None = session["expires_in"]
        self.history_limit: int = int(session["history"])
        self.max_state_size: int = int(session["max_state_size"])
        self.store_timeout: float = float(session["timeout"])
        self.lock_timeout: float = float(session["lock_timeout"]) + self.store_timeout
        self.http = HttpClient(**config.http)
        self.store = store if store is not None else self._make_store()
        self.dispatcher = Dispatcher(self)
        self.adapters: dict[str, Any] = {}
        self._by_platform: dict[str, Any] = {}
        for name, settings in (channels if channels is not None else config.enabled_channels).items():
            cls = adapter_class(name, dict(settings))
            adapter = cls(name, cls.validate(name, settings), self)
            self.adapters[name] = adapter
            self._by_platform.setdefault(adapter.platform, adapter)
        self._local_senders: dict[str, Any] = {}
        self.scheduler: Scheduler = make_scheduler(self)
        self.started = False

    def _make_store(self) -> SessionStore:
        name = self.config.session["driver"]
        cls = driver_class(name)
        settings = self.config.store_settings(name)
        if "dirname" in cls.defaults:
            settings["dirname"] = str(self.config.resolve_path(settings.get("dirname", cls.defaults["dirname"])))
        return cls(settings, clock=self.clock, lock_timeout=float(self.config.session["lock_timeout"]),
                   timeout=self.store_timeout)

    async def start(self) -> None:
        await self.store.open()
        for adapter in self.adapters.values():
            await adapter.start()
        await self.scheduler.start()
        self.started = True

    async def stop(self) -> None:
        self.started = False
        try:
            await self.scheduler.stop(grace=float(self.config.server["shutdown_timeout"]))
        except Exception:
            log.exception("stopping the scheduler failed")
        for adapter in self.adapters.values():
            try:
                await adapter.stop()
            except Exception:
                log.exception("stopping the %s channel failed", adapter.name)
        await self.http.close()
        await self.store.close()

    async def __aenter__(self) -> "Bot":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # -- events ----------------------------------------------------------------------------------

    async def dispatch(self, events: list[Event]) -> list[Outcome]:
        return await self.dispatcher.dispatch(events)

    def adapter_for(self, platform: str) -> Any:
        adapter = self._by_platform.get(platform)
        if adapter is None:
            raise BotkitError(f"no enabled channel serves {platform!r} sessions")
        return adapter

    def sender_for(self, event: Event, session: Session) -> Any:
        if event.channel is not None and event.channel in self.adapters:
            return self.adapters[event.channel].sender(event)
        if event.meta.get("sender") is not None:
            self.attach_sender(session.id, event.meta["sender"])
            return event.meta["sender"]
        if event.platform not in self._by_platform and session.id in self._local_senders:
            return self._local_senders[session.id]
        return self.adapter_for(event.platform).push_sender(session.id, session.address)

    def attach_sender(self, session_key: str, sender: Any) -> None:
        """Reach a conversation held in this process with no channel (the console) through ``sender``, so
        scheduled steps and ``send_text`` reach it too; an event carrying a sender attaches it."""
        senders = self._local_senders
        senders.pop(session_key, None)
        senders[session_key] = sender
        if len(senders) > 1024:
            del senders[next(iter(senders))]

    async def load_session(self, session_key: str) -> Session | None:
        """The session as stored, or None when there is none or it expired (read-only: no lease)."""
        record = await self.store.load(session_key)
        if record is None:
            return None
        session = Session.from_record(record)
        return None if session.is_expired(self.clock()) else session

    async def hit(self, name: str, window: float) -> tuple[int, float]:
        """Count a hit on a rate-limit counter shared by every process using the store."""
        return await self.store.incr(name, window)

    def remember_inbound(self, session: Session, event: Event, now: float) -> None:
        if self.history_limit:
            entry = {"dir": "in", "type": event.type, "at": now}
            if event.text is not None:
                entry["text"] = event.text
            elif event.payload is not None:
                entry["payload"] = event.payload
            session.remember(entry, self.history_limit)

    def remember_outbound(self, session: Session, kind: str, text: str | None) -> None:
        if self.history_limit:
            entry: dict[str, Any] = {"dir": "out", "type": kind, "at": self.clock()}
            if text is not None:
                entry["text"] = text
            session.remember(entry, self.history_limit)

    # -- messages the bot starts -----------------------------------------------------------------

    async def run(self, session_key: str, handler: Handler, *, event_type: str = "push", data: Mapping[str, Any] | None = None,
                  event_id: str | None = None) -> Outcome:
        """Run ``handler`` on a session as if an event had come: under the session's lock, with its
        state, a push sender and a save afterwards. Scheduled steps and proactive sends go through here.
        ``event_id`` makes a repeated run (a scheduled step claimed again) a duplicate, not run twice."""
        platform = session_key.split(":", 1)[0]
        event = Event(platform=platform, type=event_type, session_key=session_key, data=dict(data or {}), id=event_id)
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

