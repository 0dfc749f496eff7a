"""What only the file driver promises: atomic writes and file names that never leave `dirname`."""
from __future__ import annotations

import os
import time

import pytest

from botkit.core.session import Session
from botkit.storage.file import FileStore, file_name


def record(key: str, version: int, count: int) -> dict:
    session = Session.fresh(key, {"count": count}, time.time())
    session.version = version
    return session.to_record()


@pytest.fixture
async def store(tmp_path):
    store = FileStore({"dirname": str(tmp_path / "sessions")}, clock=time.time)
    await store.open()
    yield store
    await store.close()


async def test_a_write_interrupted_half_way_leaves_the_previous_record(store, monkeypatch):
    await store.save(record("telegram:1", 1, count=1))
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, fd, mode):
            self.file = real_fdopen(fd, mode)

        def write(self, data):
            self.file.write(data[: len(data) // 2])
            self.file.flush()
            raise OSError(28, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(os, "fdopen", HalfWriter)
    with pytest.raises(OSError):
        await store.save(record("telegram:1", 2, count=2))
    monkeypatch.undo()
    assert (await store.load("telegram:1"))["state"] == {"count": 1}
    assert sorted(p.name for p in store.dirname.iterdir()) == ["telegram%3A1.json"], "no temporary file is left"


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "..", ".", "a/../../b", "web:\x00nul", "line:" + "é" * 300])
async def test_no_session_key_writes_outside_dirname(store, tmp_path, key):
    await store.save(record(key, 1, count=1))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p.parent for p in written] == [store.dirname]
    assert (await store.load(key))["key"] == key
    name = file_name(key)
    assert "/" not in name and not name.startswith(".") and len(name.encode()) < 255


async def test_distinct_keys_never_share_a_file(store):
    keys = ["telegram:1", "telegram%3A1", "telegram_1", "Telegram:1"]
    assert len({file_name(k) for k in keys}) == len(keys)
