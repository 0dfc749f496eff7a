"""The web chat page in headless Chromium (Debian's, driven by Playwright) against the real aiohttp server.

``BOTKIT_SCREENSHOTS=1`` also writes docs/images/web-chat-desktop.png and web-chat-phone.png.
"""
from __future__ import annotations

import asyncio
import re
import os
import shutil
from pathlib import Path

import pytest

from botkit import Bot
from tests.support import Served, make_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed (pip install -e .[dev])")


async def counting_with_quick_replies(context) -> None:
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")
    await context.send_quick_replies("Count again?", [("Yes, again", "AGAIN")])


async def wait_until(check, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_chat_page_counts_keeps_its_history_and_shows_what_the_bot_starts(tmp_path):
    expect = playwright_api.expect
    bot = Bot(make_config(tmp_path, channels={"web": {"title": "Counter bot"}}), handler=counting_with_quick_replies)
    images = DOCS_IMAGES if os.environ.get("BOTKIT_SCREENSHOTS") else tmp_path
    images.mkdir(parents=True, exist_ok=True)
    async with Served(bot) as served, playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            desktop = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await desktop.new_page()
            await page.goto(served.url + "/")
            log = page.get_by_role("log")
            box = page.get_by_label("Message")
            await expect(box).to_be_focused()

            await box.fill("hello")
            await box.press("Enter")
            await expect(log).to_contain_text("Count: 1")
            await box.fill("and again")
            await box.press("Enter")
            await expect(log).to_contain_text("Count: 2")

            await page.get_by_role("button", name="Yes, again").click()
            await expect(log).to_contain_text("Count: 3")
            await expect(page.get_by_role("button", name="Yes, again")).to_have_count(1)

            await page.reload()
            await expect(log.get_by_role("listitem")).to_have_count(9)
            await expect(log).to_contain_text("Count: 3")
            await expect(page.get_by_role("button", name="Yes, again")).to_have_count(1)
            await page.screenshot(path=str(images / "web-chat-desktop.png"))

            token = await page.evaluate("Object.entries(localStorage).find(([k]) => k.startsWith('botkit.web.token'))[1]")
            session_id = token.split(".")[0]
            web = bot.adapters["web"]
            await wait_until(lambda: web.hub.open_streams(session_id) > 0)
            await bot.send_text(f"web:{session_id}", "Psst: your order has shipped.")
            await expect(log).to_contain_text("Psst: your order has shipped.")
            await expect(log.get_by_role("listitem")).to_have_count(10)

            phone = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                              is_mobile=True, has_touch=True, storage_state=await desktop.storage_state())
            small = await phone.new_page()
            await small.goto(served.url + "/")
            await expect(small.get_by_role("log")).to_contain_text("Psst: your order has shipped.")
            assert await small.evaluate("document.documentElement.scrollWidth") <= 390
            await small.screenshot(path=str(images / "web-chat-phone.png"))

            await page.get_by_role("button", name="New conversation").click()
            await expect(log.get_by_role("listitem")).to_have_count(0)
            await box.fill("hello again")
            await box.press("Enter")
            await expect(log).to_contain_text("Count: 1")
            assert await bot.load_session(f"web:{session_id}") is None, "a new conversation ends the old session"
            assert not (await small.request.get(served.url + "/api/history", headers={"Authorization": f"Bearer {token}"})).ok
        finally:
            await browser.close()


async def every_kind(context) -> None:
    if context.event.type == "payload":
        await context.send_text(f"Ordered: {context.event.payload}")
        return
    await context.send_file("https://example.com/menu.pdf", name="menu.pdf")
    await context.send_cards([{"title": "Pizza", "subtitle": "Margherita", "buttons": [("Order pizza", "PIZZA")]},
                              {"title": "Pasta", "subtitle": "Carbonara", "buttons": [("Order pasta", "PASTA")]}])
    await context.send_location(52.5163, 13.3777, name="Our shop")


async def test_the_chat_page_shows_cards_files_and_places_and_a_card_button_sends_its_payload(tmp_path):
    expect = playwright_api.expect
    bot = Bot(make_config(tmp_path, channels={"web": {}}), handler=every_kind)
    async with Served(bot) as served, playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(served.url + "/")
            log = page.get_by_role("log")
            await page.get_by_label("Message").fill("menu")
            await page.get_by_label("Message").press("Enter")
            await expect(page.get_by_role("article")).to_have_count(2)
            await expect(page.get_by_role("article").first).to_contain_text("Margherita")
            await expect(page.get_by_role("link", name="menu.pdf")).to_have_attribute("href", "https://example.com/menu.pdf")
            await expect(page.get_by_role("link", name="Our shop")).to_have_attribute("href", re.compile(r"^https://www\.google\.com/maps/"))
            await page.get_by_role("button", name="Order pasta").click()
            await expect(log).to_contain_text("Ordered: PASTA")
        finally:
            await browser.close()
