"""The counting bot, tested as its users meet it: `pytest examples/counter`.

The `bot_tester` fixture (botkit's pytest plugin) runs the bot of the nearest bot.config.py, here the
repository's own, which serves this example.
"""
import pytest


@pytest.mark.parametrize("bot_tester", ["telegram", "messenger", "sms", "web"], indirect=True)
async def test_each_conversation_counts_its_own_messages(bot_tester):
    await bot_tester.send("hi")
    await bot_tester.send("hi again")
    assert [reply.text for reply in bot_tester.replies] == ["Count: 1", "Count: 2"]
    assert bot_tester.state == {"count": 2}

    alice = bot_tester.user("alice")
    await alice.send("hello")
    assert alice.replies[-1].text == "Count: 1"
    assert bot_tester.state == {"count": 2}


@pytest.mark.bot_tester(channel="telegram")
async def test_a_button_press_counts_as_a_message(bot_tester):
    await bot_tester.send("hi")
    await bot_tester.press("SOMETHING")  # a payload, as a tapped button sends it
    assert bot_tester.replies[-1].text == "Count: 2"
    assert bot_tester.session.message_count == 2
