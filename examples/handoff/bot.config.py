# The handoff example: `botkit start --config examples/handoff/bot.config.py`, then open
# http://127.0.0.1:5000/desk (docs/handoff.md). Every setting is explained in docs/config.md.
from botkit import env

app = "bot:app"
initial_state = {}
session = {
    "driver": env("SESSION_DRIVER", "memory"),  # redis or postgres when several workers serve the bot
    "stores": {"redis": {"url": env("REDIS_URL", "redis://127.0.0.1:6379/0"), "prefix": "handoff:"}},
}
channels = {
    "telegram": {
        "enabled": env("TELEGRAM_ACCESS_TOKEN") is not None,
        "access_token": env("TELEGRAM_ACCESS_TOKEN"),
        "secret_token": env("TELEGRAM_SECRET_TOKEN"),
    },
    "web": {"title": "Support"},
}
desk = {"secret": env("DESK_SECRET", "change-me-to-a-long-random-secret"), "timeout": 60}
server = {"host": "127.0.0.1", "port": int(env("PORT", 5000))}
