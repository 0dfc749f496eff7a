"""Runs the handler for each event: dedupe, per-session ordering, lease, load → run → save.

Events of one session run one at a time, in arrival order: in this process through a FIFO lock per
session key, across processes through the store's lease. Events of different sessions run concurrently.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any

from botkit.core.errors import SkipSave, StoreRefused, StoreUnavailable, VersionConflict
from botkit.core.events import Event
from botkit.core.keys import shown
from botkit.core.sending import Sender
from botkit.core.session import DEDUPE, Session, dumps
from botkit.engine.context import Context
from botkit.engine.middleware import Middleware, chain, record_inbound
from botkit.engine.policy import SessionPolicy
from botkit.engine.transcript import appended, attach
from botkit.observe import metrics, scope, tracing
from botkit.storage.base import Lease, SessionStore

log = logging.getLogger("botkit.engine.dispatcher")

Handler = Callable[[Context], Awaitable[Any]]
Inband = list[Any]
"""What a handler sent while the platform's request still waits (the web chat's messages): the channel
answers the request with it."""
SenderFor = Callable[[Event, Session, "Inband | None"], Sender]
"""The sender for an event of a session: the app asks the session's channel."""
ContextFor = Callable[[Event, Session, Sender], Context]


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    FAILED = "failed"
    QUEUED = "queued"
    """Waiting in the inbox (or being handled) when the webhook answered."""


INBOX_ENTRY = "inbox_entry"
"""``event.meta`` key of the inbox entry an event came from: its dedupe id when the platform gave none."""


