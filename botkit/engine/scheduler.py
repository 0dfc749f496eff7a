"""The loop that runs scheduled steps: claim the due ones, run each, forget it."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from botkit.core.errors import StoreUnavailable
from botkit.core.keys import shown
from botkit.observe import metrics
from botkit.storage.steps.base import StepStore
from botkit.storage.steps.step import Step

log = logging.getLogger("botkit.scheduler")

Runner = Callable[[Step], Awaitable[None]]


class Scheduler:
    """Runs each step of ``store`` once it is due, through ``run``, at most ``concurrency`` at a time.

    A step whose run finds the session store unavailable is tried again ``retry_in`` seconds later; one
    that raises anything else is logged and forgotten (like an event whose handler raised). A claimed
    step is leased for ``lease`` seconds: if this process dies meanwhile, another one runs it after.
    """

    def __init__(
        self,
        store: StepStore,
        run: Runner,
        *,
        clock: Callable[[], float] = time.time,
        lease: float = 90.0,
        retry_in: float = 5.0,
        concurrency: int = 64,
        expires_in: float | None = None,
        caveat: str | None = None,
    ) -> None:
        self.store = store
        self.run = run
        self.clock = clock
        self.lease = lease
        self.retry_in = retry_in
        self.concurrency = concurrency
        self.expires_in = expires_in
        self.caveat = caveat
        self.poll = 0.25 if store.shared else 30.0
        """Seconds between looks at a store other processes add to; this process's adds wake the loop."""
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.store.open()
        if self.caveat:
            log.warning("%s", self.caveat)
        await self._warn_about_expiry()
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="botkit-scheduler")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming (a claim under way completes, so no step is leased and left); give running steps
        ``grace`` seconds, then cancel them (their leases run out and a durable store hands them on)."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.store.close()

    async def add(self, step: Step) -> None:
        await self.store.add(step)
        self._wake.set()

    @property
    def busy(self) -> int:
        """Steps the loop is running now."""
        return len(self._running)

    async def run_due(self) -> int:
        """Claim the steps due by the clock now and run them to their end; how many ran. For a clock that
        jumps (botkit.testing's ``advance``): the loop would only look again after its pause."""
        now = self.clock()
        steps, _ = await self.store.claim(now, now + self.lease, self.concurrency)
        await asyncio.gather(*(self._run(step) for step in steps))
        return len(steps)

    async def pending(self, key: str | None = None) -> list[tuple[float, Step]]:
        """The steps waiting (or running), of session ``key`` or of all, with their due times, earliest first."""
        return await self.store.pending(key)

    async def cancel(self, step_ids: list[str]) -> int:
        """Forget these steps; how many were still kept."""
        return await self.store.cancel(step_ids)

    async def _warn_about_expiry(self) -> None:
        if not self.expires_in:
            return
        try:
            late = await self.store.count_due_after(self.clock() + self.expires_in)
        except Exception as exc:
            log.warning("could not read the scheduled steps: %s", exc)
            return
        if late:
            log.warning(
                "%d scheduled step(s) are due more than session.expires_in (%g min) from now: their sessions "
                "expire first unless their users write again, and a step whose session expired is dropped. "
                "Set session.expires_in longer than your longest step_to_in delay (docs/flows.md).",
                late, self.expires_in / 60,
            )

    async def _loop(self) -> None:
        failures = 0
        while not self._stopping:
            free = self.concurrency - len(self._running)
            now = self.clock()
            try:
                steps, earliest = await self.store.claim(now, now + self.lease, free) if free else ([], None)
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("the step store is unreachable (%s: %s); scheduled steps wait", type(exc).__name__, exc)
                await self._pause(min(self.poll * 2 ** failures, 5.0))
                continue
            if failures:
                log.info("the step store answers again; scheduled steps run")
                failures = 0
            for step in steps:
                task = asyncio.create_task(self._run(step), name=f"botkit-step-{step.id}")
                self._running.add(task)
                task.add_done_callback(self._finished)
            wait = self.poll
            if earliest is not None and len(self._running) < self.concurrency:
                wait = min(max(earliest - self.clock(), 0.0), self.poll)
            await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when a step is added, a run ends or the scheduler stops."""
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    async def _run(self, step: Step) -> None:
        metrics.step_late(self.clock() - step.due)
        try:
            await self.run(step)
        except StoreUnavailable as exc:
            log.warning("scheduled step to %s for %s: %s; trying again in %gs", step.slug, shown(step.key), exc, self.retry_in)
            await self._quietly(self.store.retry(step.id, self.clock() + self.retry_in))
            return
        except Exception:
            log.exception("scheduled step to %s for %s failed; dropped", step.slug, shown(step.key))
        await self._quietly(self.store.done(step.id))

    async def _quietly(self, call: Awaitable[None]) -> None:
        """A failure here only delays: the lease runs out, the step is claimed again, and the session's
        record of handled event ids keeps it from running twice."""
        try:
            await call
        except Exception as exc:
            log.warning("could not update the step store: %s", exc)
