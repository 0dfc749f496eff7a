# Settings of this bot: see docs/config.md for every one.
from botkit import env

app = "bot:app"
initial_state = {"count": 0}
session = {
    "driver": env("SESSION_DRIVER", "memory"),
    "expires_in": None,
    "stores": {
        "memory": {"max_size": 10_000},  # about 700 bytes a session; beyond it the least recent is forgotten
        "file": {"dirname": ".session"},
        "redis": {"url": env("REDIS_URL", "redis://127.0.0.1:6379/0"), "prefix": "botkit:"},
        "postgres": {"dsn": env("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")},
    },
}
channels = {
    # A channel is on when it is listed; here, when its token is in the environment.
    "telegram": {
        "enabled": env("TELEGRAM_ACCESS_TOKEN") is not None,
        "access_token": env("TELEGRAM_ACCESS_TOKEN"),
        "secret_token": env("TELEGRAM_SECRET_TOKEN"),
    },
}
server = {"host": "127.0.0.1", "port": int(env("PORT", 5000))}
