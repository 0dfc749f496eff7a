"""Log lines above DEBUG name a conversation by ``shown(key)`` (``telegram:#1f0c3a9e5b``), never by its full
session key: the key holds the user's chat id or phone number."""
from __future__ import annotations

import logging

import pytest

from botkit.app.config import config_from_mapping
from botkit.core.keys import shown
from botkit.flows import Flows
from botkit.testing import BotTester


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno > logging.DEBUG]


def assert_masked(caplog: pytest.LogCaptureFixture, key: str) -> list[str]:
    logged = lines(caplog)
    ident = key.partition(":")[2]
    assert [line for line in logged if ident in line] == []
    return logged


async def test_a_failing_handlers_line_names_the_conversation_masked(caplog):
    async def app(context):
        raise RuntimeError("the handler broke")

    caplog.set_level(logging.INFO, logger="botkit")
    async with BotTester(handler=app, channel="telegram", raise_errors=False) as user:
        await user.send("hi")
        key = user.session_key
    assert key is not None
    logged = assert_masked(caplog, key)
    assert any("handler raised" in line and shown(key) in line for line in logged)


async def test_steps_a_handler_schedules_are_logged_masked(caplog):
    flows = Flows()

    @flows.state("hello")
    async def hello(context):
        if context.event.text == "later":
            await context.step_to_in(7200, "nudge")  # after session.expires_in: a warning
        elif context.event.text == "never mind":
            await context.cancel_steps()
        await context.send_text("ok")

    @flows.state("nudge")
    async def nudge(context):
        await context.send_text("still there?")

    config = config_from_mapping({"session": {"expires_in": 60}})
    caplog.set_level(logging.INFO, logger="botkit")
    async with BotTester(config, handler=flows, channel="telegram") as user:
        for text in ("later", "never mind"):
            await user.send(text)
        await user.advance(seconds=7201)
        key = user.session_key
    assert key is not None
    logged = assert_masked(caplog, key)
    assert any("session.expires_in" in line for line in logged)
    assert any("nudge->nudge" in line and "dropped" in line for line in logged)
