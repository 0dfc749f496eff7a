"""Sessions' start and end: the hooks (``on_session_start``, ``on_session_end``), the end sweep, and the
session stats' journal.

A session starts with the first event of a key that has no live record; its start hook runs before the
handler, under the session's lease (an event the bot started, a push or a scheduled step, leaves the
start for the user's first event). A session ends when the handler calls ``context.end_session()`` (the
end hook runs once the handler returns, with this event's context) or when it expires: every process
runs the end sweep every ``SWEEP_EVERY`` seconds, which asks the store for the expired sessions whose
end has not run (``SessionStore.expired``) and ends each under its lease. Ending marks the record
(``parts.life.ended``) and saves it, version-checked, in the same step: a second process (or a second
sweep) that takes the lease next finds the mark and does nothing, so the hook runs once per session.
An event that finds an expired session whose end has not run yet ends it first, then starts the new one.
If the process dies between the end hook and the save, the next sweep runs the hook again: at least once,
exactly once unless a process dies in that gap.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Awaitable, Callable
from typing import Any

from botkit.core.errors import SkipSave
from botkit.core.events import Event
from botkit.core.keys import shown
from botkit.core.sending import Sender
from botkit.core.session import LIFE, Session
from botkit.engine.context import Context
from botkit.storage.base import SessionStore
from botkit.storage.journal import Journal

log = logging.getLogger("botkit.sessions")

SWEEP_EVERY = float(os.environ.get("BOTKIT_SESSION_SWEEP_EVERY", "15"))
"""Seconds between end sweeps: a session's end runs within this (plus the time to end the ones before
it) of its expiry. The variable is for tests; 15 s keeps the promise of "within a minute"."""
SWEEP_BATCH = 100
SWEEP_CONCURRENCY = 8
KEEP_EXPIRED = 3600.0
"""Seconds a store that drops expired records itself keeps them for the end sweep (store.keep_expired)."""
FLUSH_EVERY = 1.0
"""Seconds between writes of the stats journal (and at shutdown): a crash loses at most this much."""
SESSION_END = "session_end"
"""The event type of the sweep's run on an expired session."""
BOT_STARTED = frozenset({SESSION_END, "session_created", "session_ended", "push", "scheduled", "handback"})
"""Event types the user did not send: a session they create waits for the user's first event to start."""

RESTART = "restart_session"
"""``event.meta`` flag set by ``restart_session``."""

Hook = Callable[[Context], Awaitable[Any]]
Handler = Callable[[Context], Awaitable[Any]]
ContextFor = Callable[[Event, Session, Sender], Context]
SenderFor = Callable[[Event, Session, "list[Any] | None"], Sender]
Runner = Callable[..., Awaitable[Any]]


def restart_session(context: Context) -> None:
    """End the session's conversation and start a new one on this event, keeping the record (the web chat
    does it after ``idle_timeout``: its token outlives the conversation). The end hook sees the old state;
    then the state starts afresh from ``initial_state`` and the start hook runs, before the handler."""
    context.event.meta[RESTART] = True


