"""The agent desk in headless Chromium (Debian's, driven by Playwright) against the real aiohttp server: a
Telegram user (the fake Bot API) asks for a human, an agent answers from the desk, then hands back.

``BOTKIT_SCREENSHOTS=1`` also writes docs/images/desk-desktop.png and desk-phone.png.
"""
from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest

from botkit import Bot
from tests.stores import REDIS_URL, bot_folder, redis_store
from tests.support import Served, make_config
from tests.test_handoff import AUTH, DESK, EXAMPLE, HEADERS, KEY, SECRET, TOKEN, example_app, sent_texts, update
from tests.test_workers import Workers, telegram
from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS, DOCS_IMAGES

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")
playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")


async def sign_in(page, url: str, agent: str) -> None:
    await page.goto(url + "/desk/")
    await page.get_by_label("Your name").fill(agent)
    await page.get_by_label("Desk secret").fill(DESK)
    await page.get_by_label("Desk secret").press("Enter")


async def test_an_agent_takes_a_telegram_conversation_on_the_desk_and_hands_it_back(fake_api, tmp_path):
    config = make_config(tmp_path, channels={"telegram": {"access_token": TOKEN, "secret_token": SECRET,
                                                          "api_base": fake_api.url}},
                         initial_state={}, desk={"secret": DESK})
    bot = Bot(config, handler=example_app())
    images = DOCS_IMAGES if os.environ.get("BOTKIT_SCREENSHOTS") else tmp_path
    images.mkdir(parents=True, exist_ok=True)
    async with Served(bot) as served:
        async def user_writes(update_id: int, text: str) -> None:
            response = await served.post("/webhooks/telegram", json=update(update_id, text), headers=HEADERS)
            assert response.status == 200

        async def seen() -> list[str]:
            return (await bot.load_session("telegram:42")).state["seen"]

        await desk_flow(served.url, user_writes, seen, fake_api, images)


async def desk_flow(url: str, user_writes, seen, fake_api, images, waiting_messages: int = 3, burst: int = 1) -> None:
    """The user asks for a human; Ana claims and answers on the desk; the user's next messages show there
    live and not in the bot; Bo cannot take it; Ana hands it back and the handler sees ``handback`` first."""
    expect = playwright_api.expect
    await user_writes(1, "hello")
    await user_writes(2, "human")
    async with playwright_api.async_playwright() as playwright, aiohttp.ClientSession() as http:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            desktop = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await desktop.new_page()
            await sign_in(page, url, "Ana")
            waiting = page.get_by_role("navigation", name="Waiting for a human")
            await expect(waiting).to_contain_text("telegram:42")
            await expect(waiting).to_contain_text("asked for a human")
            await waiting.get_by_role("button", name="telegram:42").focus()
            await page.keyboard.press("Enter")  # the keyboard alone opens it
            await expect(page.locator("#conversation")).to_be_focused()
            log = page.get_by_role("log", name="Transcript")
            await expect(log.get_by_role("listitem")).to_have_count(4)
            await expect(log).to_contain_text("hello")
            await expect(log).to_contain_text("Connecting you to a person")

            await page.get_by_role("button", name="Claim this conversation").click()
            await expect(page.get_by_role("status")).to_contain_text("You hold this conversation")
            reply = page.get_by_label("Reply")
            await expect(reply).to_be_focused()
            await reply.fill("Hi, I'm Ana. What can I do for you?")
            await reply.press("Enter")
            await fake_api.wait_for(3, "/sendMessage")
            assert sent_texts(fake_api)[-1] == "Hi, I'm Ana. What can I do for you?"
            assert fake_api.calls_to("/sendMessage")[-1].json["chat_id"] == 42
            await expect(log).to_contain_text("Agent Ana")

            texts = [f"My order {1000 + n} is late" for n in range(waiting_messages - 1)] + ["Can you check?"]
            for first in range(0, len(texts), burst):
                group = texts[first:first + burst]
                await asyncio.gather(*(user_writes(100 + first + n, text) for n, text in enumerate(group)))
            for text in texts:
                await expect(log).to_contain_text(text)
            assert len(sent_texts(fake_api)) == 3, "the bot answered a message meant for the human"
            assert await seen() == ["text", "text"]

            async with http.post(f"{url}/desk/api/conversations/{KEY}/claim", json={"agent": "Bo"}, headers=AUTH) as response:
                assert response.status == 409
            second = await browser.new_context(viewport={"width": 1280, "height": 800})
            other = await second.new_page()
            await sign_in(other, url, "Bo")
            await other.get_by_role("button", name="telegram:42").click()
            await expect(other.get_by_role("button", name="Claim this conversation")).to_be_disabled()
            await expect(other.get_by_label("Reply")).to_be_disabled()
            await second.close()
            await page.screenshot(path=str(images / "desk-desktop.png"))

            phone = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                              is_mobile=True, has_touch=True)
            small = await phone.new_page()
            await sign_in(small, url, "Ana")
            await small.get_by_role("button", name="telegram:42").click()
            await expect(small.get_by_role("log", name="Transcript")).to_contain_text("Can you check?")
            await expect(small.get_by_role("navigation", name="Waiting for a human")).to_be_hidden()
            assert await small.evaluate("document.documentElement.scrollWidth") <= 390
            await small.screenshot(path=str(images / "desk-phone.png"))
            await small.get_by_role("button", name="← Conversations").click()
            await expect(small.get_by_role("navigation", name="Waiting for a human")).to_be_visible()
            await phone.close()

            await page.get_by_role("button", name="Hand back to the bot").click()
            await expect(page.get_by_role("navigation", name="Waiting for a human")).to_contain_text("Nobody is waiting")
            await fake_api.wait_for(4, "/sendMessage")
            assert sent_texts(fake_api)[-1].startswith("You are back with the bot")
            await user_writes(10, "thanks")
            await fake_api.wait_for(5, "/sendMessage")
            assert sent_texts(fake_api)[-1] == "Bot: you said 'thanks'. Write \"human\" to talk to a person."
            assert await seen() == ["text", "text", "handback", "text"]
        finally:
            await browser.close()


async def test_the_desk_on_one_worker_sees_the_webhooks_both_workers_handle(fake_api, tmp_path):
    """``botkit start --workers 2`` on Redis: the desk's event stream is held by one worker, the user's
    webhooks (a fresh connection each) reach both, the agent's moves may land on either."""
    async with redis_store(tmp_path) as store:
        session = {"driver": "redis", "stores": {"redis": {"url": REDIS_URL, "prefix": store.prefix}}}
        config = bot_folder(tmp_path / "bot", session=session, channels=telegram(fake_api), desk={"secret": DESK},
                            initial_state={}, http={"attempts": 2})
        (tmp_path / "bot" / "bot.py").write_text(EXAMPLE.read_text())
        async with Workers(config) as workers:
            async def user_writes(update_id: int, text: str) -> None:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
                    async with http.post(workers.url + "/webhooks/telegram", json=update(update_id, text),
                                         headers=HEADERS) as response:
                        assert response.status == 200, workers.logs()

            async def seen() -> list[str]:
                return (await store.load("telegram:42"))["state"]["seen"]

            await desk_flow(workers.url, user_writes, seen, fake_api, tmp_path, waiting_messages=24, burst=8)
            served = await workers.pids_serving("/webhooks/telegram", 2 + 24 + 1)
            assert len(served) == 2, f"one worker served every webhook: {served}"
            assert await workers.stop() == 0, workers.logs()
