"""One JSON file per session, written to a temporary file and renamed over the old one, and its history
beside it: ``<name>.jsonl``, one entry a line, appended on each save and trimmed to the history limit
once it holds twice as many entries.

Every file operation runs in a worker thread, so the event loop never waits on the disk. A lease holds
an exclusive ``flock`` on the session's lock file, so several processes can share one directory. The
record is written first: a crash between the two writes loses that event's history entries, never the
record.
"""
from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botkit.core.errors import ConfigError, StoreUnavailable, VersionConflict
from botkit.core.session import dumps, key_of, loads
from botkit.storage.atomic import SUFFIX, remove, write_atomically
from botkit.storage.base import NOTHING, Appended, Lease, SessionStore
from botkit.storage.bot_memory import BotMemory
from botkit.storage.inbox import Inbox
from botkit.storage.steps import StepStore

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 180
LOG_SUFFIX = ".jsonl"


def file_name(key: str) -> str:
    """A file name for any session key: only ``[A-Za-z0-9_%-]``, so never a path, never hidden, never
    ``..``; long keys are hashed."""
    name = _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), key)
    if len(name) > _MAX_NAME:
        name = "h_" + hashlib.sha256(key.encode()).hexdigest()
    return name + SUFFIX


class FileStore(SessionStore):
    name = "file"
    defaults = {"dirname": ".session", "fsync": False}
    shared = True

    def __init__(self, settings: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.dirname = Path(self.settings["dirname"])

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> None:
        super().validate(settings)
        if not isinstance(settings.get("dirname", ".session"), (str, os.PathLike)):
            raise ConfigError("session.stores.file.dirname", "must be a folder path")

    def inbox(self) -> Inbox:
        from botkit.storage.inbox.file import FileInbox

        return FileInbox(self.dirname)

    def bot_memory(self) -> BotMemory:
        from botkit.storage.bot_memory.file import FileBotMemory

        return FileBotMemory(self.dirname, file_name, fsync=bool(self.settings["fsync"]))

    def step_store(self) -> tuple[StepStore, str | None]:
        from botkit.storage.steps.file import FileStepStore

        return FileStepStore(self.dirname), None

    async def open(self) -> None:
        try:
            await asyncio.to_thread(self.dirname.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError("session.stores.file.dirname", f"cannot create {self.dirname}: {exc.strerror}") from None

    def _path(self, key: str) -> Path:
        return self.dirname / file_name(key)

    def _log_path(self, key: str) -> Path:
        return self.dirname / (file_name(key)[: -len(SUFFIX)] + LOG_SUFFIX)

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return loads(data)

    def _write(self, record: dict[str, Any], appended: Appended) -> None:
        key = key_of(record)
        current = self._read(key)
        if current is not None and current.get("version", 0) != record["version"] - 1:
            raise VersionConflict(f"session {key} changed since it was loaded")
        write_atomically(self._path(key), dumps(record), fsync=self.settings["fsync"])
        if appended.changes:
            self._append(key, appended)

    def _append(self, key: str, appended: Appended) -> None:
        path, entries, limit = self._log_path(key), appended.entries, appended.limit
        lines = b"".join(dumps(entry) + b"\n" for entry in entries)
        if appended.restart:
            if lines:
                write_atomically(path, lines, fsync=self.settings["fsync"])
            else:
                path.unlink(missing_ok=True)
            return
        if not lines or limit <= 0:
            return
        with open(path, "ab") as out:
            out.write(lines)
            if self.settings["fsync"]:
                out.flush()
                os.fsync(out.fileno())
        first, last = entries[0]["seq"], entries[-1]["seq"]
        if last > limit and last // limit > (first - 1) // limit:
            kept = path.read_bytes().splitlines(keepends=True)[-limit:]
            write_atomically(path, b"".join(kept), fsync=self.settings["fsync"])

    def _read_log(self, key: str, limit: int | None) -> list[dict[str, Any]]:
        try:
            lines = self._log_path(key).read_bytes().splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                entries.append(loads(line))
            except ValueError:  # a line a crash cut short
                continue
        if limit is None:
            return entries
        return entries[-limit:] if limit > 0 else []

    def _try_begin(self, key: str) -> Lease | None:
        """Lock the session's lock file and read its record, in one trip to a worker thread."""
        fd = os.open(self.dirname / (file_name(key)[: -len(SUFFIX)] + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return None
            raise
        try:
            return Lease(key, self._read(key), fd)
        except BaseException:
            self._unlock(fd)
            raise

    @staticmethod
    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _write_and_unlock(self, lease: Lease, record: dict[str, Any], appended: Appended) -> None:
        try:
            self._write(record, appended)
        finally:
            self._unlock(lease.token)

    async def begin(self, key: str) -> Lease:
        delay = 0.001
        deadline = self.clock() + self.lock_timeout
        while (lease := await asyncio.to_thread(self._try_begin, key)) is None:
            if self.clock() > deadline:
                raise StoreUnavailable(f"session {key} stayed locked for {self.lock_timeout}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        return lease

    async def commit(self, lease: Lease, record: dict[str, Any], appended: Appended = NOTHING) -> None:
        fd, lease.token = lease.token, None
        await asyncio.to_thread(self._write_and_unlock, Lease(lease.key, None, fd), record, appended)

    async def release(self, lease: Lease) -> None:
        if lease.token is not None:
            fd, lease.token = lease.token, None
            await asyncio.to_thread(self._unlock, fd)

    async def load(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._read, key)

    async def save(self, record: dict[str, Any], appended: Appended = NOTHING) -> None:
        await asyncio.to_thread(self._write, record, appended)

    async def history(self, key: str, limit: int | None = None) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._read_log, key, limit)

    async def delete(self, key: str) -> bool:
        def delete_both() -> bool:
            self._log_path(key).unlink(missing_ok=True)
            return remove(self._path(key))

        return await asyncio.to_thread(delete_both)

    async def incr(self, name: str, window: float) -> tuple[int, float]:
        """Counted in a file beside the sessions, so every process sharing the folder counts together."""
        from botkit.storage.file_counters import count

        return await asyncio.to_thread(count, self.dirname, name, window, self.clock())

    async def keys(self) -> list[str]:
        def scan() -> list[str]:
            found = []
            for path in sorted(self.dirname.glob("*" + SUFFIX)):
                if path.name.startswith(".tmp-"):
                    continue
                try:
                    found.append(key_of(loads(path.read_bytes())))
                except (OSError, ValueError, KeyError):
                    continue
            return found

        return await asyncio.to_thread(scan)
