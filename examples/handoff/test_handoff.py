"""The handoff bot, tested as its users meet it: `pytest examples/handoff` (docs/handoff.md)."""
import pytest


@pytest.mark.bot_tester(channel="web")
async def test_human_hands_the_conversation_over_and_an_agent_gives_it_back(bot_tester):
    await bot_tester.send("hello")
    assert bot_tester.replies[-1].text.startswith("Bot: you said 'hello'")
    await bot_tester.send("human")
    assert bot_tester.replies[-1].text.startswith("Connecting you to a person")
    assert bot_tester.session.human and bot_tester.session.handoff["reason"] == "asked for a human"

    assert await bot_tester.send("is anybody there?") == []  # the bot keeps quiet: a human holds it

    handoffs = bot_tester.bot.handoffs
    [waiting] = await handoffs.conversations()
    assert waiting.session_key == bot_tester.session_key
    await handoffs.claim(waiting.session_key, "ana")
    await handoffs.reply(waiting.session_key, "ana", "Hi, Ana here.")
    await handoffs.hand_back(waiting.session_key, "ana")
    await bot_tester.settle()
    assert [reply.text for reply in bot_tester.replies[-2:]] == [
        "Hi, Ana here.", 'You are back with the bot. Write "human" to talk to a person again.']
    await bot_tester.send("thanks")
    assert bot_tester.state["seen"] == ["text", "text", "handback", "text"]


@pytest.mark.bot_tester(channel="web")
async def test_nobody_answers_for_an_hour_and_the_bot_takes_over_again(bot_tester):
    await bot_tester.send("human")
    await bot_tester.advance(minutes=61)
    replies = await bot_tester.send("hello?")
    assert [reply.text for reply in replies] == ['You are back with the bot. Write "human" to talk to a person again.',
                                                 "Bot: you said 'hello?'. Write \"human\" to talk to a person."]
