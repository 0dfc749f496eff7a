"""Several bots on one server, in process: names, each bot's corner of a shared store, each bot's own
handler module, routes under /<name>/."""
from __future__ import annotations

from pathlib import Path

import pytest

from botkit import Bot
from botkit.app.config import load_app, load_config
from botkit.app.several import several_bots
from botkit.core.errors import ConfigError
from botkit.shell.server import create_several
from botkit.storage.namespace import namespaced
from tests.support import FakeAPI, make_config
from tests.test_telegram import HEADERS, SECRET, TOKEN, update


def write_bot(folder: Path, reply: str, **lines: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "bot.py").write_text(f"async def app(context):\n    await context.send_text({reply!r})\n")
    settings = "".join(f"{name} = {value}\n" for name, value in lines.items())
    (folder / "bot.config.py").write_text('app = "bot:app"\n' + settings)
    return folder / "bot.config.py"


def test_each_bot_is_named_after_its_folder_and_gets_its_own_corner_of_the_store(tmp_path):
    session = '{"driver": "redis", "stores": {"redis": {"prefix": "shared:"}, "postgres": {"table": "bots"}}}'
    configs = several_bots([load_config(write_bot(tmp_path / "support", "s", session=session)),
                            load_config(write_bot(tmp_path / "sales", "x", session=session))])
    assert [config.bot_name for config in configs] == ["support", "sales"]
    support, sales = (config.session["stores"] for config in configs)
    assert support["redis"]["prefix"] == "shared:support:" and sales["redis"]["prefix"] == "shared:sales:"
    assert support["postgres"]["table"] == "bots_support" and sales["postgres"]["table"] == "bots_sales"
    assert support["mongo"]["collection"] == "sessions_support"
    assert support["file"]["dirname"] == str(Path(".session") / "support")


def test_one_bot_alone_keeps_the_store_as_configured(tmp_path):
    [config] = several_bots([load_config(write_bot(tmp_path / "support", "s"))])
    assert config.name is None and config.session["stores"] == {}


def test_a_named_bot_is_namespaced_also_alone(tmp_path):
    config = make_config(tmp_path, name="help-desk", session={"driver": "redis"})
    assert config.store_settings()["prefix"] == "botkit:help-desk:"
    assert config.session["stores"]["postgres"]["table"] == "botkit_sessions_help_desk"


def test_two_bots_of_one_name_are_one_config_error(tmp_path):
    one = load_config(write_bot(tmp_path / "a", "1", name='"support"'))
    two = load_config(write_bot(tmp_path / "b", "2", name='"support"'))
    with pytest.raises(ConfigError, match="two bots are called 'support'"):
        several_bots([one, two])


@pytest.mark.parametrize("bad", ['"has space"', '"a/b"', "5", '""'])
def test_a_name_that_is_no_path_segment_is_a_config_error(tmp_path, bad):
    with pytest.raises(ConfigError, match=r"^name: "):
        load_config(write_bot(tmp_path / "a", "1", name=bad))


def test_a_postgres_table_too_long_once_named_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"session\.stores\.postgres\.table"):
        make_config(tmp_path, name="x" * 40, session={"driver": "postgres", "stores": {"postgres": {"table": "t" * 20}}})


def test_namespaced_leaves_unknown_settings_alone():
    moved = namespaced({"redis": {"url": "redis://h", "prefix": "p:"}}, "n")
    assert moved["redis"] == {"url": "redis://h", "prefix": "p:n:"}


async def test_each_bot_runs_its_own_module_even_with_one_name(tmp_path):
    support = load_config(write_bot(tmp_path / "support", "from support"))
    sales = load_config(write_bot(tmp_path / "sales", "from sales"))
    assert load_app(support) is not load_app(sales)
    assert load_app(support) is load_app(support)

    api = FakeAPI()
    await api.start()
    try:
        bots = []
        for config in several_bots([support, sales]):
            config.channels = {"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": api.url}}
            bots.append(Bot(config))
        from aiohttp.test_utils import TestClient, TestServer

        async with TestClient(TestServer(create_several(bots), host="127.0.0.1")) as client:
            for n, name in enumerate(("support", "sales", "support")):
                response = await client.post(f"/{name}/webhooks/telegram", json=update(n), headers=HEADERS)
                assert response.status == 200
            assert (await client.post("/webhooks/telegram", json=update(), headers=HEADERS)).status == 404
            health = await (await client.get("/healthz")).json()
            assert sorted(health["bots"]) == ["sales", "support"] and health["status"] == "ok"
        assert [call.json["text"] for call in api.calls_to("/sendMessage")] == ["from support", "from sales", "from support"]
    finally:
        await api.close()


async def test_each_bot_has_its_desk_under_its_name_and_logs_its_own_paths(tmp_path, caplog):
    desk = '{"secret": "desk-secret-of-the-several-bots-test"}'
    support = load_config(write_bot(tmp_path / "support", "s", desk=desk))
    sales = load_config(write_bot(tmp_path / "sales", "x"))
    api = FakeAPI()
    await api.start()
    try:
        bots = []
        for config in several_bots([support, sales]):
            config.channels = {"telegram": {"access_token": TOKEN, "secret_token": SECRET, "api_base": api.url}}
            bots.append(Bot(config))
        from aiohttp.test_utils import TestClient, TestServer

        caplog.set_level("INFO", logger="botkit")
        async with TestClient(TestServer(create_several(bots), host="127.0.0.1")) as client:
            auth = {"Authorization": "Bearer desk-secret-of-the-several-bots-test"}
            response = await client.get("/support/desk/api/conversations", headers=auth)
            assert response.status == 200 and await response.json() == {"conversations": []}
            assert (await client.get("/desk/api/conversations", headers=auth)).status == 404
            assert (await client.get("/sales/desk/api/conversations", headers=auth)).status == 404
            page = await client.get("/support/desk", allow_redirects=True)
            assert page.status == 200 and str(page.url).endswith("/support/desk/")
            assert (await client.get("/support/desk/static/desk.js")).status == 200
        served = [record.getMessage() for record in caplog.records if record.getMessage().startswith("botkit serving")]
        assert any("telegram at /support/webhooks/telegram" in line and "desk at /support/desk" in line for line in served)
        assert any("telegram at /sales/webhooks/telegram" in line and "desk" not in line for line in served)
    finally:
        await api.close()
