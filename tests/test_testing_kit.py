"""botkit.testing as a bot author uses it: BotTester on every channel (the real adapters against in-process
fakes of the platforms), the fake clock, buttons, several users, and the bot_tester fixture of the pytest
plugin, also in a fresh `botkit init` folder without pytest-asyncio."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from botkit.flows.router import Flows
from botkit.testing import CHANNELS, BotFailed, BotTester, RequestRefused, TesterError
from tests.conftest import PLUGIN
from tests.stores import REDIS_URL, drop_redis_prefix, redis_keys, unique, unreachable
from tests.support import make_config

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "examples/flows/bot.config.py"
SESSION_PREFIX = {"telegram": "telegram:", "messenger": "messenger:", "line": "line:U", "sms": "sms:+",
                  "whatsapp": "whatsapp:+", "whatsapp.cloud": "whatsapp:+", "teams": "teams:a:", "web": "web:"}
PUSHED_TO = {"telegram": "/sendMessage", "messenger": "/me/messages", "line": "/v2/bot/message/push",
             "sms": "/Messages.json", "whatsapp": "/Messages.json", "whatsapp.cloud": "/106540352242922/messages",
             "teams": "/activities"}
"""Where each channel's nudge (a message the bot starts: no reply token, no activity to answer) goes."""


# -- one test body, eight channels --------------------------------------------------------------------

@pytest.mark.bot_tester(config=str(FLOWS))
@pytest.mark.parametrize("bot_tester", CHANNELS, indirect=True)
async def test_the_onboarding_conversation_reads_the_same_on_every_channel(bot_tester, request):
    channel = request.node.callspec.params["bot_tester"]
    ada, bob = bot_tester, bot_tester.user("bob")
    assert [reply.text for reply in await ada.send("hi")] == [
        "Hi! I'm the onboarding bot. Two quick questions.", "What's your name?"]
    await ada.send("Ada")
    await bob.send("hi")
    assert await ada.advance(seconds=59) == []

    nudge = await ada.advance(seconds=1)  # reengage_after: 60 s, a scheduled step
    assert [(reply.kind, reply.text) for reply in nudge] == [("text", "Still there, Ada? What's your favourite colour?")]
    if channel != "web":  # the web chat's page gets it through its event stream
        assert ada.calls[-1].path.endswith(PUSHED_TO[channel])
    assert bob.replies[-1].text == "What's your name?", "Bob was asked his name, not nudged"

    await ada.send("blue")
    assert ada.replies[-1].text == "Thanks, Ada! blue it is. Say anything to start over."
    assert (ada.state, bob.state) == ({"name": "Ada", "colour": "blue"}, {})
    assert (ada.session.slug, bob.session.slug) == ("hello->say_hello", "survey->get_name")
    assert ada.session_key.startswith(SESSION_PREFIX[channel]) and ada.session_key != bob.session_key
    assert {(reply.user, reply.channel) for reply in ada.outbox} == {("user", ada.channel), ("bob", ada.channel)}


# -- buttons ------------------------------------------------------------------------------------------

async def shop(context):
    choice = context.event.payload or context.event.text
    if choice in ("RED", "BLUE"):
        context.set_state({"colour": choice})
        await context.send_text(f"{choice.title()} it is")
    elif choice in ("Small", "Large"):
        context.set_state({"size": choice})
        await context.send_text(f"Size {choice}")
    elif choice == "size?":
        await context.send_quick_replies("Which size?", ["Small", "Large"])
    else:
        await context.send_buttons("Pick a colour", [("Red", "RED"), ("Blue", "BLUE")])


WITH_BUTTONS = [channel for channel in CHANNELS if channel not in ("sms", "whatsapp")]


