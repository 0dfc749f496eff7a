"""What a newcomer meets on a first run: where `botkit start` listens, a quiet reload and stop of workers, JSON
from `botkit telegram webhook info`, and a caught SendError that logs no traceback."""
from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

from botkit import SendError
from botkit.testing import BotTester
from tests.stores import REDIS_URL, drop_redis_prefix, unique
from tests.support import BotProcess, make_config
from tests.test_cli import botkit, write_bot


async def test_a_single_process_start_says_where_it_listens(fake_api: Any, tmp_path: Path) -> None:
    async with BotProcess(write_bot(tmp_path, fake_api.url)) as bot:
        port = bot.port
    assert f"listening on http://127.0.0.1:{port}".encode() in bot.output


async def test_workers_reload_and_stop_without_bad_file_descriptor(fake_api: Any, tmp_path: Path) -> None:
    prefix = unique("firstrun:")
    session = f'session = {{"driver": "redis", "stores": {{"redis": {{"url": {REDIS_URL!r}, "prefix": {prefix!r}}}}}}}\n'
    config = write_bot(tmp_path, fake_api.url, extra=session)
    try:
        bot = await BotProcess(config, "--workers", "2").start()
        assert bot.process is not None
        bot.process.send_signal(signal.SIGHUP)
        await asyncio.sleep(3)
        assert await bot.stop() == 0
    finally:
        await drop_redis_prefix(REDIS_URL, prefix)
    assert b"Hang up" in bot.output, "the reload happened"
    assert b"Bad file descriptor" not in bot.output


async def test_telegram_webhook_info_prints_json(fake_api: Any, tmp_path: Path) -> None:
    fake_api.on("/getWebhookInfo", json={"ok": True, "result": {"url": "https://example.com/hook", "pending_update_count": 0}})
    result = await asyncio.to_thread(botkit, "telegram", "webhook", "info", "--config", str(write_bot(tmp_path, fake_api.url)))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"url": "https://example.com/hook", "pending_update_count": 0}


async def test_a_send_error_caught_by_the_caller_logs_no_error() -> None:
    async def app(context: Any) -> None:
        await context.send_text("hello")

    async with BotTester(make_config(app=app), channel="telegram", raise_errors=False) as bot:
        await bot.send("hi")
        try:
            await bot.bot.send_text(bot.session_key, "")  # Telegram refuses an empty text
        except SendError as exc:
            assert exc.status == 400
        else:
            raise AssertionError("the refused send did not raise")
        assert bot.errors == [], "the caller caught it: no ERROR line, no traceback"
