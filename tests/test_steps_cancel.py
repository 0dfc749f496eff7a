"""Scheduled steps a handler can see and cancel (``context.cancel_steps``) and ``botkit steps list``, on
the memory, file and Redis drivers."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from botkit import load_config
from botkit.core.events import Event
from botkit.flows.steps import step_handler
from tests.stores import REDIS_URL
from tests.support import test_bot

BOT = '''
from botkit.flows.router import Flows

flows = Flows()


@flows.state("chat")
async def listen(context):
    text = context.event.text or ""
    if text == "hi":
        await context.step_to_in(60, "reminder", "ping")
        await context.step_to_in(120, "nudge", "poke")
    elif text.startswith("cancel"):
        target = text.split()[1:]
        cancelled = await context.cancel_steps(*target)
        await context.send_text(f"cancelled {cancelled}")
    elif text == "hi and forget":
        await context.step_to_in(60, "reminder", "ping")
        await context.send_text(f"cancelled {await context.cancel_steps()}")
    context.update_session_to("chat", "listen")


@flows.state("reminder")
async def ping(context):
    await context.send_text("ping")
    context.update_session_to("chat", "listen")


@flows.state("nudge")
async def poke(context):
    await context.send_text("poke")
    context.update_session_to("chat", "listen")
'''


class Said:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def send_text(self, text: str, **options: Any) -> None:
        self.texts.append(text)

    async def flush(self) -> None:
        pass


@pytest.fixture(params=["memory", "file", "redis"])
async def bot_folder(request, tmp_path: Path):
    driver = request.param
    stores: dict[str, Any] = {"file": {"dirname": "sessions"}}
    prefix = f"test-steps-{uuid.uuid4().hex[:10]}:"
    if driver == "redis":
        import redis.asyncio as aioredis

        client = aioredis.from_url(REDIS_URL)
        try:
            await client.ping()
        except Exception as exc:
            await client.aclose()
            pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
        stores["redis"] = {"url": REDIS_URL, "prefix": prefix}
    (tmp_path / "bot.py").write_text(BOT)
    (tmp_path / "bot.config.py").write_text(textwrap.dedent(f"""
        app = "bot:flows"
        session = {{"driver": {driver!r}, "stores": {stores!r}}}
    """))
    yield driver, tmp_path / "bot.config.py"
    if driver == "redis":
        keys = [key async for key in client.scan_iter(f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def steps_list(config: Path, *key: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "botkit", "steps", "list", *key, "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def tell(bot: Any, key: str, text: str) -> list[str]:
    said = Said()
    await bot.dispatch([Event("test", "text", key, text=text, channel="test", meta={"sender": said})])
    return said.texts


async def test_cancel_steps_and_steps_list(bot_folder):
    driver, config_path = bot_folder
    bot = test_bot(load_config(config_path))
    async with bot:
        await tell(bot, "test:1", "hi")
        await tell(bot, "test:2", "hi")
        assert [step.slug for _, step in await bot.scheduler.pending("test:1")] == ["reminder->ping", "nudge->poke"]

        listed = steps_list(config_path, "test:1")
        if driver == "memory":
            assert listed["steps"] is None and "inside the running bot" in listed["note"]
        else:
            assert [(s["session_key"], s["slug"]) for s in listed["steps"]] == [
                ("test:1", "reminder->ping"), ("test:1", "nudge->poke")]
            assert 0 < listed["steps"][0]["due_in_seconds"] <= 60
            assert len(steps_list(config_path)["steps"]) == 4

        assert await tell(bot, "test:1", "cancel reminder") == ["cancelled 1"]
        assert [step.slug for _, step in await bot.scheduler.pending("test:1")] == ["nudge->poke"]
        [(_, poke)] = await bot.scheduler.pending("test:1")
        assert await tell(bot, "test:1", "cancel") == ["cancelled 1"]
        assert await bot.scheduler.pending("test:1") == []
        assert len(await bot.scheduler.pending("test:2")) == 2, "another session's steps stay"
        if driver != "memory":
            assert steps_list(config_path, "test:1")["steps"] == []
            assert {s["session_key"] for s in steps_list(config_path)["steps"]} == {"test:2"}

        # A step already claimed (or waiting its turn in the inbox) when it was cancelled does not run.
        said = Said()
        bot.channels["test"].pushes["test:1"] = said
        await bot.run("test:1", step_handler(poke), event_type="scheduled", event_id=poke.id)
        assert said.texts == []

        # Steps asked for earlier in the same handler are cancelled too, and never scheduled.
        assert await tell(bot, "test:3", "hi and forget") == ["cancelled 1"]
        assert await bot.scheduler.pending("test:3") == []
        assert await tell(bot, "test:1", "cancel") == ["cancelled 0"]


async def test_a_handler_that_raises_cancels_nothing(tmp_path):
    from botkit.app.config import config_from_mapping
    from botkit.flows.router import Flows

    flows = Flows()

    @flows.state("chat")
    async def listen(context):
        if context.event.text == "hi":
            await context.step_to_in(60, "chat", "listen")
        else:
            await context.cancel_steps()
            raise RuntimeError("boom")

    bot = test_bot(config_from_mapping({"app": "bot:flows"}, root=tmp_path), handler=flows)
    async with bot:
        await tell(bot, "test:1", "hi")
        await tell(bot, "test:1", "cancel")
        assert len(await bot.scheduler.pending("test:1")) == 1
