# The "welcome back" bot: `botkit console --config examples/welcome_back/bot.config.py`.
# Bot memory lives in the session store's engine (docs/sessions.md#bot-memory).
from botkit import env

app = "bot:app"
session = {
    "driver": env("SESSION_DRIVER", "file"),
    "expires_in": 30,  # minutes: a session ends after half an hour idle; the bot memory stays
    "rate_limit": 30,  # messages a minute per conversation, on every channel
    "rate_limit_notice": "You are writing faster than I can read; give me a minute.",
    "stores": {"file": {"dirname": ".session"},
               "redis": {"url": env("REDIS_URL", "redis://127.0.0.1:6379/0"), "prefix": "welcome:"}},
}
bot_memory = {"max_value_size": 64 * 1024}
channels = {"telegram": {"access_token": env("TELEGRAM_ACCESS_TOKEN", "123:test"),
                         "secret_token": env("TELEGRAM_SECRET_TOKEN", "change-me")}}
