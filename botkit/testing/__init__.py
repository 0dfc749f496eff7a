"""A test kit for bots: ``BotTester`` talks to a bot as a platform's users do, on a clock the test moves,
and reads back what the bot sent as plain ``Message`` objects. Every channel runs for real (its
verification, parsing and sender) against an in-process fake of its platform: no network, no port.

```python
from botkit.testing import BotTester

async def test_counts():
    async with BotTester("bot.config.py", channel="telegram") as bot:
        await bot.send("hi")
        assert bot.replies[-1].text == "Count: 1"
        assert bot.state["count"] == 1
```

The pytest plugin (installed with botkit) gives the ``bot_tester`` fixture; see docs/testing.md.
"""
from botkit.testing.clock import FakeClock
from botkit.testing.http import FakeHttp, HttpCall
from botkit.testing.messages import Button, Card, Message
from botkit.testing.platforms import TesterError
from botkit.testing.tester import BotFailed, BotTester, RequestRefused

CHANNELS = ("telegram", "messenger", "line", "sms", "whatsapp", "whatsapp.cloud", "teams", "web")
"""Every channel botkit ships, as ``BotTester(channel=…)`` names them."""

__all__ = [
    "CHANNELS",
    "BotFailed",
    "BotTester",
    "Button",
    "Card",
    "FakeClock",
    "FakeHttp",
    "HttpCall",
    "Message",
    "RequestRefused",
    "TesterError",
]
