from __future__ import annotations

import pytest

from tests.support import FakeAPI


@pytest.fixture
async def fake_api():
    api = FakeAPI()
    await api.start()
    yield api
    await api.close()
