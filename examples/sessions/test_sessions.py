"""The shop bot's sessions, as its users meet them: `pytest examples/sessions`."""
from pathlib import Path

from botkit.testing import BotTester

CONFIG = Path(__file__).with_name("bot.config.py")


async def test_a_session_left_with_a_full_cart_ends_with_a_reminder():
    async with BotTester(CONFIG, channel="telegram") as bot:
        await bot.send("add tea")
        assert [reply.text for reply in bot.replies] == [
            'Welcome to the shop! Say "add <item>", then "checkout".', "In your cart: tea"]
        reminder = await bot.advance(minutes=31)
        assert [reply.text for reply in reminder] == ["You left 1 item(s) in your cart: tea. They are gone now."]
        await bot.send("add milk")
        assert bot.replies[-2].text.startswith("Welcome"), "a new session starts"


async def test_checkout_ends_the_session_at_once():
    async with BotTester(CONFIG, channel="telegram") as bot:
        await bot.send("add tea")
        await bot.send("checkout")
        assert bot.replies[-1].text == "Ordered 1 item(s). Thank you!"
        assert await bot.advance(minutes=31) == [], "ended once, not again at the expiry"
        await bot.send("hi")
        assert bot.replies[-2].text.startswith("Welcome")
