"""The shop bot's sessions, as its users meet them: `pytest examples/sessions`.

A session ends 30 minutes after its last message (`session.expires_in`): `advance` moves the test's clock,
and the end hook runs as the bot's end sweep would run it, without sleeping.
"""
import pytest


@pytest.mark.bot_tester(channel="telegram")
async def test_a_session_left_with_a_full_cart_ends_with_a_reminder(bot_tester):
    await bot_tester.send("add tea")
    assert [reply.text for reply in bot_tester.replies] == [
        'Welcome to the shop! Say "add <item>", then "checkout".', "In your cart: tea"]
    reminder = await bot_tester.advance(minutes=31)
    assert [reply.text for reply in reminder] == ["You left 1 item(s) in your cart: tea. They are gone now."]
    await bot_tester.send("add milk")
    assert bot_tester.replies[-2].text.startswith("Welcome"), "a new session starts"


@pytest.mark.bot_tester(channel="telegram")
async def test_checkout_ends_the_session_at_once(bot_tester):
    await bot_tester.send("add tea")
    await bot_tester.send("checkout")
    assert bot_tester.replies[-1].text == "Ordered 1 item(s). Thank you!"
    assert await bot_tester.advance(minutes=31) == [], "ended once, not again at the expiry"
    await bot_tester.send("hi")
    assert bot_tester.replies[-2].text.startswith("Welcome")
