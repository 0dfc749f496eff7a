"""The inbox's consumer: claims sessions with waiting events and handles each session's entries one at a
time, in arrival order, acknowledging each once handled. Different sessions run concurrently, up to
``concurrency``. A lease (renewed while handlers run) keeps each claimed session to this process; if
the process dies, the lease runs out and another worker takes the entries over."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable

from botkit.core.errors import StoreUnavailable
from botkit.core.keys import shown
from botkit.storage.inbox import Claim, Entry, Inbox

log = logging.getLogger("botkit.engine.worker")

HandleEntry = Callable[[Entry], Awaitable[None]]


class InboxWorker:
    def __init__(self, inbox: Inbox, handle: HandleEntry, *, clock: Callable[[], float], lease: float = 10.0,
                 concurrency: int = 64, poll: float = 1.0, retry_in: float = 1.0, owner: str | None = None) -> None:
        self.inbox = inbox
        self.handle = handle
        self.clock = clock
        self.lease = lease
        self.concurrency = concurrency
        self.poll = poll
        """Seconds between claims when nothing wakes the loop (leases of dead workers run out meanwhile)."""
        self.retry_in = retry_in
        self.owner = owner or secrets.token_urlsafe(12)
        self._running: dict[asyncio.Task[None], str] = {}
        self._task: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._stopping = False
        self._freed = asyncio.Event()

    @property
    def busy(self) -> int:
        """Sessions being handled now."""
        return len(self._running)

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="botkit-inbox-worker")
        self._renewer = asyncio.create_task(self._renew(), name="botkit-inbox-leases")

    async def stop(self, grace: float) -> None:
        """Stop claiming; give running handlers ``grace`` seconds, then cancel them: their entries stay in
        the inbox (not acknowledged) and their leases run out, so another worker takes them over."""
        self._stopping = True
        self._freed.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer

    async def _loop(self) -> None:
        failures = 0
        while not self._stopping:
            free = self.concurrency - len(self._running)
            if free <= 0:
                self._freed.clear()
                await self._freed.wait()
                continue
            now = self.clock()
            try:
                claims = await self.inbox.claim(self.owner, now, now + self.lease, free)
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("the inbox is unreachable (%s: %s); waiting events are handled when it answers",
                                type(exc).__name__, exc)
                await asyncio.sleep(min(0.1 * 2 ** failures, 2.0))
                continue
            if failures:
                log.info("the inbox answers again")
                failures = 0
            for claim in claims:
                task = asyncio.create_task(self._work(claim), name=f"botkit-inbox-{claim.key}")
                self._running[task] = claim.key
                task.add_done_callback(self._done)
            if len(claims) < free:
                await self.inbox.wait(self.poll)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._freed.set()

    async def _work(self, claim: Claim) -> None:
        ready_at = 0.0
        cancelled = False
        try:
            for entry in claim.entries:
                try:
                    await self.handle(entry)
                except StoreUnavailable as exc:
                    log.warning("inbox entry %s of %s waits: %s; trying again in %gs", entry.id, shown(claim.key), exc, self.retry_in)
                    ready_at = self.clock() + self.retry_in
                    return
                except Exception:
                    log.exception("inbox entry %s of %s could not be handled; dropped", entry.id, shown(claim.key))
                await self.inbox.ack(claim.key, entry.id)
        except asyncio.CancelledError:
            ready_at = self.clock()  # stopping: the rest is for whoever comes next, at once
            cancelled = True
            raise
        except Exception as exc:
            log.warning("inbox of %s: %s: %s; its entries are tried again shortly", shown(claim.key), type(exc).__name__, exc)
            ready_at = self.clock() + self.retry_in
            return
        finally:
            if cancelled:  # the release must still happen: shielded (a task of its own) only then
                await asyncio.shield(self._release(claim, ready_at))
            else:
                await self._release(claim, ready_at)

    async def _release(self, claim: Claim, ready_at: float) -> None:
        """End the lease; while the inbox is away, keep trying (until the lease would have run out anyway),
        so the session's next events wait for the store, not for the lease."""
        deadline = self.clock() + self.lease
        wait = 0.1
        while True:
            try:
                await self.inbox.release(self.owner, claim, ready_at)
                self.inbox.notify()  # entries that came meanwhile are claimable now: look again at once
                return
            except Exception as exc:
                if self.clock() + wait >= deadline:
                    log.warning("could not end the inbox lease of %s (%s); it runs out by itself", shown(claim.key), exc)
                    return
            await asyncio.sleep(wait)
            wait = min(wait * 2, 1.0)

    async def _renew(self) -> None:
        """Keep the leases of the sessions being handled (a handler may take a minute)."""
        while True:
            await asyncio.sleep(self.lease / 3)
            keys = list(self._running.values())
            if not keys:
                continue
            now = self.clock()
            try:
                await self.inbox.extend(self.owner, keys, now + self.lease)
            except Exception as exc:
                log.warning("could not renew the inbox leases of %d session(s): %s", len(keys), exc)
