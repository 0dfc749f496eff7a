"""botkit's pytest plugin (entry point ``pytest11``): the ``bot_tester`` fixture.

```python
async def test_counts(bot_tester):
    await bot_tester.send("hi")
    assert bot_tester.replies[-1].text == "Count: 1"
```

The fixture reads ``bot.config.py`` from the test's folder (or the nearest folder above it, up to the
rootdir), or ``--bot-config PATH``. An ``async def`` test that uses it needs no other plugin: this one runs
it in an event loop, the bot started before the test and stopped after it. With pytest-asyncio (auto mode,
or a test marked ``asyncio``) pytest-asyncio runs the test, and the bot runs in its loop.

Options, most specific first: ``@pytest.mark.bot_tester(channel=…, user=…, driver=…, config=…)`` on the
test, an indirect parameter (``@pytest.mark.parametrize("bot_tester", ["telegram", "web"], indirect=True)``
names the channel), then ``--bot-config``, ``--bot-channel`` and ``--bot-driver``.

This module imports nothing of botkit until a test asks for the fixture: installing botkit costs other
projects' test runs nothing.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

FIXTURE = "bot_tester"
CONFIG_NAME = "bot.config.py"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("botkit", "botkit's bot_tester fixture")
    group.addoption("--bot-config", metavar="PATH", default=None,
                    help="the bot.config.py (or its folder) bot_tester runs; default: the one in the test's folder")
    group.addoption("--bot-channel", metavar="NAME", default=None,
                    help="the channel bot_tester talks through (telegram, web, …); default: the config's first")
    group.addoption("--bot-driver", metavar="NAME", default=None,
                    help="the session driver bot_tester runs on: memory (default), config, file, redis, …")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bot_tester(channel=None, user=None, driver=None, config=None): "
                                       "options of botkit's bot_tester fixture for this test")


@pytest.fixture
def bot_tester(request: pytest.FixtureRequest) -> Any:
    """A ``botkit.testing.BotTester`` on the test's bot, running while an ``async def`` test runs."""
    from botkit.testing import BotTester

    marker = request.node.get_closest_marker("bot_tester")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    param = getattr(request, "param", None)
    if isinstance(param, dict):
        options = {**param, **options}
    elif param is not None:
        options.setdefault("channel", param)
    given = options.pop("config", None) or request.config.getoption("--bot-config")
    if given is not None:
        config = Path(request.config.invocation_params.dir, given)
    else:
        config = _config_near(request.path.parent, request.config.rootpath)
    options.setdefault("channel", request.config.getoption("--bot-channel"))
    options.setdefault("driver", request.config.getoption("--bot-driver") or "memory")
    return BotTester(config, **options)


def _config_near(folder: Path, rootpath: Path) -> Path:
    """``bot.config.py`` in ``folder`` or the nearest folder above it, up to ``rootpath``."""
    for candidate in (folder, *folder.parents):
        if (candidate / CONFIG_NAME).is_file():
            return candidate / CONFIG_NAME
        if candidate == rootpath:
            break
    raise pytest.UsageError(f"bot_tester: no {CONFIG_NAME} in {folder} or above it (up to {rootpath}); "
                            "pass --bot-config PATH")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Around an ``async def`` test that uses the fixture: start the bot first, stop it after, in the loop
    the test runs in (whoever runs it)."""
    test = getattr(item, "obj", None)
    funcargs = getattr(item, "funcargs", {})
    if FIXTURE not in funcargs or not inspect.iscoroutinefunction(test):
        return (yield)
    item.obj = _running(test, funcargs[FIXTURE])  # type: ignore[attr-defined]
    try:
        return (yield)
    finally:
        item.obj = test  # type: ignore[attr-defined]


def _running(test: Callable[..., Any], tester: Any) -> Callable[..., Any]:
    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> Any:
        if getattr(tester, "started", True):  # started by the test's own fixture
            return await test(*args, **kwargs)
        async with tester:
            return await test(*args, **kwargs)

    return run


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test that uses the fixture when no async plugin does (pytest-asyncio hands
    pytest a plain function in its place, so this leaves its tests alone)."""
    test = pyfuncitem.obj
    fixtures = pyfuncitem.fixturenames
    if not inspect.iscoroutinefunction(test) or FIXTURE not in fixtures or "anyio_backend" in fixtures:
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(test(**arguments))
    return True
