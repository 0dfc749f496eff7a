from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from tests.support import FakeAPI

PLUGIN = "botkit.testing.pytest_plugin"
if not any(entry.value == PLUGIN for entry in entry_points(group="pytest11")):
    # botkit's pytest plugin (the bot_tester fixture) comes with an installed botkit; an install made
    # before the plugin existed does not name it yet (pip install -e . again), so load it here
    pytest_plugins = [PLUGIN]


@pytest.fixture
async def fake_api():
    api = FakeAPI()
    await api.start()
    yield api
    await api.close()
