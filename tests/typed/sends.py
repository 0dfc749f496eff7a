"""Every send kind, as a handler writes it, for `mypy --strict` (pyproject's [tool.mypy] checks this file):
a kind missing from Context, or a wrong argument, fails the type check."""
from __future__ import annotations

from botkit import Buttons, Card, Cards, Context, File, Image, Location, Message, QuickReplies, Text, Typing


async def every_kind(context: Context) -> None:
    await context.send_text("Hello")
    await context.send_buttons("Size?", [("Small", "S"), {"title": "Docs", "url": "https://example.com/"}])
    await context.send_quick_replies("Colour?", ["Red", ("Green", "GREEN")])
    await context.send_image("https://example.com/cat.png", caption="A cat")
    await context.send_file("https://example.com/menu.pdf", name="menu.pdf")
    await context.send_card("Pizza", subtitle="Margherita", image="https://example.com/p.png", buttons=[("Order", "ORDER")])
    await context.send_cards([Card("Pizza"), {"title": "Pasta", "buttons": [("Order", "PASTA")]}])
    await context.send_location(52.5163, 13.3777, name="Shop", address="Pariser Platz 1")
    await context.send_typing()
    await context.send_native("sticker", 446, 1988)
    messages: list[Message] = [Text("Hi"), Buttons("Size?", [("S", "S")]), QuickReplies("Colour?", ["Red"]),
                               Image("https://example.com/cat.png"), File("https://example.com/menu.pdf"),
                               Card("Pizza"), Cards([Card("Pizza")]), Location(1.0, 2.0), Typing()]
    for message in messages:
        await context.send(message)
