# The onboarding bot of examples/flows: `botkit console --config examples/flows/bot.config.py`.
# Every setting is explained in docs/config.md; flows and scheduled steps in docs/flows.md.
from botkit import env

app = "bot:flows"
initial_state = {}
reengage_after = int(env("REENGAGE_AFTER", 60))  # seconds without an answer before the bot nudges
session = {
    "driver": env("SESSION_DRIVER", "file"),  # file or redis: scheduled steps outlive a restart
    "expires_in": 24 * 60,  # minutes; longer than reengage_after, or the nudge would be dropped
    "stores": {
        "file": {"dirname": ".session"},
        "redis": {"url": env("REDIS_URL", "redis://127.0.0.1:6379/0"), "prefix": "onboarding:"},
    },
}
channels = {
    "telegram": {
        "enabled": env("TELEGRAM_ACCESS_TOKEN") is not None,
        "access_token": env("TELEGRAM_ACCESS_TOKEN"),
        "secret_token": env("TELEGRAM_SECRET_TOKEN"),
    },
}
server = {"host": "127.0.0.1", "port": int(env("PORT", 5000))}
