"""The `botkit` command as a user runs it: real subprocesses, a real port, a fake Telegram API."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import aiohttp
import pytest

from tests.support import BotProcess

TOKEN = "42:TEST"
SECRET = "secret-1"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
ROOT = Path(__file__).resolve().parent.parent


def write_bot(folder: Path, api_base: str = "http://127.0.0.1:9", driver: str = "memory", handler: str | None = None,
              extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bot.py").write_text(handler or (ROOT / "examples/counter/bot.py").read_text())
    config = folder / "bot.config.py"
    config.write_text(textwrap.dedent(f"""
        app = "bot:app"
        initial_state = {{"count": 0}}
        session = {{"driver": {driver!r}, "stores": {{"file": {{"dirname": "sessions"}}}}}}
        channels = {{"telegram": {{"access_token": {TOKEN!r}, "secret_token": {SECRET!r}, "api_base": {api_base!r}}}}}
        server = {{"shutdown_timeout": 10}}
    """) + extra)
    return config


def update(update_id: int, chat_id: int = 7) -> dict:
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 0, "text": "hi",
                                                "chat": {"id": chat_id, "type": "private"}}}


def botkit(*args: str, cwd: Path | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "botkit", *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=60)


async def test_start_serves_the_telegram_webhook(fake_api, tmp_path):
    async with BotProcess(write_bot(tmp_path, fake_api.url)) as bot, aiohttp.ClientSession() as http:
        async with http.post(bot.url + "/webhooks/telegram", json=update(1), headers=HEADERS) as response:
            assert response.status == 200
        async with http.post(bot.url + "/webhooks/telegram", json=update(2), headers={"X-Telegram-Bot-Api-Secret-Token": "no"}) as response:
            assert response.status == 401
        async with http.post(bot.url + "/webhooks/telegram", data=b"{not json", headers=HEADERS) as response:
            assert response.status == 400
    [call] = fake_api.calls
    assert call.path == f"/bot{TOKEN}/sendMessage" and call.json == {"chat_id": 7, "text": "Count: 1"}
    assert b'"POST /webhooks/telegram HTTP/1.1" 200' in bot.output, "requests are logged"


async def test_file_sessions_survive_a_restart(fake_api, tmp_path):
    config = write_bot(tmp_path, fake_api.url, driver="file")
    for first_id in (1, 3):
        async with BotProcess(config) as bot, aiohttp.ClientSession() as http:
            for update_id in (first_id, first_id + 1):
                async with http.post(bot.url + "/webhooks/telegram", json=update(update_id), headers=HEADERS) as response:
                    assert response.status == 200
    assert [c.json["text"] for c in fake_api.calls] == ["Count: 1", "Count: 2", "Count: 3", "Count: 4"]
    assert [p.name for p in (tmp_path / "sessions").glob("*.json")] == ["telegram%3A7.json"]


async def test_shutdown_lets_a_running_handler_finish(fake_api, tmp_path):
    slow = "import asyncio\n\nasync def app(context):\n    await asyncio.sleep(1.5)\n    await context.send_text('done')\n"
    bot = await BotProcess(write_bot(tmp_path, fake_api.url, handler=slow)).start()
    async with aiohttp.ClientSession() as http:
        pending = asyncio.ensure_future(http.post(bot.url + "/webhooks/telegram", json=update(1), headers=HEADERS))
        await fake_api.wait_for(0)
        await asyncio.sleep(0.5)
        assert await bot.stop() == 0
        response = await pending
        assert response.status == 200
    assert [c.json["text"] for c in fake_api.calls] == ["done"]


@pytest.mark.parametrize("change, setting", [
    ('session = {"driver": "cassandra"}', "session.driver"),
    ('channels = {"telegram": {"secret_token": "x"}}', "channels.telegram.access_token"),
    ('app = "nowhere:app"', "app"),
    ('server = {"port": "eighty"}', "server.port"),
    ('session = {"expires_in": "soon"}', "session.expires_in"),
    ('channels = {"fax": {}}', "channels.fax"),
])
def test_a_config_mistake_is_one_line_naming_the_setting(tmp_path, change, setting):
    config = write_bot(tmp_path, extra=change + "\n")
    result = botkit("start", "--config", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"botkit: config error: {setting}:")


def test_init_makes_a_bot_the_console_can_talk_to(tmp_path):
    result = botkit("init", str(tmp_path / "mybot"))
    assert result.returncode == 0
    assert {p.name for p in (tmp_path / "mybot").iterdir()} == {"bot.py", "bot.config.py", "test_bot.py"}
    talk = botkit("console", "--config", str(tmp_path / "mybot" / "bot.config.py"), stdin="hi\nhi\n/state\n/exit\n")
    assert talk.returncode == 0
    assert "Bot > Count: 1" in talk.stdout and "Bot > Count: 2" in talk.stdout and '{"count": 2}' in talk.stdout


def test_console_under_a_pseudo_terminal(tmp_path):
    import pty
    import select

    config = write_bot(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console as a user runs it
        os.execvp(sys.executable, [sys.executable, "-m", "botkit", "console", "--config", str(config)])
    screen = b""

    def read_until(marker: bytes, timeout: float = 20.0) -> None:
        nonlocal screen
        while marker not in screen:
            ready, _, _ = select.select([fd], [], [], timeout)
            assert ready, f"no {marker!r} on the screen: {screen!r}"
            screen += os.read(fd, 4096)

    try:
        for line, expected in [(b"hi", b"Count: 1"), (b"hi", b"Count: 2"), (b"/state", b'{"count": 2}')]:
            read_until(b"You > ")
            screen = screen[screen.index(b"You > ") + 6:]
            os.write(fd, line + b"\n")
            read_until(expected)
        os.write(fd, b"/exit\n")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)


def test_sessions_list_show_delete_on_the_file_driver(tmp_path):
    config = write_bot(tmp_path, driver="file")
    assert botkit("console", "--config", str(config), "--user", "ada", stdin="hi\n").returncode == 0
    assert botkit("sessions", "list", "--config", str(config)).stdout.split() == ["console:ada"]
    shown = json.loads(botkit("sessions", "show", "console:ada", "--config", str(config)).stdout)
    assert shown["record"]["state"] == {"count": 1} and shown["record"]["key"] == "console:ada"
    assert [(entry["dir"], entry.get("text")) for entry in shown["history"]] == [("in", "hi"), ("out", "Count: 1")]
    assert botkit("sessions", "delete", "console:ada", "--config", str(config)).returncode == 0
    assert botkit("sessions", "list", "--config", str(config)).stdout.split() == []
    missing = botkit("sessions", "show", "console:ada", "--config", str(config))
    assert missing.returncode == 1 and "no session console:ada" in missing.stderr


def test_the_root_config_runs_the_example_bot():
    talk = botkit("console", "--config", str(ROOT / "bot.config.py"), "--user", "readme", stdin="hello\nhello\n")
    assert "Bot > Count: 1" in talk.stdout and "Bot > Count: 2" in talk.stdout
