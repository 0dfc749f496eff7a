"""Every ```python block of README.md and docs/**/*.md runs here, so a sample a newcomer copies works.

What a block is decides how it runs (CONTRIBUTING.md, "Code samples in the docs"):

- a handler (it defines an async ``app``, a ``flows`` or a ``router``): driven through ``BotTester`` with
  "hi" then "Ada", on the channel its page is about (docs/channels/<channel>.md), else Telegram, with
  ``initial_state = {"count": 0}``; a plain ``app`` must also send nothing for a read receipt;
- tests (``test_*`` functions): run as pytest would, the ``bot_tester`` fixture on the repository's
  bot.config.py, or on the config a ``<!-- sample: test PATH -->`` line names;
- a bot.config.py (it defines only settings) or a block marked ``<!-- sample: config -->``: loaded and
  validated as ``botkit start`` would, each channel with test credentials;
- anything else: executed as a script, in a folder whose bot.config.py serves Telegram against a local
  fake Bot API (a script may ``load_config("bot.config.py")`` and send; a plain one runs in a thread of
  its own, so it may call ``asyncio.run``).

``<!-- sample: skip — reason -->`` on the line before a block leaves it out, with the reason shown.
"""
from __future__ import annotations

import ast
import asyncio
import inspect
import re
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from botkit import Flows, Router, env
from botkit.app.config import config_from_mapping
from botkit.app.registry import adapter_class
from botkit.app.settings import KNOWN
from botkit.testing import BotTester
from botkit.testing.clock import FakeClock
from botkit.testing.platforms import platform_for

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!--\s*sample:\s*(?P<kind>\w+)\s*(?:[—–-]+\s*)?(?P<rest>.*?)\s*-->")
PAGE_CHANNEL = {"line": "line", "messenger": "messenger", "teams": "teams", "telegram": "telegram", "twilio": "sms",
                "web": "web", "whatsapp-cloud": "whatsapp.cloud"}
DEFAULT_TEST_CONFIG = ROOT / "bot.config.py"
MESSAGES = ("hi", "Ada")


@dataclass(frozen=True)
class Sample:
    page: Path
    line: int
    code: str
    kind: str | None
    """From the marker line before the block: skip, config, test, handler or script; None: guessed."""
    detail: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def channel(self) -> str:
        return PAGE_CHANNEL.get(self.page.stem, "telegram") if self.page.parent.name == "channels" else "telegram"


def find_samples() -> list[Sample]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for fence in FENCE.finditer(text):
            before = [line for line in text[:fence.start()].splitlines() if line.strip()]
            marker = MARKER.search(before[-1]) if before else None
            line = text.count("\n", 0, fence.start()) + 1
            found.append(Sample(page, line, textwrap.dedent(fence["code"]), marker["kind"] if marker else None,
                                marker["rest"] if marker else ""))
    return found


SAMPLES = find_samples()


def test_the_samples_are_found() -> None:
    pages = {sample.page.name for sample in SAMPLES}
    assert {"README.md", "getting-started.md", "flows.md", "testing.md", "line.md"} <= pages
    for sample in SAMPLES:
        assert sample.kind in (None, "skip", "config", "test", "handler", "script"), f"{sample.name}: unknown marker"
        assert sample.kind != "skip" or sample.detail, f"{sample.name}: say why the sample is skipped"


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.name for sample in SAMPLES])
async def test_sample(sample: Sample, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_api: Any) -> None:
    if sample.kind == "skip":
        pytest.skip(sample.detail)
    script_folder(tmp_path, fake_api.url)
    monkeypatch.chdir(tmp_path)
    for name, value in SECRETS.items():  # what the samples read with env(): a deployment's secrets
        monkeypatch.setenv(name, value)
    namespace = await execute(sample)
    kind = sample.kind or guess(namespace)
    if kind == "handler":
        await drive(sample, handler_of(namespace))
    elif kind == "test":
        await run_tests(sample, namespace, monkeypatch)
    elif kind == "config":
        validate_config(namespace, tmp_path)


SECRETS = {"DESK_SECRET": "desk-secret-of-the-docs-samples"}


