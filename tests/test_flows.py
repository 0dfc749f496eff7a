"""Flows and states: the example onboarding bot over Telegram, and the step_to family on the memory driver."""
from __future__ import annotations

import logging

import pytest

from botkit import Bot
from botkit.core.errors import BotkitError
from botkit.core.events import Event
from botkit.core.sending import Sender
from botkit.core.session import Session
from botkit.flows.router import Flows, UnknownState
from examples.flows.bot import flows as onboarding
from tests.support import Served, make_config, test_bot
from tests.support import eventually
from tests.test_telegram import HEADERS, SECRET, TOKEN, update

CHAT = 16423
KEY = f"telegram:{CHAT}"


class Chat:
    """A Telegram user talking to a served bot: ``say`` returns what the bot sent back."""

    def __init__(self, served: Served, fake_api) -> None:
        self.served = served
        self.fake_api = fake_api
        self.update_id = 0

    async def say(self, text: str) -> list[str]:
        before = len(self.fake_api.calls)
        self.update_id += 1
        response = await self.served.post("/webhooks/telegram", json=update(self.update_id, CHAT, text), headers=HEADERS)
        assert response.status == 200
        return [call.json["text"] for call in self.fake_api.calls[before:]]

    async def slugs(self) -> tuple[str | None, str | None]:
        session = await self.served.bot.load_session(KEY)
        return session.slug, session.previous_slug


async def _slugs_are(chat: Chat, expected: tuple[str, str]) -> bool:
    return await chat.slugs() == expected


def onboarding_bot(fake_api, tmp_path, reengage_after: float = 3600) -> Bot:
    config = make_config(
        tmp_path,
        app=onboarding,
        initial_state={},
        reengage_after=reengage_after,
        session={"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "sessions")}}},
        channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": fake_api.url}},
    )
    return Bot(config)


async def test_the_example_walks_through_its_states_keeping_the_previous_slug(fake_api, tmp_path):
    async with Served(onboarding_bot(fake_api, tmp_path)) as served:
        chat = Chat(served, fake_api)
        assert await chat.say("hi") == ["Hi! I'm the onboarding bot. Two quick questions.", "What's your name?"]
        assert await chat.slugs() == ("survey->get_name", "survey->ask_name")
        assert await chat.say("Ada") == ["Nice to meet you, Ada. What's your favourite colour?"]
        assert await chat.slugs() == ("survey->get_colour", "survey->ask_colour")
        assert await chat.say("blue") == ["Thanks, Ada! blue it is. Say anything to start over."]
        assert await chat.slugs() == ("hello->say_hello", "goodbye->say_goodbye")
        assert await chat.say("again") == ["Hi! I'm the onboarding bot. Two quick questions.", "What's your name?"]
        assert await chat.slugs() == ("survey->get_name", "survey->ask_name")


async def test_a_renamed_state_lands_in_the_catch_all_which_steps_back_to_where_the_user_was(fake_api, tmp_path):
    bot = onboarding_bot(fake_api, tmp_path)
    async with Served(bot) as served:
        chat = Chat(served, fake_api)
        await chat.say("hi")
        await chat.say("Ada")
        # The session was saved by an older deploy in which get_colour was called get_color.
        await rewrite(bot, KEY, slug="survey->get_color")

        assert await chat.say("blue") == [
            "Sorry, I lost track of where we were. Let's go back a step.",
            "Nice to meet you, Ada. What's your favourite colour?",
        ]
        assert await chat.slugs() == ("survey->get_colour", "survey->ask_colour")
        assert await chat.say("blue") == ["Thanks, Ada! blue it is. Say anything to start over."]


async def test_the_example_nudges_once_when_no_answer_comes(fake_api, tmp_path):
    async with Served(onboarding_bot(fake_api, tmp_path, reengage_after=1)) as served:
        chat = Chat(served, fake_api)
        await chat.say("hi")
        await chat.say("Ada")
        calls = await fake_api.wait_for(4, "sendMessage", timeout=5)
        assert calls[3].json == {"chat_id": CHAT, "text": "Still there, Ada? What's your favourite colour?"}
        await eventually(lambda: _slugs_are(chat, ("survey->get_colour", "reengage->nudge")), timeout=2)
        assert await chat.say("green") == ["Thanks, Ada! green it is. Say anything to start over."]


async def test_the_example_does_not_nudge_a_user_who_answered(fake_api, tmp_path, caplog):
    caplog.set_level(logging.INFO, "botkit")
    bot = onboarding_bot(fake_api, tmp_path, reengage_after=0.5)
    async with Served(bot) as served:
        chat = Chat(served, fake_api)
        await chat.say("hi")
        await chat.say("Ada")
        await chat.say("green")
        await eventually(lambda: "dropped" in caplog.text, timeout=5)
        assert await bot.scheduler.pending() == []
    assert [call.json["text"] for call in fake_api.calls][-1] == "Thanks, Ada! green it is. Say anything to start over."
    assert "moved on from survey->get_colour to hello->say_hello" in caplog.text


# -- the step_to family, on the memory driver ---------------------------------------------------------


class Collect(Sender):
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, text, **options):
        self.sent.append(text)


