"""The Bot: the composition root. It builds the parts from the config (store, channels, HTTP client,
dispatcher, scheduler), starts and stops them, and is the one place that knows them all; none of the
parts holds the Bot. It also offers the transport-free webhook (``receive``) and the bot-started work
(``run``, ``send_text``)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, replace
from typing import Any

from botkit.adapters.base import Adapter, Route
from botkit.app.config import DESK_DEFAULTS, Config, load_app, load_middleware
from botkit.app.handoffs import Handoffs
from botkit.app.hooks import load_hook
from botkit.app.registry import adapter_class
from botkit.app.waiting import Waiters
from botkit.app.webhook import receive
from botkit.core.errors import BotkitError, ConfigError, SkipSave, StoreRefused, StoreUnavailable
from botkit.core.events import Event
from botkit.core.keys import SessionKey, shown
from botkit.core.requests import Reply, Request
from botkit.core.sending import Sender
from botkit.core.session import Session
from botkit.engine.context import Context
from botkit.engine.dispatcher import INBOX_ENTRY, Dispatcher, Handler, Inband, Outcome
from botkit.engine.human_mode import handoff_middleware
from botkit.engine.lifecycle import KEEP_EXPIRED, Lifecycle
from botkit.engine.policy import SessionPolicy
from botkit.engine.rate_limit import RateLimit
from botkit.engine.scheduler import Scheduler
from botkit.engine.transcript import attach
from botkit.engine.worker import InboxWorker
from botkit.flows.context import FlowContext
from botkit.flows.steps import run_step, step_handler
from botkit.http import HttpClient
from botkit.observe import tracing
from botkit.storage import SessionStore, make_store
from botkit.storage.inbox import Entry
from botkit.storage.journal import journal_for
from botkit.storage.steps import Step

log = logging.getLogger("botkit")

STEP_LEASE_MARGIN = 60.0
"""Seconds a claimed step may run beyond the session lock's wait before another process may claim it."""
INBOX_LEASE = 10.0
"""Seconds a worker that died keeps the sessions it was handling (docs/sessions.md: "≤ 15 s")."""
ROLES = ("all", "web", "worker")


