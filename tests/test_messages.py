"""One rich-message API on every channel (docs/messages.md): every kind from one handler, read back from
each fake platform as the platform would show it; presses coming back as the same payload event; the
numbered-list fallback of SMS and WhatsApp through Twilio; long payloads on Telegram; message objects."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from botkit import Button, Buttons, Card, Cards, File, Image, Location, QuickReplies, Text, Typing
from botkit.core.messages import as_buttons
from botkit.shell.console import Console
from botkit.testing import CHANNELS, BotTester
from tests.support import make_config, test_bot

ROOT = Path(__file__).resolve().parent.parent
PIZZA = Card("Pizza", "Margherita", "https://example.com/pizza.png", [("Order pizza", "ORDER_PIZZA")])
PASTA = {"title": "Pasta", "subtitle": "Carbonara", "image": "https://example.com/pasta.png",
         "buttons": [{"title": "Order pasta", "payload": "ORDER_PASTA"}]}


async def every_kind(context):
    if context.event.type == "payload":
        await context.send_text(f"got {context.event.payload}")
        return
    if context.event.text != "hi":
        await context.send_text(f"said {context.event.text}")
        return
    await context.send_typing()
    await context.send_text("Hello")
    await context.send_buttons("Size?", [("Small", "SIZE_S"), {"title": "Medium", "payload": "SIZE_M"},
                                         {"title": "Shop", "url": "https://shop.example/"}])
    await context.send_quick_replies("Colour?", ["Red", ("Green", "GREEN")])
    await context.send_image("https://example.com/cat.png", caption="A cat")
    await context.send_file("https://example.com/menu.pdf", name="menu.pdf")
    await context.send_card("Soup", "Tomato", "https://example.com/soup.png", [("Order soup", "ORDER_SOUP")])
    await context.send_cards([PIZZA, PASTA])
    await context.send_location(52.5163, 13.3777, "Shop", "Pariser Platz 1, Berlin")


EXPECTED = {  # the kinds each platform shows, in order (docs/messages.md has the table)
    "telegram": ["text", "buttons", "quick_replies", "image", "file", "image", "image", "image", "location"],
    "messenger": ["text", "buttons", "quick_replies", "text", "image", "file", "card", "cards", "text"],
    "line": ["text", "buttons", "quick_replies", "image", "text", "text", "card", "cards", "location"],
    "sms": ["text", "text", "text", "image", "text", "text", "text", "text"],
    "whatsapp": ["text", "text", "text", "image", "file", "text", "text", "text"],
    "whatsapp.cloud": ["text", "buttons", "buttons", "image", "file", "buttons", "buttons", "buttons", "location"],
    "teams": ["text", "buttons", "quick_replies", "image", "file", "card", "card", "card", "text"],
    "web": ["text", "buttons", "quick_replies", "image", "file", "card", "cards", "location"],
}
NUMBERED = {"sms", "whatsapp"}
"""Channels where buttons are a numbered list answered by text."""


@pytest.mark.parametrize("channel", CHANNELS)
async def test_one_handler_sends_every_kind_on_every_channel_and_presses_come_back_as_payloads(tmp_path, channel):
    async with BotTester(make_config(tmp_path, app=every_kind), channel=channel) as bot:
        sent = await bot.send("hi")
        assert [message.kind for message in sent] == EXPECTED[channel]
        assert not bot.errors
        shown = " ".join(str(message) + " " + " ".join(b.url or "" for b in message.all_buttons) for message in sent)
        for seen in ("Hello", "Size?", "Small", "Medium", "Shop", "https://shop.example/", "Colour?", "Red", "Green"):
            assert seen in shown, seen
        if channel in NUMBERED:
            size, colour = sent[1].text, sent[2].text
            assert size == "Size?\n1. Small\n2. Medium\nShop: https://shop.example/"
            assert colour == "Colour?\n3. Red\n4. Green", "numbered on across the lists of one turn"
            assert sent[-2].text.endswith("Pasta\nCarbonara\nhttps://example.com/pasta.png\n7. Order pasta")
            assert [m.text for m in await bot.send("4")] == ["got GREEN"]
            assert [m.text for m in await bot.send("4")] == ["said 4"], "answered: no list pending"
            await bot.send("hi")
            assert [m.text for m in await bot.send("order pasta")] == ["got ORDER_PASTA"], "a title answers too"
            return
        assert [m.text for m in await bot.press("Medium")] == ["got SIZE_M"]
        assert [m.text for m in await bot.press("Green")] == ["got GREEN"]
        await bot.send("hi")
        assert [m.text for m in await bot.press("Red")] == ["got Red"], "a bare title is its own payload"
        assert [m.text for m in await bot.press("Order soup")] == ["got ORDER_SOUP"]
        assert [m.text for m in await bot.press("Order pasta")] == ["got ORDER_PASTA"]


async def test_sms_buttons_are_a_numbered_list_and_a_stale_number_is_plain_text(tmp_path):
    async def menu(context):
        if context.event.type == "payload":
            await context.send_text(f"payload {context.event.payload}")
        elif context.event.text == "menu":
            await context.send_buttons("Pick one", [("Pizza", "PIZZA"), ("Pasta", "PASTA"), ("Soup", "SOUP")])
        else:
            await context.send_text(f"text {context.event.text}")

    async with BotTester(make_config(tmp_path, app=menu), channel="sms") as bot:
        assert [m.text for m in await bot.send("2")] == ["text 2"], "no list pending: plain text"
        [listed] = await bot.send("menu")
        assert (listed.kind, listed.text) == ("text", "Pick one\n1. Pizza\n2. Pasta\n3. Soup")
        assert bot.calls[-1].form and ("Body", listed.text) in bot.calls[-1].form
        assert [m.text for m in await bot.send(" 2 ")] == ["payload PASTA"]
        assert not bot.session.parts.get("choices"), "the answered list is forgotten"
        assert [m.text for m in await bot.send("2")] == ["text 2"], "the list was answered: stale"
        await bot.send("menu")
        assert [m.text for m in await bot.send("something else")] == ["text something else"]
        assert [m.text for m in await bot.send("3")] == ["text 3"], "any message ends the offer"


async def test_a_200_byte_payload_round_trips_through_a_telegram_button(tmp_path):
    long = "ORDER:" + "x" * 194
    assert len(long.encode()) == 200

    async def order(context):
        if context.event.type == "payload":
            await context.send_text(f"{len(context.event.payload)} {context.event.payload == long}")
        else:
            await context.send_buttons("Confirm?", [("Yes", long), ("No", "NO")])

    async with BotTester(make_config(tmp_path, app=order), channel="telegram") as bot:
        [question] = await bot.send("hi")
        data = [button["callback_data"] for [button] in question.raw["reply_markup"]["inline_keyboard"]]
        assert len(data[0].encode()) <= 64 and data[0] != long and data[1] == "NO"
        assert [m.text for m in await bot.press("Yes")] == ["200 True"]
        assert [m.text for m in await bot.press("No")] == ["2 False"]


@pytest.mark.parametrize("channel", ["messenger", "line", "whatsapp.cloud", "teams", "web"])
async def test_a_payload_longer_than_the_platform_takes_round_trips_on_every_channel_with_buttons(tmp_path, channel):
    long = "P" * 1500

    async def order(context):
        if context.event.type == "payload":
            await context.send_text(f"{len(context.event.payload)} {context.event.payload == long}")
        else:
            await context.send_buttons("Confirm?", [("Yes", long)])

    async with BotTester(make_config(tmp_path, app=order), channel=channel) as bot:
        await bot.send("hi")
        assert [m.text for m in await bot.press("Yes")] == ["1500 True"]


def test_buttons_as_json_gives_them_back_pairs_stay_pairs_and_lists_of_buttons_are_rows():
    assert as_buttons([["Yes", "YES"], [("A", "a"), {"title": "B", "url": "https://b.example/"}]]) == (
        Button("Yes", "YES"), Button("A", "a"), Button("B", url="https://b.example/"))


async def test_telegram_quick_replies_with_pairs_show_titles_and_come_back_as_payloads(tmp_path):
    async def ask(context):
        if context.event.type == "payload":
            await context.send_text(f"payload {context.event.payload} ({context.event.text})")
        else:
            await context.send_quick_replies("Colour?", [("Green", "GREEN"), ("Blue", "BLUE")])

    async with BotTester(make_config(tmp_path, app=ask), channel="telegram") as bot:
        [question] = await bot.send("hi")
        assert question.raw["reply_markup"]["keyboard"] == [[{"text": "Green"}], [{"text": "Blue"}]]
        assert [m.text for m in await bot.press("Blue")] == ["payload BLUE (Blue)"]


async def test_message_objects_send_what_the_methods_send(tmp_path):
    objects = [Text("Hello"), Buttons("Size?", [("S", "S")]), QuickReplies("Colour?", ["Red"]),
               Image("https://example.com/a.png", "A"), File("https://example.com/a.pdf", "a.pdf"),
               Card("Pizza", buttons=[("Order", "ORDER")]), Cards([Card("A"), {"title": "B"}]),
               Location(1.5, 2.5, "Here"), Typing()]

    async def by_objects(context):
        for message in objects:
            await context.send(message)

    async def by_methods(context):
        await context.send_text("Hello")
        await context.send_buttons("Size?", [("S", "S")])
        await context.send_quick_replies("Colour?", ["Red"])
        await context.send_image("https://example.com/a.png", "A")
        await context.send_file("https://example.com/a.pdf", "a.pdf")
        await context.send_card("Pizza", buttons=[("Order", "ORDER")])
        await context.send_cards([Card("A"), {"title": "B"}])
        await context.send_location(1.5, 2.5, "Here")
        await context.send_typing()

    sent = []
    for handler in (by_objects, by_methods):
        async with BotTester(make_config(tmp_path, app=handler), channel="web") as bot:
            sent.append([{k: v for k, v in m.raw.items() if k != "at"} for m in await bot.send("hi")])
            history = [(h["type"], h.get("text")) for h in await bot.bot.store.history(bot.session_key)][1:]
    assert sent[0] == sent[1] and len(sent[0]) == 8
    assert history == [("text", "Hello"), ("buttons", "Size?"), ("quick_replies", "Colour?"),
                       ("image", "https://example.com/a.png"), ("file", "https://example.com/a.pdf"),
                       ("card", "Pizza"), ("cards", "A"), ("location", "Here")]


@pytest.mark.parametrize("bad", [[("only a title",)], [{"title": "No payload"}], "Yes", [{"title": "", "payload": "X"}]])
async def test_a_malformed_button_fails_in_the_handler_before_any_call(tmp_path, bad):
    caught = []

    async def handler(context):
        try:
            await context.send_buttons("Pick", bad)
        except ValueError as exc:
            caught.append(str(exc))

    async with BotTester(make_config(tmp_path, app=handler), channel="telegram") as bot:
        assert await bot.send("hi") == []
        assert caught and not bot.calls


async def test_a_card_takes_three_buttons_at_most(tmp_path):
    caught = []

    async def handler(context):
        try:
            await context.send_card("Menu", buttons=[(str(n), str(n)) for n in range(4)])
        except ValueError as exc:
            caught.append(str(exc))

    async with BotTester(make_config(tmp_path, app=handler), channel="messenger") as bot:
        await bot.send("hi")
        assert caught and "at most 3 buttons" in caught[0] and not bot.calls


async def test_the_console_lists_buttons_and_quick_replies_with_pairs_and_answers_by_number(tmp_path):
    seen = []

    async def handler(context):
        if context.event.type == "payload":
            seen.append(context.event.payload)
        else:
            await context.send_quick_replies("Colour?", [("Green", "GREEN"), ("Blue", "BLUE")])
            await context.send_buttons("Size?", [("Small", "S"), {"title": "Docs", "url": "https://x.example/"}])

    out = io.StringIO()
    console = Console(test_bot(make_config(tmp_path), handler=handler, channels={}), user="ada", out=out)
    async with console.bot:
        await console.answer("hi")
        await console.answer("3")
        await console.answer("hi")
        await console.answer("blue")
        await console.answer("1")
    assert "Bot > Colour?\n1. Green\n2. Blue\n" in out.getvalue()
    assert "Bot > Size?\n3. Small\nDocs: https://x.example/\n" in out.getvalue()
    assert "('Green'" not in out.getvalue()
    assert seen == ["S", "BLUE"], "a number or a title answers; then nothing is pending"


def test_mypy_sees_every_send_kind_on_the_context(tmp_path):
    sample = ROOT / "tests" / "typed" / "sends.py"
    wrong = tmp_path / "wrong.py"
    wrong.write_text("from botkit import Context\n\n\nasync def handler(context: Context) -> None:\n"
                     "    await context.send_carousel([])\n    await context.send_card(1)\n")
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(sample), str(wrong)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert '"Context" has no attribute "send_carousel"' in result.stdout, result.stdout
    assert 'Argument 1 to "send_card" of "Context" has incompatible type "int"' in result.stdout
    assert str(sample.relative_to(ROOT)) not in result.stdout, result.stdout
