"""Data a session store refuses for good is not "store unavailable": the webhook answers 200, the inbox
entry is acknowledged, the session stays as it was, and nothing runs the handler over and over.

On PostgreSQL, what used to be refused is now stored: text holding U+0000 (jsonb cannot hold it; the
record, the history and the payloads keep it exactly) and a session key too long for a btree index (a
3,000-character user id: stored under a hash, the record keeps the real key)."""
from __future__ import annotations

import asyncio
import logging
import secrets
import time

import asyncpg
import orjson
import pytest

from botkit import Bot
from botkit.core.errors import StoreRefused
from botkit.core.events import Event
from botkit.storage.postgres import PostgresStore
from tests.stores import POSTGRES_DSN, bot_on, postgres_store, text_event, unique, unreachable
from tests.support import Served, eventually, make_config

NUL_TEXT = "a\u0000b"
TRICKY = ["a\u0000b", "\u0000", "\ufdd0", "\ufdd00", "\ufdd0\u0000\ufdd0", "x\ufdd0\ufdd0\u00000", "\\u0000", "plain"]
"""Strings around the escape the PostgreSQL driver uses for U+0000 (the noncharacter U+FDD0): each must
come back exactly as it went in."""


async def drop_tables(table: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        for suffix in ("_history", "", "_counters", "_inbox", "_inbox_ready"):
            await conn.execute(f'DROP TABLE IF EXISTS "{table}{suffix}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def pg_table():
    try:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=3)
        await conn.close()
    except Exception as exc:
        unreachable(f"PostgreSQL at {POSTGRES_DSN}", exc)
    table = unique("botkit_refused_")
    yield table
    await drop_tables(table)


def on_postgres(table: str, **session) -> dict:
    return {"driver": "postgres", "stores": {"postgres": {"dsn": POSTGRES_DSN, "table": table}}, **session}


# -- U+0000 on PostgreSQL ---------------------------------------------------------------------------

async def echo(context) -> None:
    """Keeps what the user said in the state (as a value and as a key) and says it back."""
    said = context.event.text if context.event.text is not None else context.event.payload
    count = context.state.get("count", 0) + 1
    context.set_state({"count": count, "last": said, "seen": {said: count}})
    await context.send_text(f"you said {said}")


async def new_web_session(served: Served) -> str:
    response = await served.post("/api/session")
    assert response.status == 201, await response.text()
    return (await response.json())["token"]


async def test_a_web_chat_message_holding_u0000_is_answered_once_and_kept_exactly_on_postgres(tmp_path, pg_table):
    ran = []

    async def handler(context):
        ran.append(context.event.text)
        await echo(context)

    bot = Bot(make_config(tmp_path, channels={"web": {}}, session=on_postgres(pg_table)), handler=handler)
    async with Served(bot) as served:
        token = await new_web_session(served)
        auth = {"Authorization": f"Bearer {token}"}
        answers = []
        for _ in range(3):  # the client sends again after anything but a 200, as a platform would
            response = await served.post("/api/chat", json={"text": NUL_TEXT, "id": "msg-1"}, headers=auth)
            answers.append((response.status, await response.json()))
        assert answers[0][0] == 200
        assert [m["text"] for m in answers[0][1]["messages"]] == [f"you said {NUL_TEXT}"]
        assert [status for status, _ in answers] == [200, 200, 200]
        assert [body["messages"] for _, body in answers[1:]] == [[], []], "the reply came again"
        await asyncio.sleep(1.5)  # an inbox entry left unacknowledged would be tried again within a second
        assert ran == [NUL_TEXT], "the handler ran more than once"

        payload = await served.post("/api/chat", json={"payload": "p\u0000\ufdd0q"}, headers=auth)
        assert payload.status == 200
        history = await (await served.get("/api/history", headers=auth)).json()
        session_id = token.split(".")[0]
        session = await bot.load_session(f"web:{session_id}")
    assert [(m["dir"], m.get("text"), m.get("payload")) for m in history["messages"]] == [
        ("in", NUL_TEXT, None), ("out", f"you said {NUL_TEXT}", None),
        ("in", None, "p\u0000\ufdd0q"), ("out", "you said p\u0000\ufdd0q", None)]
    assert session is not None
    assert session.state == {"count": 2, "last": "p\u0000\ufdd0q", "seen": {"p\u0000\ufdd0q": 2}}


async def test_u0000_and_its_escape_round_trip_through_the_record_and_the_history(tmp_path, pg_table):
    store = PostgresStore({"dsn": POSTGRES_DSN, "table": pg_table}, clock=time.time)
    await store.open()
    try:
        bot = bot_on(store, tmp_path, handler=echo, history=50)
        for n, text in enumerate(TRICKY):
            await bot.dispatch([text_event(bot, "test:nul", text=text, event_id=f"e{n}\u0000")])
        again = await bot.dispatch([text_event(bot, "test:nul", text="again", event_id="e0\u0000")])
        record = await store.load("test:nul")
        history = await store.history("test:nul")
    finally:
        await store.close()
    assert again == ["duplicate"]
    assert record["state"] == {"count": len(TRICKY), "last": "plain", "seen": {"plain": len(TRICKY)}}
    assert [(e["dir"], e["text"]) for e in history] == [
        (direction, said) for text in TRICKY for direction, said in (("in", text), ("out", f"you said {text}"))]
    assert record["parts"]["dedupe"]["handled"] == [f"e{n}\u0000" for n in range(len(TRICKY))]


# -- a key longer than a btree index entry ----------------------------------------------------------

TOKEN = "EAAGpage-token+/="
APP_SECRET = "0123456789abcdef0123456789abcdef"
PAGE_ID = "1029384756"


def messenger_delivery(psid: str, mid: str, text: str) -> tuple[bytes, dict[str, str]]:
    import hashlib
    import hmac

    now_ms = int(time.time() * 1000)
    body = orjson.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": now_ms, "messaging": [
        {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms, "message": {"mid": mid, "text": text}}]}]})
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}


