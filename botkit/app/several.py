"""Several bots on one server (``botkit start --config support/bot.config.py --config sales/bot.config.py``):
each is named (``name`` in its config, else its folder's name), its routes go under ``/<name>/`` and its
data under its name in the store (``botkit.storage.namespace``), so that bots sharing one Redis or one
database never mix sessions, bot memory, counters or scheduled steps."""
from __future__ import annotations

from collections.abc import Sequence

from botkit.app.config import Config, name_bot
from botkit.core.errors import ConfigError
from botkit.storage import driver_class


def several_bots(configs: Sequence[Config]) -> list[Config]:
    """The configs of the bots one server runs, each named; one ConfigError for two bots of one name."""
    if len(configs) < 2:
        return list(configs)
    named: dict[str, Config] = {}
    for config in configs:
        if config.name is None:
            try:
                name_bot(config, config.bot_name)
            except ConfigError:
                raise ConfigError("name", f"{config.path or config.root}: its folder's name {config.bot_name!r} cannot "
                                  "be a URL path segment; set name = \"…\" in it") from None
            driver_class(config.session["driver"]).validate(config.store_settings())
        name = config.bot_name
        if name in named:
            raise ConfigError("name", f"two bots are called {name!r} ({named[name].path or named[name].root} and "
                              f"{config.path or config.root}); set name = \"…\" in one of them")
        named[name] = config
    return list(named.values())