@pytest.mark.parametrize("channel", WITH_BUTTONS)
async def test_buttons_and_quick_replies_are_read_back_and_pressed(tmp_path, channel):
    async with BotTester(make_config(tmp_path, app=shop, initial_state={}), channel=channel) as bot:
        [menu] = await bot.send("hi")
        assert (menu.kind, menu.text, menu.titles) == ("buttons", "Pick a colour", ["Red", "Blue"])
        assert [button.payload for button in menu.buttons] == ["RED", "BLUE"]
        assert [reply.text for reply in await bot.press("BLUE")] == ["Blue it is"]

        [sizes] = await bot.send("size?")
        assert sizes.titles == ["Small", "Large"]
        assert sizes.kind == ("buttons" if channel == "whatsapp.cloud" else "quick_replies")  # WhatsApp has no other
        assert [reply.text for reply in await bot.press("Large")] == ["Size Large"]  # found by its title
        assert bot.state == {"colour": "BLUE", "size": "Large"}


async def test_a_link_button_sends_nothing_and_sms_has_no_buttons(tmp_path):
    async def links(context):
        await context.send_buttons("Our shop", [{"title": "Open", "url": "https://shop.example/"}])

    async with BotTester(make_config(tmp_path, app=links), channel="telegram") as bot:
        [shop_link] = await bot.send("hi")
        assert shop_link.buttons[0].url == "https://shop.example/"
        with pytest.raises(TesterError, match=re.escape("opens https://shop.example/")):
            await bot.press("Open")
    async with BotTester(make_config(tmp_path, app=shop), channel="sms") as bot:
        with pytest.raises(TesterError, match="no buttons"):
            await bot.press("RED")


async def test_a_whatsapp_template_button_through_twilio_reaches_the_bot_as_a_payload(tmp_path):
    async def templates(context):
        if context.event.is_payload:
            await context.send_text(f"got {context.event.payload}")
        else:
            await context.send_native("template", "HX0123456789abcdef0123456789abcdef")

    async with BotTester(make_config(tmp_path, app=templates), channel="whatsapp") as bot:
        [template] = await bot.send("hi")
        assert (template.kind, template.text) == ("template", "HX0123456789abcdef0123456789abcdef")
        assert [reply.text for reply in await bot.press("CONFIRM")] == ["got CONFIRM"]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_an_image_is_read_back_with_its_url(tmp_path, channel):
    async def picture(context):
        await context.send_image("https://example.com/cat.png")

    async with BotTester(make_config(tmp_path, app=picture), channel=channel) as bot:
        [image] = await bot.send("a cat please")
        assert (image.kind, image.url) == ("image", "https://example.com/cat.png")


PIZZA = {"title": "Pizza", "subtitle": "Margherita", "image": "https://example.com/pizza.png"}
CARDS = {  # what send_card will send on each channel that has cards, in the platform's own shape
    "teams": lambda context: context.send_native("attachment", {
        "type": "AdaptiveCard", "version": "1.5",
        "body": [{"type": "TextBlock", "text": PIZZA["title"]}, {"type": "TextBlock", "text": PIZZA["subtitle"]}],
        "actions": [{"type": "Action.Submit", "title": "Order", "data": {"payload": "ORDER"}}]}),
    "messenger": lambda context: context.send_native("message", {"attachment": {"type": "template", "payload": {
        "template_type": "generic", "elements": [{"title": PIZZA["title"], "subtitle": PIZZA["subtitle"],
                                                  "image_url": PIZZA["image"],
                                                  "buttons": [{"type": "postback", "title": "Order", "payload": "ORDER"}]}]}}}),
    "line": lambda context: context.send_native("message", {"type": "template", "altText": "Pizza", "template": {
        "type": "carousel", "columns": [{"title": PIZZA["title"], "text": PIZZA["subtitle"], "thumbnailImageUrl": PIZZA["image"],
                                         "actions": [{"type": "postback", "label": "Order", "data": "ORDER"}]}]}}),
}


@pytest.mark.parametrize("channel", sorted(CARDS))
async def test_a_card_is_read_back_and_its_button_pressed(tmp_path, channel):
    async def menu(context):
        if context.event.payload == "ORDER":
            await context.send_text("Ordered")
        else:
            await CARDS[channel](context)

    async with BotTester(make_config(tmp_path, app=menu), channel=channel) as bot:
        [card] = await bot.send("menu")
        assert (card.kind, card.cards[0].title, card.cards[0].subtitle, card.titles) == (
            "card", "Pizza", "Margherita", ["Order"])
        assert [reply.text for reply in await bot.press("Order")] == ["Ordered"]


