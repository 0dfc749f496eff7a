"""Steps kept in this process: for the memory driver, whose sessions do not outlive the process either."""
from __future__ import annotations

import heapq

from botkit.storage.steps.base import StepStore
from botkit.storage.steps.step import Step


class MemoryStepStore(StepStore):
    def __init__(self) -> None:
        self._steps: dict[str, tuple[float, Step]] = {}
        self._heap: list[tuple[float, str]] = []

    def _set(self, step: Step, due: float) -> None:
        self._steps[step.id] = (due, step)
        heapq.heappush(self._heap, (due, step.id))

    def _drop_stale(self) -> None:
        """Heap entries whose step was done or re-timed are skipped lazily."""
        heap = self._heap
        while heap and self._steps.get(heap[0][1], (None,))[0] != heap[0][0]:
            heapq.heappop(heap)

    async def add(self, step: Step) -> bool:
        if step.id in self._steps:
            return False
        self._set(step, step.due)
        return True

    async def claim(self, now: float, lease_until: float, limit: int) -> tuple[list[Step], float | None]:
        claimed: list[Step] = []
        self._drop_stale()
        while self._heap and self._heap[0][0] <= now and len(claimed) < limit:
            _, step_id = heapq.heappop(self._heap)
            step = self._steps[step_id][1]
            self._set(step, lease_until)
            claimed.append(step)
            self._drop_stale()
        return claimed, self._heap[0][0] if self._heap else None

    async def done(self, step_id: str) -> None:
        self._steps.pop(step_id, None)

    async def cancel(self, step_ids: list[str]) -> int:
        return sum(self._steps.pop(step_id, None) is not None for step_id in set(step_ids))

    async def retry(self, step_id: str, due: float) -> None:
        entry = self._steps.get(step_id)
        if entry is not None:
            self._set(entry[1], due)

    async def steps(self) -> list[tuple[float, Step]]:
        return sorted(self._steps.values(), key=lambda entry: entry[0])