class Bot:
    """One running bot. Build it from a Config; ``start`` before use and ``stop`` after.

    ``handler``, ``clock``, ``store``, ``channels`` and ``http`` (the outbound client every channel uses)
    can be passed in, so tests and embedding code can swap them.
    """

    def __init__(
        self,
        config: Config,
        *,
        handler: Handler | None = None,
        clock: Callable[[], float] = time.time,
        store: SessionStore | None = None,
        channels: Mapping[str, Mapping[str, Any]] | None = None,
        role: str = "all",
        http: HttpClient | None = None,
    ) -> None:
        if role not in ROLES:
            raise ConfigError("--role", f"must be one of {', '.join(ROLES)}, not {role!r}")
        self.config = config
        self.role = role
        self.clock = clock
        self.handler: Handler = handler or load_app(config)
        self.policy = SessionPolicy.from_settings(config.session, config.initial_state)
        self.http = http if http is not None else HttpClient(**config.http)
        self.store = store if store is not None else make_store(config.session, config.resolve_path, clock)
        self.owner = secrets.token_urlsafe(12)
        """This process, as the inbox and the live bus know it."""
        self.inbox = self.store.inbox()
        self.bus = self.store.bus()
        self.waiters = Waiters()
        self.worker = None if self.inbox is None or role == "web" else InboxWorker(
            self.inbox, self._handle_entry, clock=clock, lease=INBOX_LEASE, owner=self.owner)
        step_store, caveat = self.store.step_store()
        self.scheduler = Scheduler(
            step_store, self._run_step, clock=clock,
            lease=self.policy.lock_timeout + STEP_LEASE_MARGIN,
            expires_in=self.policy.expires_in_seconds, caveat=caveat,
        )
        self.dispatcher = Dispatcher(self.store, self.policy, clock=clock, handler=self.handler,
                                     senders=self._sender, contexts=self._context)
        self.bot_memory = self.store.bot_memory()
        """Values that outlive sessions, shared by every process using the store (``context.bot_memory``)."""
        self.bot_memory.max_value_size = int(config.bot_memory["max_value_size"])
        self.rate_limit = None if config.session["rate_limit"] is None else RateLimit(
            int(config.session["rate_limit"]), self.store.incr, config.session["rate_limit_notice"])
        if self.rate_limit is not None:
            self.dispatcher.middleware.insert(0, self.rate_limit)
        self.store.keep_expired = max(self.store.keep_expired, KEEP_EXPIRED)
        self.lifecycle = Lifecycle(self.store, journal_for(self.store), clock=clock, contexts=self._context,
                                   senders=self._sender, run=self.run, on_start=load_hook(config, "on_session_start"),
                                   on_end=load_hook(config, "on_session_end"))
        """Sessions' start and end hooks, the end sweep and the stats (engine/lifecycle.py)."""
        self.dispatcher.inner.append(self.lifecycle.middleware)
        self.channels: dict[str, Adapter] = {}
        for name, settings in (channels if channels is not None else config.enabled_channels).items():
            cls = adapter_class(name, dict(settings))
            self.add_channel(cls(name, cls.validate(name, settings), self))
        self.dispatcher.middleware.extend(load_middleware(config))
        minutes = (config.desk or DESK_DEFAULTS)["timeout"]
        self.handoffs = Handoffs(self, None if minutes is None else float(minutes) * 60.0)
        """Human mode (``context.handoff``) and the agents' moves (docs/handoff.md)."""
        self.dispatcher.middleware.append(handoff_middleware(self, clock, self.handoffs.timeout))
        self.started = False

    @property
    def initial_state(self) -> Mapping[str, Any]:
        return self.policy.initial_state

    @property
    def adapters(self) -> dict[str, Adapter]:
        """The enabled channels by name (the name they have in bot.config.py)."""
        return self.channels

    def add_channel(self, channel: Adapter) -> None:
        """Serve one more channel (the console adds itself this way). Its ``replay_window`` (how old a
        delivery it still takes) widens the dedupe window to it, so a replay it lets through is a duplicate."""
        self.channels[channel.name] = channel
        self.dispatcher.middleware.extend(channel.middleware())
        window = channel.settings.get("replay_window")
        if isinstance(window, (int, float)) and not isinstance(window, bool) and window > self.policy.dedupe_window:
            self.policy = self.dispatcher.policy = replace(self.policy, dedupe_window=float(window))

    async def start(self) -> None:
        await self.store.open()
        await self.bot_memory.open()
        if self.inbox is not None:
            await self.inbox.open()
        await self.bus.open()
        self.bus.subscribe(f"done:{self.owner}", self._done_elsewhere)
        if self.inbox is not None:
            inbox = self.inbox
            self.bus.subscribe(inbox.wake_topic, lambda _: inbox.notify())
        for channel in self.channels.values():
            await channel.start()
        await self.lifecycle.start(sweep=self.role != "web")
        if self.role != "web":
            await self.scheduler.start()
        if self.worker is not None:
            await self.worker.start()
        self.started = True

    async def stop(self) -> None:
        self.started = False
        grace = float(self.config.server["shutdown_timeout"])
        if self.worker is not None:
            try:
                await self.worker.stop(grace)
            except Exception:
                log.exception("stopping the inbox worker failed")
        if self.role != "web":
            try:
                await self.scheduler.stop(grace=grace)
            except Exception:
                log.exception("stopping the scheduler failed")
        await self.lifecycle.stop()
        for channel in self.channels.values():
            try:
                await channel.stop()
            except Exception:
                log.exception("stopping the %s channel failed", channel.name)
        for part in (self.bus, self.inbox):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.close()
        await self.http.close()
        with contextlib.suppress(Exception):
            await self.bot_memory.close()
        await self.store.close()

    async def __aenter__(self) -> Bot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- events ------------------------------------------------------------------------------------

    async def receive(self, channel: str, request: Request) -> Reply:
        """A platform's webhook request to ``channel``, answered: verify, parse, store in the inbox, wait
        up to the channel's ``ack_within`` for the handler, respond. Free of any web framework: the server
        (botkit.shell.server) and tests call it alike."""
        return await receive(self.channels[channel], request, self.accept)

    def ack_within(self, channel: str | None) -> float | None:
        """Seconds a webhook of ``channel`` waits for its handler; None: it answers after the handler."""
        setting: Any = self.channels[channel].settings.get("ack_within", "server") if channel in self.channels else "server"
        value: float | None = self.config.server["ack_within"] if setting == "server" else setting
        return value

    async def accept(self, events: list[Event], inband: Inband) -> list[Outcome]:
        """Handle a webhook's events: through the inbox when the channel answers first (the events are
        stored before this returns, or StoreUnavailable), else at once. ``inband`` receives what the
        handlers sent while the webhook still waited."""
        ack_within = self.ack_within(events[0].channel) if events else None
        if self.inbox is None or ack_within is None:
            return await self.dispatch(events, inband)
        ids = await self._put(events)
        waiters = self.waiters.add(ids)
        try:
            if ack_within > 0:
                await asyncio.wait([waiter.future for waiter in waiters], timeout=ack_within)
        finally:
            self.waiters.expire(ids)
        outcomes = []
        for waiter in waiters:
            if not waiter.future.done():
                outcomes.append(Outcome.QUEUED)
                continue
            failure = waiter.future.exception()
            if isinstance(failure, StoreUnavailable):
                raise failure
            outcomes.append(waiter.future.result() if failure is None else Outcome.FAILED)
            inband.extend(waiter.inband)
        return outcomes

    async def _put(self, events: list[Event], origin: str | None = "self") -> list[str]:
        assert self.inbox is not None
        with tracing.span("inbox", {"botkit.events": len(events)}):
            return await self._put_traced(events, origin)

    async def _put_traced(self, events: list[Event], origin: str | None) -> list[str]:
        assert self.inbox is not None
        carrier = tracing.carrier()
        if carrier is not None:
            for event in events:
                event.meta[tracing.TRACE] = carrier
        items = [(event.session_key, event.to_dict()) for event in events]
        origin = self.owner if origin == "self" else origin
        try:
            if not self.inbox.shared:  # in this process: nothing to wait for, no timer to arm (docs/performance.md)
                return await self.inbox.put(items, self.clock(), origin)
            async with asyncio.timeout(self.policy.timeout):
                return await self.inbox.put(items, self.clock(), origin)
        except StoreUnavailable:
            raise
        except Exception as exc:
            raise StoreUnavailable(f"the inbox did not take the events: {type(exc).__name__}: {exc}") from exc

    async def _handle_entry(self, entry: Entry) -> None:
        """The worker's turn for one inbox entry: handle it, then tell the webhook that waits for it."""
        event = Event.from_dict(entry.event)
        event.meta[INBOX_ENTRY] = entry.id
        parent = tracing.extract(event.meta.get(tracing.TRACE))
        with tracing.span("handle", {"botkit.channel": event.channel, "botkit.event_type": event.type}, parent):
            await self._handle_traced(entry, event)

    async def _handle_traced(self, entry: Entry, event: Event) -> None:
        local = entry.origin == self.owner
        waiting = self.waiters.live(entry.id) is not None if local else self._may_wait(entry, event)
        inband: Inband | None = [] if waiting else None
        failure: list[BaseException] = []
        try:
            outcome: Outcome | BaseException = await self.dispatcher.handle(event, self._handler_for(event, failure),
                                                                            inband=inband)
        except StoreUnavailable as exc:
            outcome = exc
        except StoreRefused as exc:  # data the store will never take: answered, acknowledged, not tried again
            log.error("inbox entry %s of %s: %s; acknowledged", entry.id, shown(event.session_key), exc)
            outcome = exc
        if failure and not isinstance(outcome, BaseException):
            outcome = failure[0]
        await self._tell(entry, event, outcome, inband)
        if isinstance(outcome, StoreUnavailable):
            raise outcome

    def _may_wait(self, entry: Entry, event: Event) -> bool:
        """Whether another process's webhook may still wait for ``entry`` (then its in-band content goes
        back to it over the live bus)."""
        ack_within = self.ack_within(event.channel)
        return (self.bus.shared and bool(entry.origin) and ack_within is not None
                and self.clock() < entry.enqueued_at + ack_within)

    async def _tell(self, entry: Entry, event: Event, outcome: Outcome | BaseException, inband: Inband | None) -> None:
        if entry.origin == self.owner:
            if not self.waiters.resolve(entry.id, outcome, inband) and inband:
                await self._deliver_late(event, inband)
            return
        if entry.origin and not self.bus.shared:  # no way to reach the webhook's process: push what came in-band
            if inband:
                await self._deliver_late(event, inband)
            return
        if entry.origin:
            error = None if not isinstance(outcome, BaseException) else f"{type(outcome).__name__}: {outcome}"
            notice = {"id": entry.id, "enqueued_at": entry.enqueued_at, "channel": event.channel,
                      "outcome": None if error else str(outcome), "error": error,
                      "unavailable": isinstance(outcome, StoreUnavailable), "event": event.to_dict() if inband else None,
                      "inband": inband or []}
            try:
                await self.bus.publish(f"done:{entry.origin}", notice)
            except Exception as exc:
                log.warning("could not tell the webhook's process that %s was handled: %s", entry.id, exc)

    def _done_elsewhere(self, notice: Any) -> None:
        """Another process handled one of this process's entries."""
        outcome: Outcome | BaseException
        if notice.get("unavailable"):
            outcome = StoreUnavailable(notice.get("error") or "the session store is unavailable")
        elif notice.get("error"):
            outcome = BotkitError(notice["error"])
        else:
            outcome = Outcome(notice["outcome"])
        inband = list(notice.get("inband") or [])
        entry_id = str(notice["id"])
        waited = self.clock() - float(notice.get("enqueued_at") or 0)
        if self.waiters.pending(entry_id) is None and waited < (self.ack_within(notice.get("channel")) or 0) / 2:
            self.waiters.early(entry_id, outcome, inband, self.clock())  # it came before our put's own reply
            return
        if not self.waiters.resolve(entry_id, outcome, inband) and inband and notice.get("event"):
            task = asyncio.get_running_loop().create_task(self._deliver_late(Event.from_dict(notice["event"]), inband))
            task.add_done_callback(lambda done: done.exception() if not done.cancelled() else None)

    async def _deliver_late(self, event: Event, inband: Inband) -> None:
        """What a handler sent for a webhook that answered before it finished: through the push path."""
        channel = self.channels.get(event.channel or "")
        if channel is None:
            return
        try:
            await channel.deliver_late(event, inband)
        except Exception:
            log.exception("delivering what the handler of %s sent after its webhook answered failed", shown(event.session_key))

    def _handler_for(self, event: Event, failure: list[BaseException]) -> Handler:
        """The app, or what a bot-started entry asks for: a scheduled step, a proactive send."""
        if event.type == "scheduled" and "step" in event.data:
            return step_handler(Step.loads(event.data["step"]))
        send = event.data.get("send") if event.type == "push" else None
        if send is None:
            return self.handler

        async def push(context: Context) -> None:
            try:
                await context.send_native(send["kind"], *send.get("args", ()), **send.get("options", {}))
            except Exception as exc:
                failure.append(exc)
                raise _raised_to_caller(context, exc) from exc
            except BaseException as exc:
                failure.append(exc)
                raise

        return push

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
                           extra=self.config.extra, bot=self, schedule=self.scheduler.add,
                           steps=self.scheduler, bot_memory=self.bot_memory)

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

    # -- human mode (HandoffHost) ------------------------------------------------------------------

    async def handed_off(self, session: Session) -> None:
        await self.handoffs.handed_off(session)

    async def handed_back(self, session: Session, by: str) -> None:
        await self.handoffs.handed_back(session, by)

    async def human_message(self, session: Session, entry: dict[str, Any]) -> None:
        await self.handoffs.human_message(session, entry)

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
        await self.send(session_key, "text", text, **options)

    async def send(self, session_key: str, kind: str, *args: Any, **options: Any) -> None:
        """``bot.send("telegram:1", "image", url)``: any of the channel's ``send_<kind>`` methods. With an
        inbox, the send takes its turn among the session's events (from any process) and this waits for
        it; a failed send raises here either way."""
        if self.inbox is not None:
            key = SessionKey(session_key)
            event = Event(key.platform, "push", key, data={"send": {"kind": kind, "args": list(args), "options": options}})
            [entry_id] = await self._put([event])
            [waiter] = self.waiters.add([entry_id])
            try:
                outcome = await waiter.future
            finally:
                self.waiters.expire([entry_id])
            if outcome is Outcome.FAILED:
                raise BotkitError(f"sending to {session_key} failed (see the log)")
            return
        await self._push(session_key, lambda context: context.send_native(kind, *args, **options))

    async def _run_step(self, step: Step) -> None:
        """A due scheduled step: with an inbox it takes its turn among the session's events."""
        if self.inbox is None:
            await run_step(self.run, step)
            return
        key = SessionKey(step.key)
        data = {"slug": step.slug, "due_at": step.due, "scheduled_at": step.scheduled_at, "step": asdict(step)}
        await self._put([Event(key.platform, "scheduled", key, id=step.id, data=data)], origin=None)

    async def _push(self, session_key: str, send: Callable[[Context], Awaitable[Any]]) -> None:
        failure: list[BaseException] = []

        async def handler(context: Context) -> None:
            try:
                await send(context)
            except Exception as exc:
                failure.append(exc)
                raise _raised_to_caller(context, exc) from exc
            except BaseException as exc:
                failure.append(exc)
                raise

        await self.run(session_key, handler)
        if failure:
            raise failure[0]


def _raised_to_caller(context: Context, exc: Exception) -> SkipSave:
    """A send started outside a handler failed: the caller of ``bot.send`` gets the error (a SendError it
    may catch), so the dispatcher logs one line, not a traceback, and saves nothing."""
    return SkipSave(f"a send to {shown(context.session.id)} failed and was raised to its caller: {type(exc).__name__}: {exc}")
