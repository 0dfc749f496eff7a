"""Steps kept in one JSON file beside the file driver's sessions, so they outlive a restart.

Every change happens under an exclusive ``flock`` on a lock file, in a worker thread: processes sharing
the folder (``--workers``) see one schedule and each step is claimed by one of them.
"""
from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from botkit.storage.atomic import write_atomically
from botkit.storage.steps.base import StepStore
from botkit.storage.steps.step import Step

T = TypeVar("T")
FILE_NAME = ".schedule"
"""No ``.json`` suffix: the file driver lists sessions by that suffix."""

Steps = dict[str, list[Any]]
"""step id → [due, the step's fields]"""


class FileStepStore(StepStore):
    shared = True
    durable = True

    def __init__(self, dirname: str | os.PathLike[str]) -> None:
        self.dirname = Path(dirname)
        self.path = self.dirname / FILE_NAME

    async def open(self) -> None:
        await asyncio.to_thread(self.dirname.mkdir, parents=True, exist_ok=True)

    def _read(self) -> Steps:
        try:
            steps: Steps = orjson.loads(self.path.read_bytes())
            return steps
        except FileNotFoundError:
            return {}

    def _write(self, steps: Steps) -> None:
        write_atomically(self.path, orjson.dumps(steps))

    def _locked(self, change: Callable[[Steps], tuple[T, bool]]) -> T:
        """Run ``change`` on the schedule under the lock; it returns its result and whether it changed it."""
        fd = os.open(self.path.with_name(FILE_NAME + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            steps = self._read()
            result, changed = change(steps)
            if changed:
                self._write(steps)
            return result
        finally:
            os.close(fd)  # closing releases the lock

    async def _change(self, change: Callable[[Steps], tuple[T, bool]]) -> T:
        return await asyncio.to_thread(self._locked, change)

    async def add(self, step: Step) -> bool:
        def add(steps: Steps) -> tuple[bool, bool]:
            if step.id in steps:
                return False, False
            steps[step.id] = [step.due, orjson.loads(step.dumps())]
            return True, True

        return await self._change(add)

    async def claim(self, now: float, lease_until: float, limit: int) -> tuple[list[Step], float | None]:
        def claim(steps: Steps) -> tuple[tuple[list[Step], float | None], bool]:
            due = sorted((entry[0], step_id) for step_id, entry in steps.items() if entry[0] <= now)[:limit]
            for _, step_id in due:
                steps[step_id][0] = lease_until
            earliest = min((entry[0] for entry in steps.values()), default=None)
            return ([Step.loads(steps[step_id][1]) for _, step_id in due], earliest), bool(due)

        return await self._change(claim)

    async def done(self, step_id: str) -> None:
        await self._change(lambda steps: (None, steps.pop(step_id, None) is not None))

    async def cancel(self, step_ids: list[str]) -> int:
        def cancel(steps: Steps) -> tuple[int, bool]:
            gone = sum(steps.pop(step_id, None) is not None for step_id in set(step_ids))
            return gone, bool(gone)

        return await self._change(cancel)

    async def pending(self, key: str | None = None) -> list[tuple[float, Step]]:
        steps = await asyncio.to_thread(self._read)
        found = [(entry[0], Step.loads(entry[1])) for entry in steps.values() if key is None or entry[1].get("key") == key]
        return sorted(found, key=lambda pair: pair[0])

    async def retry(self, step_id: str, due: float) -> None:
        def retry(steps: Steps) -> tuple[None, bool]:
            if step_id not in steps:
                return None, False
            steps[step_id][0] = due
            return None, True

        await self._change(retry)

    async def steps(self) -> list[tuple[float, Step]]:
        steps = await asyncio.to_thread(self._read)
        return sorted(((entry[0], Step.loads(entry[1])) for entry in steps.values()), key=lambda pair: pair[0])
