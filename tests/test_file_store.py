"""What only the file driver promises: atomic writes and file names that never leave `dirname`."""
from __future__ import annotations

import os
import time

import orjson
import pytest

from botkit.core.session import Session
from botkit.storage.file import FileStore, file_name
from tests.stores import OLD_RECORD, bot_on, text_event


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


async def test_the_history_is_a_jsonl_file_beside_the_record_appended_then_trimmed(store, tmp_path):
    bot = bot_on(store, tmp_path, history=4)
    log = store.dirname / "test%3A1.jsonl"

    def logged() -> list[tuple[int, str | None]]:
        return [(line["seq"], line.get("text")) for line in map(orjson.loads, log.read_bytes().splitlines())]

    for text in ("a", "b", "c"):
        await bot.dispatch([text_event(bot, text=text)])
    assert logged() == [(1, "a"), (2, "Count: 1"), (3, "b"), (4, "Count: 2"), (5, "c"), (6, "Count: 3")]
    assert [entry["seq"] for entry in await store.history("test:1", 4)] == [3, 4, 5, 6]
    await bot.dispatch([text_event(bot, text="d")])
    assert logged() == [(5, "c"), (6, "Count: 3"), (7, "d"), (8, "Count: 4")]
    assert b"Count: 1" not in (store.dirname / "test%3A1.json").read_bytes()
    await store.delete("test:1")
    assert not log.exists() and not (store.dirname / "test%3A1.json").exists()


async def test_a_record_of_the_previous_release_is_rewritten_as_an_envelope_with_its_history_beside(store, tmp_path):
    (store.dirname / "test%3A1.json").write_text(OLD_RECORD)
    assert await store.keys() == ["test:1"]
    bot = bot_on(store, tmp_path)
    await bot.dispatch([text_event(bot, text="more", event_id="42")])
    record = orjson.loads((store.dirname / "test%3A1.json").read_bytes())
    assert record["key"] == "test:1" and record["version"] == 5 and record["state"] == {"count": 5}
    assert "history" not in record and "id" not in record
    lines = [orjson.loads(line) for line in (store.dirname / "test%3A1.jsonl").read_bytes().splitlines()]
    assert [line.get("text", line.get("payload")) for line in lines] == ["hi", "Count: 4", "BUY", "more", "Count: 5"]


async def test_a_line_cut_short_by_a_crash_is_skipped(store):
    (store.dirname / "test%3A1.jsonl").write_bytes(b'{"seq":1,"dir":"in","type":"text","text":"a","at":1.0}\n{"seq":2,"di')
    assert await store.history("test:1") == [{"seq": 1, "dir": "in", "type": "text", "text": "a", "at": 1.0}]


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