class Lifecycle:
    """One per bot. ``middleware`` goes innermost around every handler; ``start`` runs the sweep and the
    journal's writer (``sweep=False`` in a web-only process)."""

    def __init__(self, store: SessionStore, journal: Journal, *, clock: Callable[[], float],
                 contexts: ContextFor, senders: SenderFor, run: Runner,
                 on_start: Hook | None = None, on_end: Hook | None = None) -> None:
        self.store = store
        self.journal = journal
        self.clock = clock
        self.contexts = contexts
        self.senders = senders
        self.run = run
        self.on_start = on_start
        self.on_end = on_end
        self.pending: list[dict[str, Any]] = []
        self._tasks: list[asyncio.Task[None]] = []

    # -- running ----------------------------------------------------------------------------------

    async def start(self, *, sweep: bool = True) -> None:
        await self.journal.open()
        self._tasks.append(asyncio.create_task(self._every(FLUSH_EVERY, self.flush), name="botkit-stats"))
        if sweep:
            self._tasks.append(asyncio.create_task(self._every(SWEEP_EVERY, self.sweep, jitter=True),
                                                   name="botkit-session-sweep"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await self.flush()
        except Exception as exc:
            log.warning("could not write the last session stats: %s", exc)

    async def _every(self, seconds: float, call: Callable[[], Awaitable[Any]], jitter: bool = False) -> None:
        while True:
            await asyncio.sleep(seconds * (0.8 + 0.4 * random.random()) if jitter else seconds)
            try:
                await call()
            except Exception as exc:
                log.warning("%s failed (will try again): %s", getattr(call, "__name__", call), exc)

    async def flush(self) -> None:
        """Write the stats counted since the last flush."""
        if not self.pending:
            return
        entries, self.pending = self.pending, []
        try:
            await self.journal.add(entries)
        except BaseException:
            self.pending[:0] = entries
            raise

    async def sweep(self) -> int:
        """End the sessions that expired, a batch at a time, ``SWEEP_CONCURRENCY`` at once, until none is
        left or a batch ends none (the others are another process's, or failing); how many this process ended."""
        ended = 0
        gate = asyncio.Semaphore(SWEEP_CONCURRENCY)

        async def end_one(key: str) -> bool:
            async with gate:
                return await self._end_one(key)

        while True:
            keys = await self.store.expired(self.clock(), SWEEP_BATCH)
            random.shuffle(keys)  # processes sweeping at once start on different sessions
            done = sum(await asyncio.gather(*(end_one(key) for key in keys)))
            ended += done
            if len(keys) < SWEEP_BATCH or not done:
                return ended

    async def _end_one(self, key: str) -> bool:
        ran: list[bool] = []

        async def end(context: Context) -> None:
            await self._end_expired(context)
            ran.append(True)

        try:
            await self.run(key, end, event_type=SESSION_END)
        except Exception as exc:
            log.warning("ending the expired session %s failed (the next sweep tries again): %s", shown(key), exc)
            return False
        return bool(ran)

    # -- around every handler -----------------------------------------------------------------------

    async def middleware(self, context: Context, call_next: Handler) -> Any:
        session, event = context.session, context.event
        if event.type == SESSION_END:
            return await call_next(context)
        old = session.expired
        if old is not None and not old.ended:
            counted = await self._end(old, self.contexts(event, old, context.sender), "expired")
            context.after_save.append(lambda: self._count(counted))
        started = False
        life = session.parts.get(LIFE) or {}
        if event.meta.pop(RESTART, False) and not session.new:
            counted_idle = await self._end(session, context, "idle")
            context.after_save.append(lambda: self._count(counted_idle))
            context.reset_state()
            session.slug = session.previous_slug = None
            session.created_at = self.clock()
            life = session.part(LIFE)
            life["start_pending"] = True
        if session.new or life.get("start_pending"):
            if event.type in BOT_STARTED:
                session.part(LIFE)["start_pending"] = True
            else:
                life.pop("start_pending", None)
                if self.on_start is not None:
                    await self.on_start(context)
                started = True
        result = await call_next(context)
        if context.ending and not session.ended:
            counted = await self._end(session, context, "ended")
            context.after_save.append(lambda: self._count(counted))
            session.part(LIFE)["ended"] = self.clock()
            context.expires_in = 0
        self._count_after_save(context, started)
        return result

    async def _end_expired(self, context: Context) -> None:
        """The sweep's run on one key: end the expired session the store still holds, leaving a marked
        record (expired at once) so that no other process ends it again."""
        session = context.session
        old = session.expired
        if old is None or old.ended:
            if session.new and old is None:
                await self.store.unlist(session.key)  # the store dropped it: nothing to end
            raise SkipSave("no session to end")
        sender = context.sender
        try:
            sender = self.senders(context.event, old, None)
        except Exception as exc:
            log.warning("the end of %s cannot send: %s", shown(old.key), exc)
        counted = await self._end(old, self.contexts(context.event, old, sender), "expired")
        context.after_save.append(lambda: self._count(counted))
        session.part(LIFE)["ended"] = self.clock()
        context.expires_in = 0
        await sender.flush()

    async def _end(self, session: Session, context: Context, why: str) -> list[dict[str, Any]]:
        """Run the end hook on ``session`` (a failure is logged: the session ends all the same); what
        to count once the save landed."""
        if self.on_end is not None:
            try:
                await self.on_end(context)
            except Exception:
                log.exception("the end hook of %s raised; the session ends all the same", shown(session.key))
        now = self.clock()
        duration = max(0.0, (now if why == "ended" else session.last_activity) - session.created_at)
        channel = session.channel or session.platform
        counted = [{"at": now, "channel": channel, "kind": "end", "value": duration}]
        if context.session is session and why == "expired":
            outs = sum(1 for entry in session.log.pending if entry.get("dir") == "out")
            if outs:
                counted.append({"at": now, "channel": channel, "kind": "out", "value": outs})
        return counted

    def _count_after_save(self, context: Context, started: bool) -> None:
        session, event, now = context.session, context.event, self.clock()
        channel = context.channel or session.platform
        counted: list[dict[str, Any]] = []
        if started:
            counted.append({"at": now, "channel": channel, "kind": "start"})
        if event.is_message:
            counted.append({"at": now, "channel": channel, "kind": "in", "value": 1})
        outs = sum(1 for entry in session.log.pending if entry.get("dir") == "out")
        if outs:
            counted.append({"at": now, "channel": channel, "kind": "out", "value": outs})
        counted.extend({"at": now, "channel": channel, "kind": "milestone", "name": name}
                       for name, _ in context.milestones)
        if counted:
            context.after_save.append(lambda: self._count(counted))

    async def _count(self, entries: list[dict[str, Any]]) -> None:
        self.pending.extend(entries)
