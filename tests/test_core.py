"""The handler's view: state, set_state, reset_state, aliases, history and limits, on the memory driver."""
from __future__ import annotations

import pytest

from botkit import Bot
from botkit.core.events import Event
from botkit.core.sending import Sender
from botkit.core.session import HistoryNotLoaded
from tests.support import make_config, test_bot


class Collect(Sender):
    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple]] = []

    async def send_text(self, text, **options):
        self.sent.append(("text", (text,)))

    async def send_image(self, url, caption=None):
        self.sent.append(("image", (url,)))


def make_bot(tmp_path, handler, **session) -> Bot:
    config = make_config(tmp_path, initial_state={"count": 0, "profile": {"tags": []}}, session=session)
    return test_bot(config, handler=handler, channels={})


async def run(bot: Bot, text: str = "hi", key: str = "test:1", sender=None):
    sender = sender or Collect()
    await bot.dispatch([Event("test", "text", key, text=text, channel="test", meta={"sender": sender})])
    return sender


async def test_set_state_merges_shallowly_and_state_is_read_only(tmp_path):
    seen = {}

    async def handler(context):
        with pytest.raises(TypeError):
            context.state["count"] = 5
        context.set_state({"name": "Ada"})
        context.setState({"count": context.state["count"] + 1})
        seen.update(context.state)

    bot = make_bot(tmp_path, handler)
    await run(bot)
    assert seen == {"count": 1, "profile": {"tags": []}, "name": "Ada"}
    assert (await bot.store.load("test:1"))["state"] == seen


async def test_initial_state_is_deep_copied_into_each_session(tmp_path):
    async def handler(context):
        tags = [*context.state["profile"]["tags"], context.event.text]
        context.state["profile"]["tags"].append("leak")  # mutating a nested value must not reach others
        context.set_state({"profile": {"tags": tags}})

    bot = make_bot(tmp_path, handler)
    await run(bot, "a", key="test:1")
    await run(bot, "b", key="test:2")
    assert (await bot.store.load("test:2"))["state"]["profile"]["tags"] == ["b"]
    assert bot.initial_state == {"count": 0, "profile": {"tags": []}}


async def test_reset_state_returns_to_initial_state(tmp_path):
    async def handler(context):
        if context.event.text == "reset":
            context.resetState()
        else:
            context.set_state({"count": context.state["count"] + 1})

    bot = make_bot(tmp_path, handler)
    await run(bot)
    await run(bot)
    await run(bot, "reset")
    assert (await bot.store.load("test:1"))["state"] == {"count": 0, "profile": {"tags": []}}


async def test_sends_are_recorded_in_history_and_aliases_work(tmp_path):
    async def handler(context):
        await context.sendText("one")
        await context.send_image("https://example.com/a.png")

    bot = make_bot(tmp_path, handler)
    sender = await run(bot, "hello")
    assert sender.sent == [("text", ("one",)), ("image", ("https://example.com/a.png",))]
    history = await bot.store.history("test:1")
    assert [(h["dir"], h["type"], h.get("text")) for h in history] == [
        ("in", "text", "hello"), ("out", "text", "one"), ("out", "image", "https://example.com/a.png")]


async def test_the_transcript_is_read_when_asked_and_session_history_says_so_before(tmp_path):
    seen = []

    async def handler(context):
        if context.event.text == "second":
            with pytest.raises(HistoryNotLoaded, match=r"await context\.history\(\)"):
                len(context.session.history)
            seen.append([h.get("text") for h in await context.history()])
            seen.append([h.get("text") for h in context.session.history])
        await context.send_text("ok")

    bot = make_bot(tmp_path, handler)
    await run(bot, "first")
    await run(bot, "second")
    assert seen == [["first", "ok", "second"]] * 2


async def test_a_send_the_channel_lacks_is_a_clear_error(tmp_path, caplog):
    async def handler(context):
        await context.send_native("carousel", [])

    bot = make_bot(tmp_path, handler)
    await run(bot)
    assert "has no send_carousel()" in caplog.text


async def test_a_state_over_the_size_limit_is_not_saved(tmp_path, caplog):
    async def handler(context):
        context.set_state({"blob": "x" * int(context.event.text)})

    bot = make_bot(tmp_path, handler, max_state_size=1000)
    await run(bot, "10")
    await run(bot, "5000")
    assert (await bot.store.load("test:1"))["state"]["blob"] == "x" * 10
    assert "session.max_state_size" in caplog.text


async def test_session_fields_are_kept(tmp_path):
    bot = make_bot(tmp_path, lambda context: _noop(), expires_in=10)
    await run(bot)
    record = await bot.store.load("test:1")
    session = await bot.load_session("test:1")
    assert session.id == record["key"] == "test:1" and session.platform == "test" and session.message_count == 1
    assert record["expires_at"] == pytest.approx(record["last_activity"] + 600)
    assert record["created_at"] <= record["last_activity"] and record["version"] == 1


async def _noop() -> None:
    return None


async def test_a_state_that_is_not_json_is_refused_not_retried_forever(tmp_path, caplog):
    async def handler(context):
        context.set_state({"tags": {"a", "b"} if context.event.text == "set" else ["a"]})

    bot = make_bot(tmp_path, handler)
    await run(bot, "list")
    outcome = await bot.dispatch([Event("test", "text", "test:1", text="set", channel="test", meta={"sender": Collect()})])
    assert [o.value for o in outcome] == ["failed"]
    assert (await bot.store.load("test:1"))["state"]["tags"] == ["a"]
    assert "not JSON-serialisable" in caplog.text
