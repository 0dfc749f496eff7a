"""Routes and middleware: `from botkit import Router`, driven as users drive a bot (botkit.testing), on
Telegram, LINE and the web chat; middleware from bot.config.py and router.use that times, enriches and stops."""
from __future__ import annotations

import re
from typing import Any

import pytest

from botkit import Flows, Router
from botkit.core.errors import ConfigError
from botkit.testing import BotTester
from tests.support import make_config

CHANNELS = ["telegram", "line", "web"]


def routed_bot() -> Router:
    router = Router()

    @router.text("hi")
    async def hello(context: Any) -> None:
        await context.send_text("hello!")

    @router.text(re.compile(r"order (?P<number>\d+) of (\w+)"))
    async def order(context: Any) -> None:
        await context.send_text(f"order {context.match['number']}: {context.match.group(2)}")

    @router.payload("GET_STARTED")
    async def started(context: Any) -> None:
        await context.send_text("welcome aboard")

    @router.payload(re.compile(r"SIZE_(\w+)"))
    async def size(context: Any) -> None:
        await context.send_text(f"size {context.match.group(1).lower()}")

    @router.command("start")
    async def start(context: Any) -> None:
        await context.send_text(f"started with {context.match['args']}")

    @router.event("follow")
    async def follow(context: Any) -> None:
        await context.send_text("thanks for following")

    @router.text(re.compile("hi"))  # declared after the exact "hi": never reached by "hi" itself
    async def also_hi(context: Any) -> None:
        await context.send_text("a text with hi in it")

    @router.default
    async def fallback(context: Any) -> None:
        await context.send_text(f"sorry, {context.event.text or context.event.payload}?")

    return router


def texts(replies: list[Any]) -> list[str | None]:
    return [reply.text for reply in replies]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_router_bot_routes_text_regex_payload_command_event_and_default(channel: str) -> None:
    router = routed_bot()
    async with BotTester(make_config(app=router), channel=channel) as bot:
        assert texts(await bot.send("  HI ")) == ["hello!"]
        assert texts(await bot.send("this one says hi")) == ["a text with hi in it"]
        assert texts(await bot.send("order 42 of tea")) == ["order 42: tea"]
        assert texts(await bot.press("GET_STARTED")) == ["welcome aboard"]
        assert texts(await bot.press("SIZE_XL")) == ["size xl"]
        command = "/start@test_bot deep link" if channel == "telegram" else "start deep link"
        assert texts(await bot.send(command)) == ["started with deep link"]
        if channel == "telegram":
            assert texts(await bot.send("start deep link")) == ["sorry, start deep link?"], "Telegram's commands have a /"
        assert texts(await bot.send("/start")) == ["started with None"]
        assert texts(await bot.send("what?")) == ["sorry, what??"]
        await bot.bot.run(bot.session_key, bot.bot.handler, event_type="follow")
        await bot.settle()
        assert bot.outbox[-1].text == "thanks for following"


async def test_a_flows_router_is_a_routes_target_and_scheduled_steps_reach_its_states() -> None:
    flows = Flows()

    @flows.state("survey")
    async def ask(context: Any) -> None:
        await context.send_text("your name?")
        context.update_session_to(state="answer")

    @flows.state("survey")
    async def answer(context: Any) -> None:
        await context.send_text(f"thanks, {context.event.text}")
        await context.step_to_in(60, "survey", "nudge")

    @flows.state("survey")
    async def nudge(context: Any) -> None:
        await context.send_text("still there?")

    router = Router()

    @router.command("help")
    async def help_(context: Any) -> None:
        await context.send_text("ask me anything")

    router.default(flows)
    async with BotTester(make_config(app=router), channel="telegram") as bot:
        assert texts(await bot.send("hello")) == ["your name?"]
        assert texts(await bot.send("/help")) == ["ask me anything"]
        assert texts(await bot.send("Ada")) == ["thanks, Ada"]
        assert texts(await bot.advance(seconds=60)) == ["still there?"]
        assert bot.session.slug == "survey->nudge"


async def test_a_router_inside_a_flow_state() -> None:
    flows = Flows()
    menu = Router()

    @menu.payload("PIZZA")
    async def pizza(context: Any) -> None:
        await context.send_text("pizza it is")
        await context.step_to("order", "done")

    @menu.default
    async def again(context: Any) -> None:
        await context.send_buttons("pick one", [("Pizza", "PIZZA")])

    flows.add("order", "menu", menu)

    @flows.state("order")
    async def done(context: Any) -> None:
        await context.send_text("ordered")

    async with BotTester(make_config(app=flows), channel="telegram") as bot:
        assert texts(await bot.send("food")) == ["pick one"]
        assert texts(await bot.press("Pizza")) == ["pizza it is", "ordered"]


# -- middleware -------------------------------------------------------------------------------------

seen: list[tuple[str, str, float]] = []


async def timing(context: Any, call_next: Any) -> Any:
    """Times every event (a config-level middleware, named "module:function")."""
    started = context.clock()
    try:
        return await call_next(context)
    finally:
        seen.append((context.event.type, context.event.text or "", context.clock() - started))


@pytest.mark.parametrize("channel", CHANNELS)
async def test_middleware_times_every_event_enriches_the_context_and_stops_an_event(channel: str) -> None:
    seen.clear()
    router = Router()
    stopped: list[str] = []

    async def blocklist(context: Any, call_next: Any) -> Any:
        if context.event.text == "spam":
            stopped.append(context.event.text)
            return None  # call_next never called: the handler does not run
        return await call_next(context)

    async def locale(context: Any, call_next: Any) -> Any:
        context.locale = "fr"
        return await call_next(context)

    router.use(blocklist)
    router.use(locale)

    @router.default
    async def echo(context: Any) -> None:
        await context.send_text(f"[{context.locale}] {context.event.text}")

    config = make_config(app=router, middleware=["tests.test_routes:timing"])
    async with BotTester(config, channel=channel) as bot:
        assert texts(await bot.send("bonjour")) == ["[fr] bonjour"]
        assert await bot.send("spam") == []
        assert texts(await bot.send("encore")) == ["[fr] encore"]
    assert stopped == ["spam"]
    assert [text for kind, text, _ in seen if kind == "text"] == ["bonjour", "spam", "encore"], "it timed every message"
    assert all(elapsed >= 0 for _, _, elapsed in seen)


async def test_a_stopped_event_is_still_in_the_transcript() -> None:
    async def stop(context: Any, call_next: Any) -> None:
        return None

    async def never(context: Any) -> None:
        raise AssertionError("stopped by the middleware")

    async with BotTester(make_config(app=never, middleware=[stop]), channel="telegram") as bot:
        assert await bot.send("hello?") == []
        history = await bot.session.load_history()
        assert [(entry["dir"], entry.get("text")) for entry in history] == [("in", "hello?")]


def test_the_config_refuses_a_middleware_that_is_not_one() -> None:
    with pytest.raises(ConfigError, match="middleware"):
        make_config(middleware="bot:timing")
    with pytest.raises(ConfigError, match="middleware"):
        make_config(middleware=["timing"])


def test_routes_refuse_what_cannot_be_a_route() -> None:
    router = Router()
    with pytest.raises(ValueError):
        router.command("two words")
    with pytest.raises(TypeError):
        router.text(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        router.default("not a handler")  # type: ignore[type-var]