# -- the clock ----------------------------------------------------------------------------------------

async def counter(context):
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")


async def test_a_session_expires_when_the_clock_passes_its_expiry(tmp_path):
    config = make_config(tmp_path, app=counter, session={"expires_in": 15})
    async with BotTester(config, channel="telegram", start=1_700_000_000) as bot:
        await bot.send("hi")
        await bot.advance(minutes=14)
        await bot.send("hi")
        assert bot.state == {"count": 2}
        await bot.advance(timedelta(minutes=15))
        assert bot.session is None and bot.state == {"count": 0}, "expired: the next message starts afresh"
        await bot.send("hi")
        assert bot.replies[-1].text == "Count: 1"
        assert bot.now == 1_700_000_000 + 29 * 60


async def test_scheduled_steps_run_in_order_each_at_its_due_time(tmp_path):
    flows = Flows()

    @flows.state("start")
    async def begin(context):
        context.set_state({"started": context.clock()})
        await context.send_text("Reminders every 10 minutes")
        await context.step_to_in(timedelta(minutes=10), "remind")

    @flows.state("remind")
    async def remind(context):
        minutes = round((context.clock() - context.state["started"]) / 60)
        await context.send_text(f"{minutes} minutes")
        if minutes < 30:
            await context.step_to_in(600, "remind")

    async with BotTester(make_config(tmp_path, app=flows, initial_state={}), channel="line") as bot:
        await bot.send("go")
        assert [reply.text for reply in await bot.advance(minutes=35)] == ["10 minutes", "20 minutes", "30 minutes"]
        assert await bot.advance(days=1) == []


# -- several users, failures, refusals ------------------------------------------------------------------

async def test_users_have_their_own_conversations_and_the_bot_can_write_to_any(tmp_path):
    async def relay(context):
        if context.event.text.startswith("tell "):
            _, key, text = context.event.text.split(" ", 2)
            await context.bot.send_text(key, text)
        else:
            await counter(context)

    async with BotTester(make_config(tmp_path, app=relay), channel="messenger") as bot:
        alice, bob = bot.user("alice"), bot.user("bob")
        assert bot.user("alice") is alice
        await alice.send("hi")
        await bob.send(f"tell {alice.session_key} Bob says hello")
        assert [reply.text for reply in alice.replies] == ["Count: 1", "Bob says hello"]
        assert bob.replies == [] and bot.replies == []
        assert set(bot.users) == {"user", "alice", "bob"}


async def test_a_handler_that_raises_fails_the_test_and_leaves_the_session_as_it_was(tmp_path):
    async def fragile(context):
        await counter(context)
        if context.event.text == "boom":
            raise RuntimeError("the handler broke")

    async with BotTester(make_config(tmp_path, app=fragile), channel="telegram") as bot:
        await bot.send("hi")
        with pytest.raises(BotFailed, match="handler raised") as failed:
            await bot.send("boom")
        assert isinstance(failed.value.__cause__, RuntimeError)
        assert bot.state == {"count": 1}
    async with BotTester(make_config(tmp_path, app=fragile), channel="telegram", raise_errors=False) as bot:
        await bot.send("boom")
        assert bot.state == {"count": 0} and "handler raised" in bot.errors[0]


async def test_a_send_the_platform_would_refuse_fails_as_it_would_in_production(tmp_path):
    async def chatty(context):
        await context.send_text("x" * 5000)

    async with BotTester(make_config(tmp_path, app=chatty), channel="telegram") as bot:
        with pytest.raises(BotFailed) as failed:
            await bot.send("hi")
        refusal = failed.value.__cause__
        assert (refusal.status, refusal.body["description"]) == (400, "Bad Request: message is too long")


async def test_a_request_the_channel_refuses_raises_with_its_status(tmp_path):
    config = make_config(tmp_path, app=counter, channels={"web": {"rate_limit": 2}})
    async with BotTester(config, channel="web") as bot:
        await bot.send("1")
        await bot.send("2")
        with pytest.raises(RequestRefused) as refused:
            await bot.send("3")
        assert refused.value.status == 429
        await bot.advance(minutes=1)
        await bot.send("4")
        assert bot.replies[-1].text == "Count: 3"


