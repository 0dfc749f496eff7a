"""Tests of this bot: run `pytest` in this folder.

botkit's pytest plugin gives the `bot_tester` fixture: the bot of ./bot.config.py on a test channel
(Telegram here), with a fake of the platform and a clock that only moves with `advance`. See botkit's
docs/testing.md for buttons, scheduled steps, several users and every channel.
"""


async def test_it_counts_each_users_messages(bot_tester):
    await bot_tester.send("hi")
    await bot_tester.send("hi again")
    assert bot_tester.replies[-1].text == "Count: 2"
    assert bot_tester.state["count"] == 2

    alice = bot_tester.user("alice")
    await alice.send("hello")
    assert alice.replies[-1].text == "Count: 1"
