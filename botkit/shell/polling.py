"""`botkit start --polling`: each Telegram channel long-polls ``getUpdates`` while the server keeps the
other channels' webhooks (adapters/telegram_polling.py does the polling)."""
from __future__ import annotations

import asyncio

from aiohttp import web

from botkit.adapters.telegram import TelegramAdapter
from botkit.adapters.telegram_polling import Dispatch, TelegramPoller
from botkit.app.bot import Bot
from botkit.core.errors import ConfigError


def pollers(bot: Bot) -> list[TelegramPoller]:
    """One poller per enabled Telegram channel. An update is acknowledged once handled, or once in an
    inbox that outlives the process (the file, redis, postgres and mongo drivers'), as a webhook's."""
    channels = [channel for channel in bot.channels.values() if isinstance(channel, TelegramAdapter)]
    if not channels:
        raise ConfigError("--polling", "polls Telegram's getUpdates: add a telegram channel to bot.config.py")
    dispatch: Dispatch = bot.accept if bot.inbox is not None and bot.inbox.durable else bot.dispatch
    return [TelegramPoller(channel, dispatch) for channel in channels]


def add_polling(app: web.Application, bot: Bot) -> None:
    """Poll once the bot has started; stop polling first at shutdown, before the handlers drain."""
    found = pollers(bot)
    grace = float(bot.config.server["shutdown_timeout"])

    async def start(app: web.Application) -> None:
        for poller in found:
            poller.start()

    async def stop(app: web.Application) -> None:
        await asyncio.gather(*(poller.stop(grace) for poller in found))

    app.on_startup.append(start)
    app.on_shutdown.insert(0, stop)
