"""Loading and validating ``bot.config.py``: a Python file of module-level settings."""
from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import math
import os
import re
import runpy
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botkit.app.settings import custom_values
from botkit.core.errors import ConfigError

DEFAULT_CONFIG_NAME = "bot.config.py"
BOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")

SESSION_DEFAULTS: dict[str, Any] = {
    "driver": "memory",
    "expires_in": None,
    "history": 50,
    "timeout": 5.0,
    "lock_timeout": 30.0,
    "max_state_size": 1024 * 1024,
    "dedupe_window": 48 * 3600.0,
    "cache": None,
    "stores": {},
    "rate_limit": None,
    "rate_limit_notice": None,
}
SERVER_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 5000,
    "client_max_size": 1024 * 1024,
    "shutdown_timeout": 30.0,
    "access_log": True,
    "ack_within": 1.0,
    "header_timeout": 10.0,
    "read_timeout": 30.0,
    "max_connections": None,
    "trusted_proxies": (),
    "metrics": False,
    "log_format": "text",
}
DESK_DEFAULTS: dict[str, Any] = {"secret": None, "timeout": 60, "path": "/desk"}
"""``desk``: the agent desk's bearer secret (None: the web channel's ``jwt_key``), the minutes after which a
conversation handed to a human goes back to the bot (None: never), where the desk is served."""
HTTP_DEFAULTS: dict[str, Any] = {"timeout": 10.0, "attempts": 4, "backoff": 0.5, "max_wait": 30.0}
BOT_MEMORY_DEFAULTS: dict[str, Any] = {"max_value_size": 1024 * 1024}


def env(name: str, default: Any = None) -> Any:
    """An environment variable, or ``default`` when it is unset or empty."""
    value = os.environ.get(name)
    return default if value in (None, "") else value


@dataclass(slots=True)
class Config:
    root: Path
    path: Path | None = None
    app: Any = "bot:app"
    initial_state: dict[str, Any] = field(default_factory=dict)
    session: dict[str, Any] = field(default_factory=lambda: dict(SESSION_DEFAULTS))
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=lambda: dict(SERVER_DEFAULTS))
    http: dict[str, Any] = field(default_factory=lambda: dict(HTTP_DEFAULTS))
    extra: dict[str, Any] = field(default_factory=dict)
    desk: dict[str, Any] | None = None
    """The agent desk's settings (``DESK_DEFAULTS``); None: no desk is served."""
    middleware: list[Any] = field(default_factory=list)
    """``async def middleware(context, call_next)`` run around every event: callables or "module:function"."""
    bot_memory: dict[str, Any] = field(default_factory=lambda: dict(BOT_MEMORY_DEFAULTS))
    name: str | None = None
    """``name`` as bot.config.py sets it (None: unset); ``bot_name`` is what the bot is called."""

    @property
    def bot_name(self) -> str:
        """The bot's name: ``name``, else its folder's (its routes' prefix when a server runs several bots)."""
        return self.name or self.root.name or "bot"
    on_session_start: Any = None
    """``"module:function"`` (or the function) run before the first event of each new session."""
    on_session_end: Any = None
    """``"module:function"`` (or the function) run when a session ends (``end_session``, expiry)."""

    @property
    def enabled_channels(self) -> dict[str, dict[str, Any]]:
        return {name: s for name, s in self.channels.items() if s.get("enabled", True) is not False}

    def store_settings(self, driver: str | None = None) -> dict[str, Any]:
        return dict(self.session["stores"].get(driver or self.session["driver"]) or {})

    def resolve_path(self, value: str | os.PathLike[str]) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.root / path