async def test_a_3000_character_messenger_sender_id_is_saved_and_counted(tmp_path, pg_table, fake_api):
    from tests.support import counter

    psid = secrets.token_hex(1500)  # random: PostgreSQL cannot compress it under the btree limit
    channel = {"access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": "v", "api_base": fake_api.url}
    bot = Bot(make_config(tmp_path, channels={"messenger": channel}, session=on_postgres(pg_table),
                          http={"attempts": 1}), handler=counter)
    async with Served(bot) as served:
        for n in (1, 2):
            body, headers = messenger_delivery(psid, f"m_{n}", "hi")
            response = await served.post("/webhooks/messenger", data=body, headers=headers)
            assert response.status == 200
        await fake_api.wait_for(2, "/me/messages")

        async def counted_twice():
            found = await bot.load_session(f"messenger:{psid}")
            return found if found is not None and found.state == {"count": 2} else None

        session = await eventually(counted_twice)
        keys = await bot.store.keys()
    assert [call.json["message"]["text"] for call in fake_api.calls_to("/me/messages")] == ["Count: 1", "Count: 2"]
    assert all(call.json["recipient"] == {"id": psid} for call in fake_api.calls_to("/me/messages"))
    assert session is not None and session.state == {"count": 2} and session.id == f"messenger:{psid}"
    assert f"messenger:{psid}" in keys


