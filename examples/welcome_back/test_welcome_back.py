"""The welcome-back bot as its users meet it: `pytest examples/welcome_back`."""
import pytest

pytestmark = pytest.mark.bot_tester(channel="telegram", driver="memory")


async def test_a_returning_user_is_welcomed_back_after_the_session_expired(bot_tester):
    await bot_tester.send("hi")
    assert bot_tester.replies[-1].text == "Welcome! First time here? You are visitor number 1."
    await bot_tester.send("how are you")
    assert bot_tester.replies[-1].text == "You said: how are you"

    await bot_tester.advance(minutes=31)  # the session expires; the bot memory does not
    await bot_tester.send("hello again")
    assert bot_tester.replies[-1].text.startswith("Welcome back! Last seen: ")


async def test_bot_memory_is_shared_by_every_conversation(bot_tester):
    await bot_tester.send("hi")
    other = bot_tester.user("bob")
    await other.send("hi")
    assert other.replies[-1].text == "Welcome! First time here? You are visitor number 2."
    assert await bot_tester.bot.bot_memory.get("people_met") == 2