async def test_line_replies_with_one_call_and_its_reply_token_once(tmp_path):
    async def two(context):
        await context.send_text("one")
        await context.send_text("two")

    async with BotTester(make_config(tmp_path, app=two), channel="line") as bot:
        assert [reply.text for reply in await bot.send("hi")] == ["one", "two"]
        [reply_call] = bot.calls
        assert reply_call.path == "/v2/bot/message/reply" and len(reply_call.json["messages"]) == 2


# -- drivers, and several bots in one process -----------------------------------------------------------

async def test_the_file_driver_runs_in_a_folder_of_its_own(tmp_path):
    config = make_config(tmp_path, app=counter, session={"driver": "file"})
    async with BotTester(config, channel="sms", driver="config") as bot:
        await bot.send("hi")
        await bot.send("hi")
        assert bot.state == {"count": 2}
    assert not (tmp_path / ".session").exists(), "the bot's own session folder is left alone"


async def test_the_redis_driver_leaves_no_session_behind(tmp_path):
    prefix = unique("botkit-test-kit:")
    config = make_config(tmp_path, app=counter, session={"stores": {"redis": {"url": REDIS_URL, "prefix": prefix}}})
    bot = BotTester(config, channel="telegram", driver="redis")
    try:
        await bot.start()
    except Exception as exc:
        unreachable(f"Redis at {REDIS_URL}", exc)
    try:
        await bot.send("hi")
        await bot.user("alice").send("hi")
        await bot.send("hi")
        assert bot.state == {"count": 2}
        keys = [f"{prefix}session:{bot.session_key}", f"{prefix}session:{bot.user('alice').session_key}"]
        assert set(keys) <= {key.decode() for key in await redis_keys(REDIS_URL, prefix)}, "kept in Redis meanwhile"
    finally:
        await bot.stop()
    try:
        assert not set(keys) & {key.decode() for key in await redis_keys(REDIS_URL, prefix)}, "deleted after the test"
    finally:
        await drop_redis_prefix(REDIS_URL, prefix)


async def test_two_bots_whose_modules_share_a_name_each_run_their_own(tmp_path):
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "bot.py").write_text(f"async def app(context):\n    await context.send_text({name!r})\n")
        (tmp_path / name / "bot.config.py").write_text('app = "bot:app"\n')
    for name in ("first", "second", "first"):
        async with BotTester(tmp_path / name, channel="telegram") as bot:
            assert [reply.text for reply in await bot.send("who are you?")] == [name]


# -- the pytest plugin, as a user runs it ---------------------------------------------------------------

def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in ``folder`` without pytest-asyncio, on this checkout's botkit, with its plugin as an
    installed botkit registers it."""
    plugin = [] if any(entry.value == PLUGIN for entry in entry_points(group="pytest11")) else ["-p", PLUGIN]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-p", "no:asyncio", "-p", "no:cacheprovider", *plugin, "-q", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_the_test_botkit_init_writes_passes_with_the_plugin_alone(tmp_path):
    made = subprocess.run([sys.executable, "-m", "botkit", "init", "mybot"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "mybot"
    assert (folder / "test_bot.py").is_file()
    for extra in ((), ("--bot-channel", "web")):
        result = run_pytest(folder, *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed" in result.stdout


def test_the_examples_tests_pass_with_the_plugin_alone():
    result = run_pytest(ROOT, "examples")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_a_test_of_a_bot_without_a_config_says_where_it_looked(tmp_path):
    from botkit.testing.pytest_plugin import _config_near

    (tmp_path / "tests").mkdir()
    with pytest.raises(pytest.UsageError, match=re.escape(f"no bot.config.py in {tmp_path / 'tests'} or above it")):
        _config_near(tmp_path / "tests", tmp_path)
    (tmp_path / "bot.config.py").write_text('app = "bot:app"\n')
    assert _config_near(tmp_path / "tests", tmp_path) == tmp_path / "bot.config.py", "the nearest one above"
