"""The fake platforms, one per channel adapter: each signs what its users send as the platform signs it,
and answers the bot's calls as the platform answers them."""
from __future__ import annotations

from botkit.testing.platforms.base import Identity, Inbound, Platform, TesterError
from botkit.testing.platforms.line import LinePlatform
from botkit.testing.platforms.meta import MessengerPlatform, WhatsAppCloudPlatform
from botkit.testing.platforms.teams import TeamsPlatform
from botkit.testing.platforms.telegram import TelegramPlatform
from botkit.testing.platforms.twilio import TwilioPlatform, TwilioWhatsAppPlatform
from botkit.testing.platforms.web import WebPlatform

PLATFORMS: tuple[type[Platform], ...] = (
    TelegramPlatform, MessengerPlatform, LinePlatform, TwilioPlatform, TwilioWhatsAppPlatform, WhatsAppCloudPlatform,
    TeamsPlatform, WebPlatform,
)


def platform_for(adapter: type) -> type[Platform] | None:
    """The fake platform of an adapter class (or of the botkit adapter it extends)."""
    for klass in adapter.__mro__:
        key = f"{klass.__module__.removeprefix('botkit.')}:{klass.__qualname__}"
        for platform in PLATFORMS:
            if key in (name.removeprefix("botkit.") for name in platform.adapters):
                return platform
    return None


__all__ = ["PLATFORMS", "Identity", "Inbound", "Platform", "TesterError", "platform_for"]