async def say(bot: Bot, text: str = "hi", key: str = "test:1") -> list[str]:
    sender = Collect()
    await bot.dispatch([Event("test", "text", key, text=text, channel="test", meta={"sender": sender})])
    return sender.sent


def flows_bot(flows, tmp_path) -> Bot:
    return test_bot(make_config(tmp_path, initial_state={}), handler=flows, channels={})


async def slugs(bot: Bot, key: str = "test:1") -> tuple[str | None, str | None]:
    session = await bot.load_session(key)
    return session.slug, session.previous_slug


async def rewrite(bot: Bot, key: str, **slugs: str) -> None:
    """Save the session with other slugs, as an older deploy would have."""
    session = Session.from_record(await bot.store.load(key))
    for name, slug in slugs.items():
        setattr(session, name, slug)
    session.version += 1
    await bot.store.save(session.to_record())


async def test_decorated_functions_and_classes_declare_states_in_order(tmp_path):
    flows = Flows()

    @flows.state("hello")
    async def say_hello(context):
        await context.send_text("hello")
        await context.step_to("quiz")  # a flow alone: its first state

    @flows.flow("quiz")
    class Quiz:
        async def ask(self, context):
            await context.send_text("2+2?")
            context.update_session_to(state="check")  # a state alone: the current flow

        async def check(self, context):
            await context.send_text("right" if context.event.text == "4" else "wrong")
            await context.step_to("hello->say_hello")  # a whole slug

        def helper(self):  # not a state: not async
            return None

    assert flows.slugs == ["hello->say_hello", "quiz->ask", "quiz->check"]
    assert flows.entry == "hello->say_hello"
    bot = flows_bot(flows, tmp_path)
    assert await say(bot) == ["hello", "2+2?"]
    assert await slugs(bot) == ("quiz->check", "quiz->ask")
    assert await say(bot, "4") == ["right", "hello", "2+2?"]
    assert await slugs(bot) == ("quiz->check", "quiz->ask")


async def test_update_session_to_records_without_running(tmp_path):
    flows = Flows(entry="menu->show")
    ran = []

    @flows.state("menu", "show")
    async def show(context):
        ran.append("show")
        context.update_session_to("menu", "pick")

    @flows.state("menu", "pick")
    async def pick(context):
        ran.append("pick")

    @flows.state("intro")
    async def hi(context):
        ran.append("intro")

    bot = flows_bot(flows, tmp_path)
    await say(bot)
    assert ran == ["show"] and await slugs(bot) == ("menu->pick", "menu->show")
    await say(bot)
    assert ran == ["show", "pick"] and await slugs(bot) == ("menu->pick", "menu->show")


async def test_set_back_to_returns_from_a_shared_flow_once(tmp_path):
    flows = Flows()

    @flows.flow("shop")
    class Shop:
        async def checkout(self, context):
            context.set_back_to(state="thanks")
            await context.step_to("email")

        async def thanks(self, context):
            await context.send_text(f"Thanks! Receipt goes to {context.state['email']}.")
            context.update_session_to("shop", "done")

        async def done(self, context):
            await context.step_back()

    @flows.flow("email")
    class Email:
        async def ask_email(self, context):
            await context.send_text("Your email?")
            context.update_session_to(state="get_email")

        async def get_email(self, context):
            context.set_state({"email": context.event.text})
            await context.step_back()

    bot = flows_bot(flows, tmp_path)
    assert await say(bot, "buy") == ["Your email?"]
    stored = await bot.load_session("test:1")
    assert stored.state == {} and stored.parts["flow"]["back_to"] == "shop->thanks", "the back-to point is not the user's state"
    assert await say(bot, "ada@example.com") == ["Thanks! Receipt goes to ada@example.com."]
    assert await slugs(bot) == ("shop->done", "shop->thanks")
    assert (await bot.load_session("test:1")).state == {"email": "ada@example.com"}
    # The back-to point was used up: the next step_back goes to the previous slug.
    assert await say(bot, "again") == ["Thanks! Receipt goes to ada@example.com."]
    assert await slugs(bot) == ("shop->done", "shop->thanks")