async def test_a_long_key_is_stored_under_a_stable_hash_and_the_record_keeps_the_real_key(tmp_path, pg_table):
    key = "test:" + secrets.token_hex(1500)
    async with postgres_store(tmp_path) as store:
        bot = bot_on(store, tmp_path)
        await bot.dispatch([text_event(bot, key, event_id="1")])
        await bot.dispatch([text_event(bot, key, event_id="2")])
        record = await store.load(key)
        history = await store.history(key)
        keys = await store.keys()
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            stored = await conn.fetch(f'SELECT key, record->>\'key\' AS real FROM "{store.settings["table"]}"')
        finally:
            await conn.close()
        deleted = await store.delete(key)
        gone = await store.load(key)
    assert record["key"] == key and record["state"] == {"count": 2}
    assert [e["text"] for e in history] == ["hi", "Count: 1", "hi", "Count: 2"]
    assert keys == [key]
    [row] = stored
    assert row["real"] == key and len(row["key"]) < 100 and row["key"] != key
    assert deleted and gone is None


# -- a refusal for good: 200, acknowledged, nothing saved, no retry storm ---------------------------

class Refusing(PostgresStore):
    """PostgreSQL, refusing for good every save whose state holds ``poison`` (as it refuses data it
    cannot hold); ``refuse_all`` refuses every save."""

    refuse_all = False
    refusals = 0

    async def _write(self, record, owner, appended):
        if self.refuse_all or "poison" in orjson.dumps(record.get("state")).decode():
            type(self).refusals += 1
            raise StoreRefused("PostgreSQL refused the data for good (UntranslatableCharacterError, SQLSTATE 22P05)")
        return await super()._write(record, owner, appended)


TELEGRAM_TOKEN = "123456:ABC-test-token"
SECRET = "s3cret-token_value"


def update(update_id: int, text: str, chat_id: int = 16423) -> dict:
    return {"update_id": update_id, "message": {"message_id": update_id, "date": int(time.time()), "text": text,
                                                "chat": {"id": chat_id, "type": "private"}}}


@pytest.fixture
async def refusing(tmp_path, pg_table, fake_api):
    Refusing.refusals = 0
    store = Refusing({"dsn": POSTGRES_DSN, "table": pg_table}, clock=time.time)
    ran = []

    async def handler(context):
        ran.append(context.event.text)
        count = context.state.get("count", 0) + 1
        context.set_state({"count": count, "said": context.event.text})
        await context.send_text(f"Count: {count}")

    channels = {"telegram": {"access_token": TELEGRAM_TOKEN, "secret_token": SECRET, "api_base": fake_api.url}}
    bot = Bot(make_config(tmp_path, channels=channels, session=on_postgres(pg_table), http={"attempts": 1}),
              handler=handler, store=store)
    bot.ran = ran
    yield bot
    Refusing.refuse_all = False


