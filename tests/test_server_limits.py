"""The server against clients that hold connections open, go away mid-request, or put secrets in URLs;
and session keys in the log. `botkit start` runs as a real subprocess where the server's own runner
matters (timeouts, the connection cap, the access log)."""
from __future__ import annotations

import asyncio
import logging
import textwrap
from pathlib import Path

import aiohttp
import pytest

from botkit.core.events import Event
from tests.support import BotProcess, make_config, test_bot

SECRET = "limits-secret"
VERIFY_TOKEN = "meta-verify-token-value"


def bot_config(tmp_path: Path, server: dict, session: dict | None = None) -> Path:
    path = tmp_path / "bot.config.py"
    path.write_text(textwrap.dedent(f"""
        app = "examples.counter.bot:app"
        initial_state = {{"count": 0}}
        session = {session or {}!r}
        channels = {{
            "telegram": {{"access_token": "1:limits", "secret_token": {SECRET!r}, "api_base": "http://127.0.0.1:9"}},
            "messenger": {{"access_token": "page", "app_secret": "app-secret", "verify_token": {VERIFY_TOKEN!r}}},
            "web": {{}},
        }}
        server = {server!r}
    """))
    return path


async def answer_and_close(reader: asyncio.StreamReader, within: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection; fails if it is still open ``within``
    seconds later."""
    return await asyncio.wait_for(reader.read(), within)


async def test_a_body_that_does_not_arrive_gets_408_and_the_connection_closes(tmp_path):
    async with BotProcess(bot_config(tmp_path, {"read_timeout": 0.5})) as bot:
        reader, writer = await asyncio.open_connection("127.0.0.1", bot.port)
        writer.write(b"POST /webhooks/telegram HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\nX-Telegram-Bot-Api-Secret-Token: " + SECRET.encode() + b"\r\n\r\n{")
        await writer.drain()
        answer = await answer_and_close(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ")
        async with aiohttp.ClientSession() as http, http.get(bot.url + "/healthz") as health:
            assert health.status == 200
    assert b"server.read_timeout" in bot.output and b"Traceback" not in bot.output


@pytest.mark.parametrize("sent", [b"", b"POST /webhooks/telegram HTTP/1.1\r\nHost: bot\r\n"])
async def test_a_request_head_that_does_not_arrive_gets_408_and_the_connection_closes(tmp_path, sent):
    async with BotProcess(bot_config(tmp_path, {"header_timeout": 0.5})) as bot:
        reader, writer = await asyncio.open_connection("127.0.0.1", bot.port)
        writer.write(sent)
        await writer.drain()
        answer = await answer_and_close(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ")


async def test_a_kept_alive_connection_may_idle_between_requests_longer_than_the_header_timeout(tmp_path):
    async with BotProcess(bot_config(tmp_path, {"header_timeout": 0.3})) as bot:
        reader, writer = await asyncio.open_connection("127.0.0.1", bot.port)
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 ")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            await asyncio.sleep(0.6)
        writer.close()


async def test_beyond_max_connections_a_new_connection_gets_503_until_others_close(tmp_path):
    async with BotProcess(bot_config(tmp_path, {"max_connections": 8, "header_timeout": 60})) as bot:
        held = [await asyncio.open_connection("127.0.0.1", bot.port) for _ in range(8)]
        reader, writer = await asyncio.open_connection("127.0.0.1", bot.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n")
        answer = await answer_and_close(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
        for _, held_writer in held:
            held_writer.close()
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                async with http.get(bot.url + "/healthz") as health:
                    if health.status == 200:
                        break
                await asyncio.sleep(0.05)
            assert health.status == 200
    assert b"server.max_connections" in bot.output


async def test_a_client_that_goes_away_mid_upload_costs_one_info_line_not_a_traceback(tmp_path):
    async with BotProcess(bot_config(tmp_path, {})) as bot:
        for path in ("/api/session", "/api/chat", "/webhooks/telegram"):
            _, writer = await asyncio.open_connection("127.0.0.1", bot.port)
            writer.write(f"POST {path} HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
                         f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\nContent-Length: 1000\r\n\r\n{{".encode())
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.transport.abort()
        await asyncio.sleep(0.3)
        async with aiohttp.ClientSession() as http, http.get(bot.url + "/healthz") as health:
            assert health.status == 200
    lines = bot.output.decode().splitlines()
    gone = [line for line in lines if "went away" in line]
    assert len(gone) == 3 and all(" INFO botkit.server: " in line for line in gone), gone
    assert "Traceback" not in bot.output.decode() and not [line for line in lines if " ERROR " in line]


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_access_log_leaves_query_values_out(tmp_path, workers):
    session = {"driver": "redis", "stores": {"redis": {"url": "redis://127.0.0.1:6379/15", "prefix": "botkit-test-limits:"}}}
    process = BotProcess(bot_config(tmp_path, {}, session if workers > 1 else None), "--workers", str(workers))
    async with process as bot, aiohttp.ClientSession() as http:
        query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        async with http.get(f"{bot.url}/webhooks/messenger?{query}") as handshake:
            assert handshake.status == 200 and await handshake.text() == "1158201444"
        await asyncio.sleep(0.2)
    assert VERIFY_TOKEN.encode() not in bot.output and b"1158201444" not in bot.output
    assert b'"GET /webhooks/messenger?hub.mode=***&hub.verify_token=***&hub.challenge=*** HTTP/1.1" 200' in bot.output


async def test_session_keys_above_debug_do_not_show_the_phone_number(tmp_path, caplog):
    from botkit.core.keys import shown

    key, number = "sms:+15551234567", "+15551234567"

    async def handler(context):
        if context.event.text == "boom":
            raise ValueError("handler bug")

    bot = test_bot(make_config(tmp_path), handler=handler, channels={})
    caplog.set_level(logging.DEBUG)
    async with bot:
        for text, event_id in (("hi", "1"), ("hi", "1"), ("boom", "2")):
            await bot.dispatch([Event("sms", "text", key, text=text, id=event_id, channel="test")])
    above_debug = [r for r in caplog.records if r.levelno > logging.DEBUG and r.name.startswith("botkit")]
    assert any("handled already" in r.getMessage() for r in above_debug)
    assert any("handler raised" in r.getMessage() for r in above_debug)
    assert all(number not in r.getMessage() for r in above_debug)
    assert sum(shown(key) in r.getMessage() for r in above_debug) >= 2
    assert any(number in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    assert shown(key).startswith("sms:#") and shown(key) == shown(key) != shown("sms:+15551234568")


def test_a_worker_told_to_stop_before_its_own_signal_handlers_exist_stops_once_started():
    """gunicorn's master, told to stop while it forks a worker, sends the stop at once; in the new worker
    it reaches the master's own handler (inherited through fork) and used to be lost, so the worker served
    on until the master killed it at the graceful timeout. Played here in a process of its own."""
    import subprocess
    import sys

    script = textwrap.dedent("""
        import os, queue, signal, types
        from botkit.shell.workers import _heed_an_early_stop

        arbiter = types.SimpleNamespace(SIG_QUEUE=queue.SimpleQueue())
        signal.signal(signal.SIGTERM, lambda sig, frame: arbiter.SIG_QUEUE.put_nowait(sig))  # the master's handler
        os.kill(os.getpid(), signal.SIGTERM)  # the stop, between the fork and the worker's own handlers
        worker = types.SimpleNamespace(alive=True)
        _heed_an_early_stop(arbiter, worker)
        print("stopped after the fork:", not worker.alive)
        worker.alive = True
        os.kill(os.getpid(), signal.SIGTERM)  # and one that comes before aiohttp's handlers are set up
        print("stopped before the handlers:", not worker.alive)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.split("\n")[:2] == ["stopped after the fork: True", "stopped before the handlers: True"], done