async def test_step_back_with_nowhere_to_go_goes_to_the_entry(tmp_path):
    flows = Flows()

    @flows.state("start")
    async def welcome(context):
        await context.send_text("welcome")
        context.update_session_to("start", "menu")

    @flows.state("start")
    async def menu(context):
        await context.step_back()

    bot = flows_bot(flows, tmp_path)
    await say(bot)
    await rewrite(bot, "test:1", previous_slug="start->old_intro")  # the previous state was renamed by a deploy
    assert await say(bot, "back") == ["welcome"]
    assert await slugs(bot) == ("start->menu", "start->welcome")


async def test_a_slug_naming_no_state_without_a_catch_all_starts_over_at_the_entry(tmp_path, caplog):
    flows = Flows()

    @flows.state("start")
    async def welcome(context):
        await context.send_text("welcome")
        context.update_session_to("start", "wait")

    @flows.state("start")
    async def wait(context):
        await context.send_text("waiting")

    bot = flows_bot(flows, tmp_path)
    await say(bot)
    await rewrite(bot, "test:1", slug="start->removed_in_v2")
    assert await say(bot) == ["welcome"]
    assert await slugs(bot) == ("start->wait", "start->welcome")
    assert "slug 'start->removed_in_v2' names no state and there is no catch-all" in caplog.text


async def test_a_step_to_an_undeclared_state_fails_clearly_and_saves_nothing(tmp_path, caplog):
    flows = Flows()
    errors = []

    @flows.state("start")
    async def welcome(context):
        for target in [("start", "typo"), ("nope",), (None, None)]:
            try:
                await context.step_to(*target)
            except (UnknownState, TypeError) as exc:
                errors.append(str(exc))
        context.set_state({"touched": True})
        await context.step_to("start", "typo")

    bot = flows_bot(flows, tmp_path)
    await say(bot)
    assert errors == [
        "no state start->typo; declared: start->welcome",
        "no flow 'nope'; declared: start",
        "name where to go: a flow, a state (in the current flow), both, or a 'flow->state' slug",
    ]
    assert await bot.store.load("test:1") is None
    assert "UnknownState: no state start->typo" in caplog.text


def test_declaration_mistakes_are_refused():
    flows = Flows()

    @flows.state("a", "b")
    async def b(context):
        pass

    with pytest.raises(ValueError, match="a->b is declared twice"):
        flows.add("a", "b", b)
    with pytest.raises(ValueError, match="without '->'"):
        flows.add("a->x", "b", b)
    with pytest.raises(ValueError, match="has no `async def <state>"):
        flows.flow("empty")(type("Empty", (), {}))
    with pytest.raises(UnknownState, match="entry 'x->y' names no declared state"):
        _ = Flows(entry="x->y").entry


async def test_step_to_needs_the_flows_router(tmp_path):
    caught = []

    async def plain(context):
        with pytest.raises(BotkitError, match="needs the Flows router as the app"):
            await context.step_to("a", "b")
        context.update_session_to("a", "b")  # recording alone works without a router
        caught.append(True)

    bot = test_bot(make_config(tmp_path), handler=plain, channels={})
    await say(bot)
    assert caught == [True] and await slugs(bot) == ("a->b", None)


async def test_code_outside_a_handler_steps_a_session_with_bot_run(tmp_path):
    flows = Flows()
    sent = Collect()

    @flows.state("chat")
    async def idle(context):
        pass

    @flows.state("promo")
    async def offer(context):
        await context.send_text(f"A deal for you ({context.event.type})")
        await context.step_to(context.session.previous_slug)  # a whole slug: back to where it was

    bot = flows_bot(flows, tmp_path)
    async with bot:
        await say(bot)
        bot.channels["test"].pushes["test:1"] = sent
        await bot.run("test:1", lambda context: context.step_to("promo"))
    assert sent.sent == ["A deal for you (push)"]
    assert await slugs(bot) == ("chat->idle", "promo->offer")
