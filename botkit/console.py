"""`botkit console`: talk to the bot in a terminal, on whatever session driver the config names."""
from __future__ import annotations

import asyncio
import getpass
import json
import sys
from typing import Any, Mapping, TextIO

from .bot import Bot
from .event import Event

PLATFORM = "console"
HELP = "Type as a user. /state prints the state, /session the session record, /exit leaves."


class ConsoleSender:
    """Prints what the bot sends as ``Bot > …`` lines."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def _say(self, text: str) -> None:
        self.out.write(f"Bot > {text}\n")
        self.out.flush()

    async def send_text(self, text: str, **options: Any) -> None:
        self._say(text)

    async def send_image(self, url: str, caption: str | None = None, **options: Any) -> None:
        self._say(f"[image] {url}" + (f" {caption}" if caption else ""))

    async def send_buttons(self, text: str, buttons: list[Any], **options: Any) -> None:
        self._say(text)
        for button in buttons:
            title, payload = button if isinstance(button, (tuple, list)) else (button["title"], button.get("payload"))
            self._say(f"  [{title}] → type /payload {payload}")

    async def send_quick_replies(self, text: str, replies: list[str], **options: Any) -> None:
        self._say(text + "  (" + " | ".join(replies) + ")")

    async def send_typing(self) -> None:
        pass


class Console:
    def __init__(self, bot: Bot, user: str | None = None, out: TextIO = sys.stdout) -> None:
        self.bot = bot
        self.user = user or getpass.getuser() or "me"
        self.key = f"{PLATFORM}:{self.user}"
        self.out = out
        self.sender = ConsoleSender(out)

    def event(self, line: str) -> Event:
        meta: Mapping[str, Any] = {"sender": self.sender}
        if line.startswith("/payload "):
            payload = line.removeprefix("/payload ").strip()
            return Event(PLATFORM, "payload", self.key, user_id=self.user, payload=payload, raw=line, meta=dict(meta))
        return Event(PLATFORM, "text", self.key, user_id=self.user, text=line, raw=line, meta=dict(meta))

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
            self.bot.attach_sender(self.key, self.sender)
            while True:
                self.out.write("You > ")
                self.out.flush()
                line = await asyncio.to_thread(stdin.readline)
                if not line:
                    self.out.write("\n")
                    break
                if not await self.answer(line):
                    break
