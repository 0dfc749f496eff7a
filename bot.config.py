# The example counting bot (examples/counter): `botkit start` serves it, `botkit console` talks to it.
# Every setting is explained in docs/config.md; each channel's set-up in docs/channels.md.
# A channel is on when its credentials are in the environment, so this file starts as it is.
from botkit import env

app = "examples.counter.bot:app"
initial_state = {"count": 0}

session = {
    "driver": env("SESSION_DRIVER", "memory"),  # memory | file | redis | mongo | postgres
    "expires_in": None,  # minutes of inactivity before a conversation starts afresh; None = never
    "stores": {
        "memory": {"max_size": 10_000},  # sessions kept (about 700 bytes each); beyond it the least recent is forgotten
        "file": {"dirname": ".session"},
        "redis": {"url": env("REDIS_URL", "redis://127.0.0.1:6379/0"), "prefix": "botkit:"},
        "mongo": {"url": env("MONGODB_URL", "mongodb://127.0.0.1:27017"), "database": "botkit", "collection": "sessions"},
        "postgres": {"dsn": env("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"), "table": "botkit_sessions"},
    },
}


def _on(*names):
    """True when every named environment variable is set."""
    return all(env(name) is not None for name in names)


_twilio = {"account_sid": env("TWILIO_ACCOUNT_SID"), "auth_token": env("TWILIO_AUTH_TOKEN"), "public_url": env("TWILIO_PUBLIC_URL")}

channels = {
    "telegram": {
        "enabled": _on("TELEGRAM_ACCESS_TOKEN"),
        "access_token": env("TELEGRAM_ACCESS_TOKEN"),
        "secret_token": env("TELEGRAM_SECRET_TOKEN"),
    },
    "messenger": {
        "enabled": _on("MESSENGER_ACCESS_TOKEN"),
        "access_token": env("MESSENGER_ACCESS_TOKEN"),
        "app_secret": env("MESSENGER_APP_SECRET"),
        "verify_token": env("MESSENGER_VERIFY_TOKEN"),
    },
    "line": {
        "enabled": _on("LINE_ACCESS_TOKEN"),
        "access_token": env("LINE_ACCESS_TOKEN"),
        "channel_secret": env("LINE_CHANNEL_SECRET"),
    },
    "sms": {"enabled": _on("TWILIO_SMS_NUMBER"), "phone_number": env("TWILIO_SMS_NUMBER"), **_twilio},
    "whatsapp": (
        {   # the WhatsApp Cloud API, when its token is set
            "provider": "cloud",
            "access_token": env("WHATSAPP_ACCESS_TOKEN"),
            "app_secret": env("WHATSAPP_APP_SECRET"),
            "verify_token": env("WHATSAPP_VERIFY_TOKEN"),
            "phone_number_id": env("WHATSAPP_PHONE_NUMBER_ID"),
        }
        if _on("WHATSAPP_ACCESS_TOKEN")
        else {"enabled": _on("TWILIO_WHATSAPP_NUMBER"), "phone_number": env("TWILIO_WHATSAPP_NUMBER"), **_twilio}
    ),
    "teams": {
        "enabled": _on("TEAMS_APP_ID"),
        "app_id": env("TEAMS_APP_ID"),
        "app_password": env("TEAMS_APP_PASSWORD"),
        "tenant_id": env("TEAMS_TENANT_ID"),
    },
    "web": {"enabled": env("WEB_CHAT", "on") != "off"},  # the chat page at http://127.0.0.1:5000/
}

server = {"host": env("HOST", "127.0.0.1"), "port": int(env("PORT", 5000))}
