"""How the conformance suite makes each driver's store. A new driver adds one factory here.

A factory is an async context manager ``(tmp_path, clock) -> store``; it yields an opened store over a
fresh, empty namespace and may call ``pytest.skip`` with the reason when its server is not reachable.
``second`` gives another store over the same namespace, as a second process would have.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from botkit.drivers.file import FileStore
from botkit.drivers.memory import MemoryStore


@contextlib.asynccontextmanager
async def memory_store(tmp_path: Path, clock: Callable[[], float] = time.time, **kw: Any) -> AsyncIterator[Any]:
    store = MemoryStore({"max_size": 10_000}, clock=clock, **kw)
    await store.open()
    store.second = None  # one process only
    yield store
    await store.close()


@contextlib.asynccontextmanager
async def file_store(tmp_path: Path, clock: Callable[[], float] = time.time, **kw: Any) -> AsyncIterator[Any]:
    settings = {"dirname": str(tmp_path / "sessions")}
    store = FileStore(settings, clock=clock, **kw)
    await store.open()
    store.second = lambda: FileStore(settings, clock=clock, **kw)
    yield store
    await store.close()


FACTORIES: dict[str, Callable[..., Any]] = {
    "memory": memory_store,
    "file": file_store,
}
