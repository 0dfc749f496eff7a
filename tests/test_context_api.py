"""`await context.api(method, payload)`: platform calls botkit does not wrap, with the channel's auth, against
the fake platforms of botkit.testing."""
from __future__ import annotations

from typing import Any

import pytest

from botkit.core.errors import SendError
from botkit.testing import BotTester
from botkit.testing.platforms.telegram import TOKEN
from tests.support import make_config


async def test_context_api_calls_an_unwrapped_bot_api_method_on_telegram() -> None:
    async def app(context: Any) -> None:
        result = await context.api("setMyCommands", {"commands": [{"command": "start", "description": "Start"}]})
        await context.send_text(f"commands set: {result}")

    async with BotTester(make_config(app=app), channel="telegram") as bot:
        assert [reply.text for reply in await bot.send("hi")] == ["commands set: True"]
        call = next(call for call in bot.calls if call.path.endswith("/setMyCommands"))
        assert call.path == f"/bot{TOKEN}/setMyCommands" and call.status == 200
        assert call.json == {"commands": [{"command": "start", "description": "Start"}]}


async def test_context_api_calls_a_graph_path_on_messenger_with_the_page_token() -> None:
    async def app(context: Any) -> None:
        await context.api("me/messenger_profile", {"greeting": [{"locale": "default", "text": "Hello!"}]})
        profile = await context.api(context.event.user_id, {"fields": "first_name"}, verb="GET")
        await context.send_text(f"profile: {profile}")

    async with BotTester(make_config(app=app), channel="messenger") as bot:
        assert [reply.text for reply in await bot.send("hi")] == ["profile: {'success': True}"]
        posted, fetched = [call for call in bot.calls if not call.path.endswith("/me/messages")]
        assert (posted.method, posted.path) == ("POST", "/v19.0/me/messenger_profile")
        assert posted.json == {"greeting": [{"locale": "default", "text": "Hello!"}]}
        assert posted.query["access_token"], "the page token rides along as Messenger's calls carry it"
        assert (fetched.method, fetched.query["fields"]) == ("GET", "first_name")
        assert fetched.path.endswith("/" + bot.session_key.split(":", 1)[1])


async def test_a_refused_api_call_raises_send_error_without_the_token() -> None:
    async def app(context: Any) -> None:
        try:
            await context.api("../elsewhere", {})
        except SendError as exc:
            await context.send_text(f"refused: {exc.status} {TOKEN in str(exc)}")

    async with BotTester(make_config(app=app), channel="telegram") as bot:
        assert [reply.text for reply in await bot.send("hi")] == ["refused: 404 False"]


@pytest.mark.parametrize(("channel", "method", "verb", "path"), [
    ("line", "/v2/bot/profile/{user}", "GET", "/v2/bot/profile/"),
    ("sms", "Calls.json", "POST", "/Calls.json"),
])
async def test_context_api_on_other_channels(channel: str, method: str, verb: str, path: str) -> None:
    async def app(context: Any) -> None:
        await context.api(method.replace("{user}", context.event.user_id or ""), {"To": "+15550001111"} if verb == "POST" else None,
                          verb=verb)

    async with BotTester(make_config(app=app), channel=channel, raise_errors=False) as bot:
        await bot.send("hi")
        call = next(call for call in bot.calls if path in call.path)
        assert call.method == verb and call.header("Authorization")


async def test_the_web_chat_has_no_platform_api() -> None:
    async def app(context: Any) -> None:
        try:
            await context.api("anything")
        except NotImplementedError as exc:
            await context.send_text(str(exc))

    async with BotTester(make_config(app=app), channel="web") as bot:
        assert "offers no platform API calls" in (await bot.send("hi"))[0].text
