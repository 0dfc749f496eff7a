"""The example bot's one config serving every channel at once, as `botkit start` runs it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.support import BotProcess
from tests.test_telegram import raw_status

ROOT = Path(__file__).resolve().parent.parent
CREDENTIALS = {
    "TELEGRAM_ACCESS_TOKEN": "1:tg", "TELEGRAM_SECRET_TOKEN": "tg-secret",
    "MESSENGER_ACCESS_TOKEN": "EAAtoken", "MESSENGER_APP_SECRET": "fb-secret", "MESSENGER_VERIFY_TOKEN": "fb-verify",
    "LINE_ACCESS_TOKEN": "line-token", "LINE_CHANNEL_SECRET": "line-secret",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "twilio-token",
    "TWILIO_SMS_NUMBER": "+15550001111", "TWILIO_WHATSAPP_NUMBER": "+15550002222",
    "TEAMS_APP_ID": "00000000-0000-0000-0000-000000000001", "TEAMS_APP_PASSWORD": "teams-password",
}
CLOUD = {"WHATSAPP_ACCESS_TOKEN": "wa-token", "WHATSAPP_APP_SECRET": "wa-secret",
         "WHATSAPP_VERIFY_TOKEN": "wa-verify", "WHATSAPP_PHONE_NUMBER_ID": "1234567890"}


async def status(http: aiohttp.ClientSession, method: str, url: str, **kwargs) -> int:
    async with http.request(method, url, **kwargs) as response:
        return response.status


async def test_one_config_serves_every_channel(tmp_path):
    async with BotProcess(ROOT / "bot.config.py", env=CREDENTIALS) as bot, aiohttp.ClientSession() as http:
        async with http.get(bot.url + "/healthz") as response:
            served = (await response.json())["channels"]
        assert set(served) >= {"telegram", "messenger", "line", "sms", "whatsapp", "teams", "web"}
        for path in ("/webhooks/telegram", "/webhooks/messenger", "/webhooks/line", "/webhooks/sms",
                     "/webhooks/whatsapp", "/webhooks/teams"):
            assert await status(http, "POST", bot.url + path, data=b"{}") == 401, path
        challenge = {"hub.mode": "subscribe", "hub.verify_token": "fb-verify", "hub.challenge": "42"}
        async with http.get(bot.url + "/webhooks/messenger", params=challenge) as response:
            assert response.status == 200 and await response.text() == "42"
        assert await status(http, "POST", bot.url + "/api/session") == 201
        assert await status(http, "GET", bot.url + "/") == 200


async def test_the_whatsapp_cloud_provider_from_the_same_config(tmp_path):
    async with BotProcess(ROOT / "bot.config.py", env={**CREDENTIALS, **CLOUD}) as bot, aiohttp.ClientSession() as http:
        challenge = {"hub.mode": "subscribe", "hub.verify_token": "wa-verify", "hub.challenge": "7"}
        async with http.get(bot.url + "/webhooks/whatsapp", params=challenge) as response:
            assert response.status == 200 and await response.text() == "7"
        challenge["hub.verify_token"] = "wrong"
        assert await status(http, "GET", bot.url + "/webhooks/whatsapp", params=challenge) == 403


def test_a_listed_channel_without_its_secret_stops_start_up():
    env = {k: v for k, v in CREDENTIALS.items() if k != "LINE_CHANNEL_SECRET"}
    result = subprocess.run([sys.executable, "-m", "botkit", "start", "--config", str(ROOT / "bot.config.py")],
                            env={**__import__("os").environ, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        'botkit: config error: channels.line.channel_secret: missing; set it in bot.config.py '
        '(or its environment variable), or set "enabled": False')


CREDENTIAL_HEADERS = {
    "/webhooks/telegram": "X-Telegram-Bot-Api-Secret-Token",
    "/webhooks/messenger": "X-Hub-Signature-256",
    "/webhooks/line": "X-Line-Signature",
    "/webhooks/sms": "X-Twilio-Signature",
    "/webhooks/whatsapp": "X-Twilio-Signature",
    "/webhooks/teams": "Authorization",
}


async def test_a_credential_header_of_non_ascii_bytes_is_401_on_every_channel(tmp_path):
    """Not 400 (it used to be: reading the header raised): a credential that cannot be read fails like a wrong one."""
    async with BotProcess(ROOT / "bot.config.py", env=CREDENTIALS) as bot:
        for path, name in CREDENTIAL_HEADERS.items():
            for value in (b"\xff\xfe", "é✓".encode()):
                header = name.encode() + b": " + (b"Bearer " if name == "Authorization" else b"") + value + b"\r\n"
                assert await raw_status(bot.port, path, header, b"{}") == 401, (path, value)


async def test_a_wrong_credential_is_401_on_every_channel_before_the_body_arrives(tmp_path):
    """A body that never finishes: every channel answers from the headers alone."""
    wrong = {"X-Telegram-Bot-Api-Secret-Token": b"wrong", "X-Hub-Signature-256": b"sha256=" + b"0" * 63,
             "X-Line-Signature": b"AAAA", "X-Twilio-Signature": b"short", "Authorization": b"Bearer not.a.jwt"}
    async with BotProcess(ROOT / "bot.config.py", env=CREDENTIALS) as bot:
        for path, name in CREDENTIAL_HEADERS.items():
            for header in (b"", name.encode() + b": " + wrong[name] + b"\r\n"):
                assert await raw_status(bot.port, path, header, b"{", length=100_000) == 401, (path, header)