def dedupe_id(event: Event) -> str | None:
    """What makes a second delivery of ``event`` a duplicate: the platform's id, else the inbox entry's."""
    if event.id is not None:
        return event.id
    entry = event.meta.get(INBOX_ENTRY)
    return None if entry is None else f"inbox:{entry}"


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class KeyedLocks:
    """One FIFO asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, _KeyLock] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)


async def flush_sends(sender: Sender, *, quietly: bool = False) -> None:
    """Deliver what a batching sender holds (LINE sends one reply call per handler run). After a handler
    that raised, what it sent is still delivered, as on channels that send at once; a failure is logged."""
    if not quietly:
        await sender.flush()
        return
    try:
        await sender.flush()
    except Exception:
        log.exception("delivering what a failed handler sent failed")


class Dispatcher:
    """Handles events with ``handler`` on sessions of ``store``; ``senders`` gives each event its sender
    and ``contexts`` builds what the handler sees (both from the app, which knows the channels and the
    features)."""

    def __init__(self, store: SessionStore, policy: SessionPolicy, *, clock: Callable[[], float],
                 handler: Handler, senders: SenderFor, contexts: ContextFor,
                 middleware: Sequence[Middleware] = ()) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.handler = handler
        self.senders = senders
        self.contexts = contexts
        self.middleware: list[Middleware] = [record_inbound, *middleware]
        """Runs around every handler, the first outermost: the transcript, then what the app and the
        channels add (rate limits, hooks, the web chat's checks, the config's ``middleware``)."""
        self.inner: list[Middleware] = []
        """Runs inside ``middleware``, right around the handler (the sessions' start and end hooks)."""
        self.locks = KeyedLocks()
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def idle(self) -> None:
        """Return once no event is being handled (graceful shutdown waits for it)."""
        await self._idle.wait()

    async def dispatch(self, events: list[Event], inband: Inband | None = None) -> list[Outcome]:
        """Handle a webhook's events; raises StoreUnavailable if any could not be loaded or saved."""
        if len(events) == 1:
            return [await self.handle(events[0], inband=inband)]
        groups: dict[str, list[Event]] = {}
        for event in events:
            groups.setdefault(event.session_key, []).append(event)
        results = await asyncio.gather(*(self._handle_group(group, inband) for group in groups.values()),
                                       return_exceptions=True)
        outcomes: list[Outcome] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            outcomes.extend(result)
        return outcomes

    async def _handle_group(self, events: list[Event], inband: Inband | None) -> list[Outcome]:
        async with self.locks.hold(events[0].session_key):
            return [await self._handle_counted(event, self.handler, inband, None) for event in events]

    async def handle(self, event: Event, handler: Handler | None = None, *, inband: Inband | None = None) -> Outcome:
        asked = time.perf_counter()
        async with self.locks.hold(event.session_key):
            return await self._handle_counted(event, handler or self.handler, inband, asked)

    async def _handle_counted(self, event: Event, handler: Handler, inband: Inband | None, asked: float | None) -> Outcome:
        scope.bind(event.channel, event.session_key, event.id)
        outcome = await self._handle_locked(event, handler, inband, asked)
        metrics.event(scope.channel.get(), event.type, outcome, event.meta)
        return outcome

    async def _handle_locked(self, event: Event, handler: Handler, inband: Inband | None, asked: float | None = None) -> Outcome:
        store, policy = self.store, self.policy
        asked = time.perf_counter() if asked is None else asked
        self.in_flight += 1
        self._idle.clear()
        try:
            try:
                lease: Lease = await self._store_call(store.begin(event.session_key), policy.lock_timeout)
            except StoreRefused as exc:
                log.error("%s event %s of %s not handled: %s; answered, not retried", event.type, event.id,
                          shown(event.session_key), exc)
                return Outcome.FAILED
            metrics.lease_wait(time.perf_counter() - asked)
            try:
                session = self._session_from(lease.record, event.session_key, self.clock())
                outcome, context = await self._run(event, handler, session, inband)
                if outcome is not Outcome.HANDLED or context is None:
                    await self._store_call(store.release(lease), policy.timeout)
                    return outcome
                handled_as = dedupe_id(event)
                now = self.clock()
                if handled_as is not None:
                    session.mark_handled(handled_as, now, policy.dedupe_window)
                session.touch(now, context.expires_in)
                session.version += 1
                try:
                    await self._store_call(store.commit(lease, session.to_record(), appended(session)), policy.timeout,
                                           key=session.id)
                except StoreRefused as exc:
                    if lease.token is not None:  # a store that keeps its lease when a save is refused
                        await asyncio.shield(self._release_quietly(lease))
                    await self._refused(event, exc)
                    return Outcome.FAILED
            except BaseException:
                if lease.token is not None:
                    await asyncio.shield(self._release_quietly(lease))
                raise
            await self._after_save(context)
            return outcome
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()

    async def _run(self, event: Event, handler: Handler, session: Session,
                   inband: Inband | None) -> tuple[Outcome, Context | None]:
        """Run the handler on the loaded session; HANDLED means its changes are to be saved."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s event %s of %s (%s)", event.type, event.id, shown(session.id), session.id)
        handled_as = dedupe_id(event)
        if handled_as is not None and session.has_handled(handled_as):
            log.info("event %s of %s was handled already; acknowledged, not run again", handled_as, shown(session.id))
            return Outcome.DUPLICATE, None
        if event.address and event.address != session.address:
            self._take_address(session, event)
        if event.channel is not None:
            session.channel = event.channel
        else:
            scope.channel.set(session.channel)
        metrics.seen(session.id)
        if event.is_message:
            session.message_count += 1
        context = self.contexts(event, session, self.senders(event, session, inband))
        started = time.perf_counter()
        try:
            with tracing.span("handler", {"botkit.channel": session.channel, "botkit.event_type": event.type}):
                await chain(self.middleware + self.inner if self.inner else self.middleware, handler)(context)
                await flush_sends(context.sender)
        except SkipSave as skip:
            log.info("%s event of %s not saved: %s", event.type, shown(session.id), skip)
            return Outcome.SKIPPED, context
        except Exception:
            log.exception("handler raised on %s event %s of %s; session left as it was", event.type, event.id,
                          shown(session.id))
            await flush_sends(context.sender, quietly=True)
            return Outcome.FAILED, context
        finally:
            metrics.handler_seconds(session.channel, time.perf_counter() - started)
        if not self._state_fits(session):
            return Outcome.FAILED, context
        return Outcome.HANDLED, context

    async def _refused(self, event: Event, refusal: StoreRefused) -> None:
        """The store refused the handler's changes for good (data it cannot hold): the session stays as
        it was, and only the event's id is saved into it, under a new lease (the refused commit ended
        the first one), so that a redelivery or a replay is a duplicate instead of running the handler
        again to be refused again. Logged once, at ERROR, without the event's data."""
        store, policy, handled_as = self.store, self.policy, dedupe_id(event)
        remembered = False
        try:
            lease: Lease | None = await self._store_call(store.begin(event.session_key), policy.lock_timeout)
        except (StoreRefused, StoreUnavailable):
            lease = None
        if lease is not None:
            try:
                if handled_as is not None:
                    now = self.clock()
                    session = self._session_from(lease.record, event.session_key, now)
                    session.mark_handled(handled_as, now, policy.dedupe_window)
                    if session.expires_at is None and policy.expires_in is not None:
                        session.touch(now, policy.expires_in)  # a fresh session: it expires as any would
                    session.version += 1
                    await self._store_call(store.commit(lease, session.to_record(), appended(session)), policy.timeout)
                    remembered = True
            except (StoreRefused, StoreUnavailable):
                pass
            finally:
                if lease.token is not None:
                    await asyncio.shield(self._release_quietly(lease))
        log.error("%s event %s of %s not saved: %s; the session is left as it was, %s", event.type, event.id,
                  shown(event.session_key), refusal, "its id kept as handled (a redelivery is a duplicate)" if remembered
                  else "and a redelivery would run it again")

    async def _after_save(self, context: Context) -> None:
        """Run what the handler asked to happen once its changes are saved (scheduling its steps)."""
        for callback in context.after_save:
            try:
                await callback()
            except Exception:
                log.exception("an after-save action of %s failed; the session is saved", shown(context.session.id))

    @staticmethod
    def _take_address(session: Session, event: Event) -> None:
        """Keep how to reach the conversation, if it can be stored (it comes from the platform's body)."""
        if event.address is None:
            return
        try:
            dumps(event.address)
        except (TypeError, RecursionError) as exc:
            log.warning("address of %s event %s not kept: %s", event.type, event.id, exc)
            return
        session.address = event.address

    def _state_fits(self, session: Session) -> bool:
        try:
            size = len(dumps(session.state))
        except TypeError as exc:
            log.error("state of %s is not JSON-serialisable (%s); not saved, session left as it was", shown(session.id), exc)
            return False
        limit = self.policy.max_state_size
        if not limit:
            return True
        if size <= limit:
            return True
        log.error(
            "state of %s would be %d bytes, over session.max_state_size (%d); not saved, session left as it was",
            shown(session.id), size, limit,
        )
        return False

    def _session_from(self, record: dict[str, Any] | None, key: str, now: float) -> Session:
        """The session the event runs on: the stored one, or a fresh one (its history starting afresh)
        when there is none or it expired."""
        initial = dict(self.policy.initial_state)
        if record is None:
            session = Session.fresh(key, initial, now)
        else:
            session = Session.from_record(record)
            if session.is_expired(now):
                handled = session.parts.get(DEDUPE)
                expired = attach(session, self.store, self.policy.history)
                session = Session.fresh(key, initial, now, version=session.version)
                session.expired = expired  # its end hook may still have to run (engine/lifecycle.py)
                if handled:  # a replay of an event the expired (or evicted) session handled is still a duplicate
                    session.parts[DEDUPE] = handled
        return attach(session, self.store, self.policy.history)

    async def _store_call(self, call: Awaitable[Any], seconds: float, *, key: str | None = None) -> Any:
        started = time.perf_counter() if metrics.enabled() else 0.0
        try:
            if self.store.in_process:
                return await call
            async with asyncio.timeout(seconds):
                return await call
        except (StoreUnavailable, StoreRefused, asyncio.CancelledError):
            raise
        except VersionConflict as exc:
            what = shown(key) if key is not None else "a session"
            log.error("save refused: %s changed or another process took its lease; the platform will redeliver", what)
            log.debug("save refused: %s", exc)
            raise StoreUnavailable(f"the save of {what} was refused (the lease was lost)") from exc
        except TimeoutError:
            raise StoreUnavailable(f"the session store did not answer within {seconds}s") from None
        except Exception as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if started:  # by the store method's name: begin, commit, release
                metrics.store_call(getattr(getattr(call, "cr_code", None), "co_name", "call"), time.perf_counter() - started)

    async def _release_quietly(self, lease: Lease) -> None:
        try:
            async with asyncio.timeout(self.policy.timeout):
                await self.store.release(lease)
        except Exception as exc:
            log.warning("could not release the lease on %s: %s", shown(lease.key), exc)
