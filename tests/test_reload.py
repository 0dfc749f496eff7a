"""`botkit start --reload` as a user runs it: edit bot.py, and the next reply comes from the new code."""
from __future__ import annotations

import itertools
import subprocess
import sys

import aiohttp

from tests.support import BotProcess, eventually
from tests.test_cli import HEADERS, update, write_bot

HANDLER = "async def app(context):\n    await context.send_text({reply!r})\n"


async def test_editing_bot_py_changes_the_next_reply(fake_api, tmp_path):
    config = write_bot(tmp_path, fake_api.url, handler=HANDLER.format(reply="first"))
    ids = itertools.count(1)

    async def reply() -> str | None:
        """Post an update; the reply it got, or None while the bot restarts."""
        before = len(fake_api.calls_to("sendMessage"))
        try:
            async with aiohttp.ClientSession() as http, http.post(
                    bot.url + "/webhooks/telegram", json=update(next(ids)), headers=HEADERS) as response:
                if response.status != 200:
                    return None
        except aiohttp.ClientError:
            return None
        calls = await fake_api.wait_for(before + 1, "sendMessage")
        return calls[-1].json["text"]

    async with BotProcess(config, "--reload") as bot:
        assert await reply() == "first"
        (tmp_path / "bot.py").write_text(HANDLER.format(reply="second"))
        await eventually(lambda: _is(reply(), "second"), timeout=30, every=0.3)

        # A mistake: the bot does not start (its import raises), and the watcher waits for the fix.
        (tmp_path / "bot.py").write_text("import pathlib\npathlib.Path(__file__).with_name('tried').touch()\nundefined_name\n")
        await eventually(lambda: (tmp_path / "tried").exists(), timeout=30)
        await eventually(lambda: _is(reply(), None), timeout=30, every=0.3)
        (tmp_path / "bot.py").write_text(HANDLER.format(reply="third"))
        await eventually(lambda: _is(reply(), "third"), timeout=30, every=0.3)
    assert bot.process.returncode == 0
    assert b"changed: restarting" in bot.output
    assert b"config error" in bot.output and b"NameError" in bot.output, "the typo was loaded and reported"


async def _is(answer, expected) -> bool:
    return await answer == expected


def test_reload_with_workers_is_refused(tmp_path):
    config = write_bot(tmp_path)
    done = subprocess.run([sys.executable, "-m", "botkit", "start", "--reload", "--workers", "2", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "botkit: config error: --reload: restarts one process: drop --workers while developing"