async def post(served: Served, body: dict):
    response = await served.post("/webhooks/telegram", json=body, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    await response.read()
    return response.status


async def test_a_save_refused_for_good_is_200_once_logged_and_redeliveries_are_duplicates(refusing, fake_api, caplog):
    bot = refusing
    caplog.set_level(logging.INFO)
    async with Served(bot) as served:
        assert await post(served, update(1, "hello")) == 200
        statuses = [await post(served, update(2, "poison pill")) for _ in range(3)]  # the same update 3 times
        await asyncio.sleep(1.5)  # an unacknowledged inbox entry would be tried again within a second
        depth = (await bot.inbox.stats()).depth
        assert await post(served, update(3, "after")) == 200
        session = await bot.load_session("telegram:16423")
        history = await session.load_history()
    assert statuses == [200, 200, 200]
    assert bot.ran == ["hello", "poison pill", "after"], "the refused update ran again"
    assert Refusing.refusals == 1
    assert depth == 0, "the refused entry was left in the inbox"
    assert session.state == {"count": 2, "said": "after"}, "the refused update changed the session"
    assert [e["text"] for e in history] == ["hello", "Count: 1", "after", "Count: 2"]
    sent = [call.json["text"] for call in fake_api.calls_to("sendMessage")]
    assert sent == ["Count: 1", "Count: 2", "Count: 2"]  # the refused run's reply went out, once
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "refused" in errors[0].getMessage()
    assert all("poison" not in r.getMessage() for r in caplog.records), "the message text reached the log"
    assert not any("unavailable" in r.getMessage() for r in caplog.records)


async def test_a_store_refusing_every_save_answers_200_and_is_not_retried(refusing, fake_api):
    bot = refusing
    Refusing.refuse_all = True
    async with Served(bot) as served:
        assert await post(served, update(1, "hello")) == 200
        await asyncio.sleep(1.5)
        depth = (await bot.inbox.stats()).depth
        session = await bot.load_session("telegram:16423")
    assert bot.ran == ["hello"] and Refusing.refusals == 2  # the save, then the attempt to remember the id
    assert depth == 0 and session is None


async def test_without_the_inbox_a_refused_save_is_200_too(refusing, fake_api):
    bot = refusing
    bot.config.server["ack_within"] = None
    async with Served(bot) as served:
        assert [await post(served, update(7, "poison")) for _ in range(2)] == [200, 200]
        session = await bot.load_session("telegram:16423")
    assert bot.ran == ["poison"]
    assert session is not None and session.state == {"count": 0} and session.message_count == 0


async def test_postgresql_errors_about_the_data_are_refusals_not_outages(tmp_path, pg_table, caplog):
    async with postgres_store(tmp_path) as store:
        with pytest.raises(StoreRefused) as nul:
            await store._call("fetchval", "SELECT $1::text", "secret\u0000text")
        with pytest.raises(StoreRefused) as big:
            await store._call("execute", "CREATE TEMP TABLE IF NOT EXISTS t (k text PRIMARY KEY); "
                                         "INSERT INTO t VALUES (" + "'" + secrets.token_hex(1500) + "')")
        with pytest.raises(StoreRefused):
            await store._call("fetchval", "SELECT $1::int", "seven")
    assert "CharacterNotInRepertoire" in str(nul.value) and "secret" not in str(nul.value)
    assert "ProgramLimitExceeded" in str(big.value)


async def test_a_refused_begin_is_a_failed_event_not_an_outage(tmp_path, pg_table):
    class RefusesToBegin(PostgresStore):
        async def _take(self, key):
            raise StoreRefused("PostgreSQL refused the data for good (ProgramLimitExceededError, SQLSTATE 54000)")

    store = RefusesToBegin({"dsn": POSTGRES_DSN, "table": pg_table}, clock=time.time)
    await store.open()
    try:
        bot = bot_on(store, tmp_path)
        outcomes = await bot.dispatch([Event("test", "text", "test:1", text="hi", id="1", channel="test",
                                             meta={"sender": bot.collect})])
    finally:
        await store.close()
    assert outcomes == ["failed"] and bot.sent == []


async def test_mongodb_refusing_a_document_is_a_refusal_not_an_outage():
    """No MongoDB server here: the driver's collection is a stand-in raising what PyMongo raises."""
    from pymongo.errors import InvalidDocument, OperationFailure, WriteError

    from botkit.storage.base import NOTHING
    from botkit.storage.mongo import MongoStore

    class Sessions:
        def __init__(self, error: Exception) -> None:
            self.error = error

        async def update_one(self, *args, **kwargs):
            raise self.error

    store = MongoStore({}, clock=time.time)
    record = {"version": 1, "key": "test:1", "created_at": 0.0, "last_activity": 0.0, "expires_at": None,
              "state": {"secret\u0000key": 1}, "parts": {}}
    store.sessions = Sessions(InvalidDocument("key 'secret\\x00key' must not contain the NULL byte"))
    with pytest.raises(StoreRefused) as nul:
        await store._write(record, store.owner, NOTHING)
    store.sessions = Sessions(WriteError("Resulting document after update is larger than 16777216", 17419))
    with pytest.raises(StoreRefused):
        await store._write(record, store.owner, NOTHING)
    store.sessions = Sessions(OperationFailure("not primary", 10107))
    with pytest.raises(OperationFailure):  # not about the data: the dispatcher answers 503, the platform retries
        await store._write(record, store.owner, NOTHING)
    assert "secret" not in str(nul.value) and "InvalidDocument" in str(nul.value)