def script_folder(folder: Path, api_base: str) -> None:
    """Where a sample runs: a bot.config.py of a bot on Telegram, whose Bot API is a local fake."""
    (folder / "docs_sample_bot.py").write_text("async def app(context):\n    await context.send_text('hi')\n")
    (folder / "bot.config.py").write_text(textwrap.dedent(f"""
        app = "docs_sample_bot:app"
        channels = {{"telegram": {{"access_token": "42:TEST", "secret_token": "s", "api_base": {api_base!r}}}}}
    """))


async def execute(sample: Sample) -> dict[str, Any]:
    """Run the block as a module would run (top-level ``await`` allowed, ``env`` at hand as in bot.config.py)."""
    namespace: dict[str, Any] = {"__name__": "docs_sample", "env": env}
    code = compile(sample.code, sample.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        await eval(code, namespace)
    else:
        await asyncio.to_thread(exec, code, namespace)
    namespace.pop("__builtins__", None)
    return namespace


def guess(namespace: dict[str, Any]) -> str:
    if any(name.startswith("test_") and callable(value) for name, value in namespace.items()):
        return "test"
    if any(callable(namespace.get(name)) for name in ("app", "flows", "router")):
        return "handler"
    settings = settings_of(namespace)
    if settings and set(settings) <= set(KNOWN):
        return "config"
    return "script"


def handler_of(namespace: dict[str, Any]) -> Any:
    for name in ("router", "flows", "app"):
        if callable(namespace.get(name)):
            return namespace[name]
    raise AssertionError("a handler sample defines `app`, `flows` or `router`")


async def drive(sample: Sample, handler: Any) -> None:
    config = config_from_mapping({"initial_state": {"count": 0}}, root=ROOT)
    async with BotTester(config, channel=sample.channel, handler=handler) as bot:
        for text in MESSAGES:
            await bot.send(text)
        assert bot.outbox, f"{sample.name}: the sample answered nothing to {MESSAGES}"
        if isinstance(handler, (Flows, Router)):
            return
        sent = len(bot.outbox)
        await bot.bot.run(bot.session_key, handler, event_type="read")  # Messenger sends receipts beside messages
        await bot.settle()
        assert len(bot.outbox) == sent, f"{sample.name}: the handler answered a read receipt (check event.is_message)"


async def run_tests(sample: Sample, namespace: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    config = (ROOT / sample.detail) if sample.detail else DEFAULT_TEST_CONFIG
    monkeypatch.chdir(config.parent)
    tests = [value for name, value in namespace.items() if name.startswith("test_") and callable(value)]
    for test in tests:
        takes_tester = "bot_tester" in inspect.signature(test).parameters
        for channel in parametrized_channels(test):
            if not takes_tester:
                await test()
                continue
            async with BotTester(config, channel=channel) as bot:
                await test(bot)


def parametrized_channels(test: Any) -> list[str | None]:
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize" and mark.args and mark.args[0] == "bot_tester":
            return list(mark.args[1])
        if mark.name == "bot_tester" and "channel" in mark.kwargs:
            return [mark.kwargs["channel"]]
    return [None]


def settings_of(namespace: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in namespace.items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
            and not (callable(value) and name not in KNOWN) and name != "env"}


def validate_config(namespace: dict[str, Any], root: Path) -> None:
    """As ``botkit start`` checks a bot.config.py: every setting, the driver's, each channel's (with the
    test credentials the fake platforms use in place of the environment's)."""
    config = config_from_mapping(settings_of(namespace), root=root)
    for name, settings in config.channels.items():
        cls = adapter_class(name, settings)
        fake = platform_for(cls)
        assert fake is not None, f"no fake platform for {name}"
        cls.validate(name, fake(name, FakeClock(), lambda *_: None).settings(settings))


def test_a_burning_sample_fails(tmp_path: Path) -> None:
    """The runner catches what the issue saw: a state stepped to but never declared, a receipt answered."""
    flows = Sample(ROOT / "docs/flows.md", 1, textwrap.dedent("""
        from botkit.flows import Flows
        flows = Flows()

        @flows.state("hello")
        async def say_hello(context):
            await context.send_text("Hi!")
            context.update_session_to("goodbye", "say_goodbye")
    """), None, "")
    receipts = Sample(ROOT / "docs/channels/messenger.md", 1, textwrap.dedent("""
        async def app(context):
            await context.send_text("Count")
    """), None, "")
    for sample in (flows, receipts):
        namespace = asyncio.run(execute(sample))
        with pytest.raises(AssertionError):
            asyncio.run(drive(sample, handler_of(namespace)))


