"""The example bot's web chat (bot.config.py turns it on): what a visitor's page sees.

The kit plays the page: it starts a session (POST /api/session), keeps the event stream open
(GET /api/events) and chats with the session's token (POST /api/chat).
"""
import pytest

pytestmark = pytest.mark.bot_tester(channel="web")


async def test_the_answer_to_a_chat_message_carries_the_reply(bot_tester):
    replies = await bot_tester.send("hi")
    assert [(reply.kind, reply.text) for reply in replies] == [("text", "Count: 1")]
    assert bot_tester.session_key.startswith("web:")


async def test_after_half_an_hour_idle_the_count_starts_again(bot_tester):
    await bot_tester.send("hi")
    await bot_tester.send("hi")
    await bot_tester.advance(minutes=29)
    await bot_tester.send("still here")
    assert bot_tester.replies[-1].text == "Count: 3"

    await bot_tester.advance(minutes=31)  # channels.web.idle_timeout: 30 minutes
    await bot_tester.send("back")
    assert bot_tester.replies[-1].text == "Count: 1"


async def test_a_message_the_bot_starts_reaches_the_open_page(bot_tester):
    await bot_tester.send("hi")
    await bot_tester.bot.send_text(bot_tester.session_key, "We're closing in 10 minutes.")
    await bot_tester.settle()
    assert bot_tester.replies[-1].text == "We're closing in 10 minutes."


async def test_two_visitors_have_their_own_sessions(bot_tester):
    other = bot_tester.user("visitor-2")
    await bot_tester.send("hi")
    await other.send("hi")
    await other.send("hi")
    assert (bot_tester.state["count"], other.state["count"]) == (1, 2)
    assert bot_tester.session_key != other.session_key
