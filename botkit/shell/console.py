"""`botkit console`: talk to the bot in a terminal, on whatever session driver the config names."""
from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from botkit.adapters.base import Adapter, ChannelHost, Route
from botkit.app.bot import Bot
from botkit.core.events import Event
from botkit.core.sending import Sender

PLATFORM = "console"
HELP = "Type as a user. /state prints the state, /session the session record, /exit leaves."


class ConsoleSender(Sender):
    """Prints what the bot sends as ``Bot > …`` lines. Buttons, quick replies and cards are the
    numbered-list fallback: typing a number (or a title) answers as that button's payload, and
    ``/payload X`` sends any payload."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def _say(self, text: str) -> None:
        self.out.write(f"Bot > {text}\n")
        self.out.flush()

    async def send_text(self, text: str, **options: Any) -> None:
        self._say(text)

    async def send_image(self, url: str, caption: str | None = None, **options: Any) -> None:
        self._say(f"[image] {url}" + (f" {caption}" if caption else ""))

    async def send_file(self, url: str, name: str | None = None, **options: Any) -> None:
        self._say(f"[file] {url}" + (f" {name}" if name else ""))

    async def send_typing(self, **options: Any) -> None:
        self._say("…")


class ConsoleChannel(Adapter):
    """The terminal as a channel: events typed by the user, messages printed; no HTTP route."""

    platform = PLATFORM

    def __init__(self, host: ChannelHost, out: TextIO) -> None:
        super().__init__(PLATFORM, {}, host)
        self.out = out

    def routes(self) -> list[Route]:
        return []

    def sender(self, event: Event, inband: list[Any] | None = None) -> ConsoleSender:
        return ConsoleSender(self.out)

    def push_sender(self, session_key: str, address: Mapping[str, Any] | None) -> ConsoleSender:
        return ConsoleSender(self.out)


class Console:
    def __init__(self, bot: Bot, user: str | None = None, out: TextIO = sys.stdout) -> None:
        self.bot = bot
        self.user = user or getpass.getuser() or "me"
        self.key = f"{PLATFORM}:{self.user}"
        self.out = out
        bot.add_channel(ConsoleChannel(bot, out))

    def event(self, line: str) -> Event:
        if line.startswith("/payload "):
            payload = line.removeprefix("/payload ").strip()
            return Event(PLATFORM, "payload", self.key, user_id=self.user, payload=payload, raw=line, channel=PLATFORM)
        return Event(PLATFORM, "text", self.key, user_id=self.user, text=line, raw=line, channel=PLATFORM)

    async def answer(self, line: str) -> bool:
        """Handle one typed line; False when the user leaves."""
        line = line.strip()
        if line in ("/exit", "/quit"):
            return False
        if line in ("/state", "/session"):
            record = await self.bot.store.load(self.key) or {}
            shown = record.get("state", self.bot.initial_state) if line == "/state" else record
            self.out.write(json.dumps(shown, ensure_ascii=False) + "\n")
        elif line:
            await self.bot.dispatch([self.event(line)])
        return True

    async def run(self, stdin: TextIO = sys.stdin) -> None:
        self.out.write(HELP + "\n")
        async with self.bot:
            while True:
                self.out.write("You > ")
                self.out.flush()
                line = await asyncio.to_thread(stdin.readline)
                if not line:
                    self.out.write("\n")
                    break
                if not await self.answer(line):
                    break