def find_config(path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        candidate = Path.cwd() / DEFAULT_CONFIG_NAME
        if not candidate.is_file():
            raise ConfigError("--config", f"no {DEFAULT_CONFIG_NAME} in {Path.cwd()}; pass --config PATH or run `botkit init`")
        return candidate
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / DEFAULT_CONFIG_NAME
    if not candidate.is_file():
        raise ConfigError("--config", f"{candidate} does not exist")
    return candidate.resolve()


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Run the config file and validate what it defines."""
    file = find_config(path)
    try:
        names = runpy.run_path(str(file))
    except ConfigError:
        raise
    except Exception as exc:  # the user's file: report, don't trace
        line = _line_of(exc, file)
        raise ConfigError(file.name + line, f"{type(exc).__name__}: {exc}") from None
    settings = {k: v for k, v in names.items() if not k.startswith("_") and not isinstance(v, types.ModuleType)}
    return config_from_mapping(settings, root=file.parent, path=file)


def config_from_mapping(settings: Mapping[str, Any], *, root: Path | None = None, path: Path | None = None) -> Config:
    """Build a Config from a mapping of settings (what a config file defines); used by tests too."""
    config = Config(root=Path(root or Path.cwd()).resolve(), path=path)
    config.app = settings.get("app", "bot:app")
    if not (callable(config.app) or (isinstance(config.app, str) and ":" in config.app)):
        raise ConfigError("app", f'must be "module:attribute" of the async handler, not {config.app!r}')
    config.initial_state = _mapping(settings, "initial_state", {})
    config.session = _section(settings, "session", SESSION_DEFAULTS)
    config.server = _section(settings, "server", SERVER_DEFAULTS)
    config.http = _section(settings, "http", HTTP_DEFAULTS)
    channels = _mapping(settings, "channels", {})
    for name, channel in channels.items():
        if not isinstance(channel, Mapping):
            raise ConfigError(f"channels.{name}", "must be a dict of the channel's settings")
    config.channels = {name: dict(channel) for name, channel in channels.items()}
    config.bot_memory = _section(settings, "bot_memory", BOT_MEMORY_DEFAULTS)
    config.name = settings.get("name")
    if config.name is not None:
        name_bot(config, config.name)
    if settings.get("desk") is not None:
        config.desk = _section(settings, "desk", DESK_DEFAULTS)
    config.extra = custom_values(settings)
    config.middleware = _middleware(settings.get("middleware"))
    config.on_session_start = _hook(settings, "on_session_start")
    config.on_session_end = _hook(settings, "on_session_end")
    _validate(config)
    return config


def _hook(settings: Mapping[str, Any], name: str) -> Any:
    value = settings.get(name)
    if value is None or callable(value) or (isinstance(value, str) and ":" in value):
        return value
    raise ConfigError(name, f'must be "module:function" of an async function taking a context, not {value!r}')


def _validate(config: Config) -> None:
    session = config.session
    expires = session["expires_in"]
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, (int, float)) or expires <= 0):
        raise ConfigError("session.expires_in", f"must be minutes (a positive number) or None, not {expires!r}")
    for name in ("history", "timeout", "lock_timeout", "max_state_size"):
        value = session[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"session.{name}", f"must be a non-negative number, not {value!r}")
    window = session["dedupe_window"]
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not math.isfinite(window) or window <= 0:
        raise ConfigError("session.dedupe_window", f"must be seconds (a positive number), not {window!r}")
    if not isinstance(session["stores"], Mapping):
        raise ConfigError("session.stores", "must be a dict of driver name to its settings")
    from botkit.storage import driver_class  # drivers validate their own block

    store = driver_class(session["driver"])
    store.validate(config.store_settings())
    from botkit.storage import validate_cache

    validate_cache(session)
    port = config.server["port"]
    if isinstance(port, str) and port.isdigit():
        config.server["port"] = port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
        raise ConfigError("server.port", f"must be a port number, not {port!r}")
    ack = config.server["ack_within"]
    if ack is not None and (isinstance(ack, bool) or not isinstance(ack, (int, float)) or ack < 0):
        raise ConfigError("server.ack_within", f"must be seconds (0 or more) or None, not {ack!r}")
    size = config.server["client_max_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ConfigError("server.client_max_size", f"must be a number of bytes, not {size!r}")
    _validate_limits(config.server)
    _validate_desk(config)
    _validate_session_features(config)
    _validate_observability(config.server)


def _validate_desk(config: Config) -> None:
    """The desk needs a secret: its own, or the web channel's JWT key (an HS256 secret)."""
    if config.desk is None:
        return
    timeout = config.desk["timeout"]
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError("desk.timeout", f"must be minutes (a positive number) or None, not {timeout!r}")
    path = config.desk["path"]
    if not isinstance(path, str) or not path.startswith("/") or path.endswith("/"):
        raise ConfigError("desk.path", f'must be a path such as "/desk", not {path!r}')
    if config.desk["secret"] in (None, ""):
        web = config.enabled_channels.get("web") or {}
        key = web.get("jwt_key")
        if not isinstance(key, str) or not key or key.lstrip().startswith("-----BEGIN"):
            raise ConfigError("desk.secret", 'missing: set desk = {"secret": env("DESK_SECRET")} '
                              "(or give the web channel an HS256 jwt_key, which the desk then uses)")
        config.desk["secret"] = key
    elif not isinstance(config.desk["secret"], str):
        raise ConfigError("desk.secret", "must be a string (a long random one)")


def _validate_session_features(config: Config) -> None:
    """Bot memory, the rate limit on every channel, and the bot's name."""
    size = config.bot_memory["max_value_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ConfigError("bot_memory.max_value_size", f"must be a number of bytes (0: no limit), not {size!r}")
    limit = config.session["rate_limit"]
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError("session.rate_limit", f"must be messages a minute (a positive whole number) or None, not {limit!r}")
    notice = config.session["rate_limit_notice"]
    if notice is not None and (not isinstance(notice, str) or not notice.strip()):
        raise ConfigError("session.rate_limit_notice", f"must be a text or None, not {notice!r}")


def _validate_limits(server: dict[str, Any]) -> None:
    """The server's protections: read timeouts, the connection cap, the proxies trusted to name the client."""
    for name in ("header_timeout", "read_timeout"):
        value = server[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"server.{name}", f"must be seconds (a positive number), not {value!r}")
    cap = server["max_connections"]
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ConfigError("server.max_connections", f"must be a positive whole number or None (from the open-file limit), not {cap!r}")
    proxies = server["trusted_proxies"]
    if isinstance(proxies, str) or not isinstance(proxies, (list, tuple)):
        raise ConfigError("server.trusted_proxies", f'must be a list of addresses or networks such as ["10.0.0.0/8"], not {proxies!r}')
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except (TypeError, ValueError):
            raise ConfigError("server.trusted_proxies", f"{proxy!r} is not an IP address or network") from None
    server["trusted_proxies"] = tuple(proxies)


def name_bot(config: Config, name: Any) -> None:
    """Call the bot ``name``: its data moves to its own corner of the store (``botkit.storage.namespace``),
    so that bots sharing a store never mix; its routes go under ``/<name>/`` when a server runs several."""
    if not isinstance(name, str) or not BOT_NAME.match(name):
        raise ConfigError("name", f"must be letters, digits, - or _ (at most 40; it is a URL path segment), not {name!r}")
    from botkit.storage.namespace import namespaced

    config.name = name
    if isinstance(config.session.get("stores"), Mapping):
        config.session["stores"] = namespaced(config.session["stores"], name)


def _validate_observability(server: dict[str, Any]) -> None:
    if not isinstance(server["metrics"], bool):
        raise ConfigError("server.metrics", f"must be True (GET /metrics) or False, not {server['metrics']!r}")
    if server["log_format"] not in ("text", "json"):
        raise ConfigError("server.log_format", f'must be "text" or "json", not {server["log_format"]!r}')


def _mapping(settings: Mapping[str, Any], name: str, default: Any) -> dict[str, Any]:
    value = settings.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"must be a dict, not {type(value).__name__}")
    return dict(value)


def _section(settings: Mapping[str, Any], name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    section = {**defaults, **_mapping(settings, name, {})}
    for key in section:
        if key not in defaults:
            raise ConfigError(f"{name}.{key}", f"unknown setting; known: {', '.join(defaults)}")
    return section


def _middleware(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or callable(value) or not isinstance(value, (list, tuple)):
        raise ConfigError("middleware", f'must be a list of "module:function" strings or async functions, not {value!r}')
    for item in value:
        if not (callable(item) or (isinstance(item, str) and ":" in item)):
            raise ConfigError("middleware", f'{item!r} is neither "module:function" nor an async function (context, call_next)')
    return list(value)


def load_middleware(config: Config) -> list[Callable[..., Any]]:
    """The ``middleware`` list with its "module:function" strings imported from the config's folder."""
    return [item if callable(item) else _import(config, item, "middleware") for item in config.middleware]


def load_app(config: Config) -> Callable[..., Any]:
    """Import the handler named by ``app`` from the config's folder."""
    target = config.app
    if callable(target):
        app: Callable[..., Any] = target
        return app
    module_name, _, attr = target.partition(":")
    root = str(config.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = sys.modules.get(module_name)
        if module is not None and not _comes_from(module, config.root):
            module = _import_again(module_name, config.root)  # another bot's module of the same name
        else:
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("app", f"cannot import {module_name!r} from {root} ({exc})") from None
    except Exception as exc:
        raise ConfigError("app", f"importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
    handler = getattr(module, attr, None)
    if handler is None:
        raise ConfigError("app", f"module {module_name!r} has no attribute {attr!r}")
    if not callable(handler):
        raise ConfigError("app", f"{target!r} is not callable; it must be `async def {attr}(context)`")
    found: Callable[..., Any] = handler
    return found


def _import(config: Config, target: str, setting: str) -> Callable[..., Any]:
    """``module:attribute`` imported from the config's folder; ConfigError naming ``setting`` otherwise."""
    module_name, _, attr = target.partition(":")
    root = str(config.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(setting, f"cannot import {module_name!r} from {root} ({exc})") from None
    except Exception as exc:
        raise ConfigError(setting, f"importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
    found = getattr(module, attr, None)
    if not callable(found):
        raise ConfigError(setting, f"{target!r} names no function; it must be `async def {attr}(context, call_next)`")
    function: Callable[..., Any] = found
    return function


def _comes_from(module: types.ModuleType, root: Path) -> bool:
    """False when ``root`` holds a module of that name and the one imported is another file."""
    file = getattr(module, "__file__", None)
    relative = Path(*module.__name__.split("."))
    candidates = (root / relative.with_suffix(".py"), root / relative / "__init__.py")
    if file is None or not any(candidate.is_file() for candidate in candidates):
        return True
    return Path(file).resolve() in candidates


def _import_again(module_name: str, root: Path) -> types.ModuleType:
    """``module_name`` from ``root``, when a module of that name from elsewhere (another bot served by
    the same process: ``botkit start --config support/… --config sales/…``) is imported already; kept
    under a name of its own."""
    relative = Path(*module_name.split("."))
    path = root / relative.with_suffix(".py")
    if not path.is_file():
        path = root / relative / "__init__.py"
    if not path.is_file():
        raise ImportError(f"no {relative.with_suffix('.py')} in {root}")
    unique = f"{module_name}@{root}"
    found = sys.modules.get(unique)
    if found is not None:
        return found
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[unique]
        raise
    return module


def _line_of(exc: BaseException, file: Path) -> str:
    tb = exc.__traceback__
    line = getattr(exc, "lineno", None)
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(file):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" line {line}" if line else ""
