"""A misspelt top-level setting in bot.config.py stops start-up with one line naming the likely setting;
custom values live in `extra = {...}` (or under names starting with `_`) and reach `context.extra`."""
from __future__ import annotations

from typing import Any

import pytest

from botkit.app.config import load_config
from botkit.core.errors import ConfigError
from botkit.testing import BotTester
from tests.support import make_config
from tests.test_cli import botkit, write_bot


@pytest.mark.parametrize(("typo", "setting"), [
    ('sesion = {"driver": "memory"}', "session"),
    ('chanels = {}', "channels"),
    ('Server = {"port": 8000}', "server"),
    ('middlewares = []', "middleware"),
    ('initial_sate = {}', "initial_state"),
])
def test_botkit_start_refuses_a_misspelt_setting_in_one_line(tmp_path: Any, typo: str, setting: str) -> None:
    config = write_bot(tmp_path, extra=typo + "\n")
    result = botkit("start", "--config", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    name = typo.split(" ", 1)[0]
    assert line.startswith(f"botkit: config error: {name}: unknown setting; did you mean `{setting}`?")
    assert "extra" in line


def test_custom_values_in_extra_and_far_from_any_setting_reach_context_extra(tmp_path: Any) -> None:
    config = write_bot(tmp_path, extra='extra = {"greeting": "Ahoy"}\nreengage_after = 60\n_private = 1\n')
    loaded = load_config(config)
    assert loaded.extra == {"greeting": "Ahoy", "reengage_after": 60}


async def test_a_handler_reads_extra() -> None:
    async def app(context: Any) -> None:
        await context.send_text(context.extra["greeting"])

    async with BotTester(make_config(app=app, extra={"greeting": "Ahoy"}), channel="telegram") as bot:
        assert [reply.text for reply in await bot.send("hi")] == ["Ahoy"]


def test_extra_must_be_a_dict() -> None:
    with pytest.raises(ConfigError, match=r"^extra: must be a dict"):
        make_config(extra=["greeting"])
