# A shop bot whose sessions start and end: `botkit console --config examples/sessions/bot.config.py`.
# The hooks are explained in docs/sessions.md ("Start and end hooks"), the stats in "Milestones and stats".
from botkit import env

app = "bot:app"
on_session_start = "bot:on_start"
on_session_end = "bot:on_end"
initial_state = {"cart": []}
session = {
    "driver": env("SESSION_DRIVER", "file"),
    "expires_in": 30,  # minutes without a message; then the session ends, even if the user never writes again
    "stores": {"file": {"dirname": ".session"}, "redis": {"url": env("REDIS_URL", "redis://127.0.0.1:6379/0")}},
}
channels = {
    "telegram": {
        "enabled": env("TELEGRAM_ACCESS_TOKEN") is not None,
        "access_token": env("TELEGRAM_ACCESS_TOKEN"),
        "secret_token": env("TELEGRAM_SECRET_TOKEN"),
    },
}
