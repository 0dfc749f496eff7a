"""The onboarding bot, tested as its users meet it: `pytest examples/flows`.

Its nudge is a scheduled step (`context.step_to_in(reengage_after, ...)`, 60 seconds in bot.config.py):
`advance` moves the test's clock, and the step runs when it falls due, without sleeping.
"""


async def test_the_survey_asks_a_name_then_a_colour(bot_tester):
    assert [reply.text for reply in await bot_tester.send("hi")] == [
        "Hi! I'm the onboarding bot. Two quick questions.",
        "What's your name?",
    ]
    await bot_tester.send("Ada")
    assert bot_tester.replies[-1].text == "Nice to meet you, Ada. What's your favourite colour?"
    assert bot_tester.replies[-1].titles == ["Red", "Green", "Blue"]
    await bot_tester.press("Blue")
    assert bot_tester.replies[-1].text == "Thanks, Ada! blue it is. Say anything to start over."
    assert bot_tester.state == {"name": "Ada", "colour": "blue"}
    assert bot_tester.session.slug == "hello->say_hello"


async def test_a_user_who_does_not_answer_is_nudged_once_after_a_minute(bot_tester):
    await bot_tester.send("hi")
    await bot_tester.send("Ada")
    assert await bot_tester.advance(seconds=59) == []

    nudge = await bot_tester.advance(seconds=1)
    assert [reply.text for reply in nudge] == ["Still there, Ada? What's your favourite colour?"]
    assert bot_tester.session.slug == "survey->get_colour"

    assert await bot_tester.advance(hours=1) == [], "the nudge comes once"
    await bot_tester.send("green")
    assert bot_tester.replies[-1].text == "Thanks, Ada! green it is. Say anything to start over."


async def test_a_user_who_answers_in_time_is_not_nudged(bot_tester):
    await bot_tester.send("hi")
    await bot_tester.send("Ada")
    await bot_tester.advance(seconds=30)
    await bot_tester.send("red")
    assert await bot_tester.advance(minutes=5) == []


async def test_the_nudge_waits_for_each_user_on_their_own_clock(bot_tester):
    ada, bob = bot_tester, bot_tester.user("bob")
    await ada.send("hi")
    await ada.send("Ada")
    await ada.advance(seconds=40)
    await bob.send("hi")
    await bob.send("Bob")

    await ada.advance(seconds=20)  # Ada's minute is up, Bob has 40 seconds to go
    assert ada.replies[-1].text.startswith("Still there, Ada?")
    assert bob.replies[-1].text == "Nice to meet you, Bob. What's your favourite colour?"

    await ada.advance(seconds=40)
    assert bob.replies[-1].text.startswith("Still there, Bob?")
