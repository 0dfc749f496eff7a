"""Bot memory in files: one JSON file a key in ``<dirname>/.bot_memory/``, written atomically (a reader
sees the old value or the new one), so processes sharing the folder share the values."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from botkit.storage.atomic import remove, write_atomically
from botkit.storage.bot_memory.base import BotMemory

FOLDER = ".bot_memory"


class FileBotMemory(BotMemory):
    shared = True

    def __init__(self, dirname: str | os.PathLike[str], file_name: Callable[[str], str], *, fsync: bool = False) -> None:
        super().__init__()
        self.folder = Path(dirname) / FOLDER
        self.file_name = file_name
        """The file driver's names for keys: never a path, never hidden, long keys hashed."""
        self.fsync = fsync

    async def open(self) -> None:
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / self.file_name(key)

    async def _get(self, key: str) -> bytes | None:
        def read() -> bytes | None:
            try:
                return self._path(key).read_bytes()
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(read)

    async def _set(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(write_atomically, self._path(key), data, fsync=self.fsync)

    async def _delete(self, key: str) -> bool:
        return await asyncio.to_thread(remove, self._path(key))
