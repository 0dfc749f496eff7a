"""Human mode on every session driver, seen from two processes (two bots over one store): the list of
conversations waiting for a human, and a claim that only one agent wins."""
from __future__ import annotations

import asyncio

import pytest

from botkit.app.handoffs import Verdict
from tests.stores import bot_on, file_store, memory_store, mongo_store, postgres_store, redis_store, text_event

DRIVERS = {"memory": memory_store, "file": file_store, "redis": redis_store, "postgres": postgres_store, "mongo": mongo_store}


async def hand_off_on_human(context) -> None:
    if context.event.type == "handback":
        context.set_state({"back": True})
    elif context.event.text == "human":
        await context.handoff(reason="asked")


@pytest.mark.parametrize("driver", list(DRIVERS))
async def test_every_process_sees_the_handoffs_and_one_agent_wins_a_claim(driver, tmp_path):
    async with DRIVERS[driver](tmp_path) as store:
        other_store = store.second() if getattr(store, "second", None) else store
        if other_store is not store:
            await other_store.open()
        first, second = bot_on(store, tmp_path, hand_off_on_human), bot_on(other_store, tmp_path / "2", hand_off_on_human)
        try:
            for key in ("test:1", "test:2"):
                await first.dispatch([text_event(first, key, "human")])
            listed = await second.handoffs.conversations()
            assert [(c.session_key, c.reason, c.claimed_by) for c in listed] == [("test:1", "asked", None),
                                                                                ("test:2", "asked", None)]
            verdicts = await asyncio.gather(first.handoffs.claim("test:1", "ana"), second.handoffs.claim("test:1", "bo"))
            assert sorted(verdicts) == [Verdict.DONE, Verdict.TAKEN]
            winner = "ana" if verdicts[0] is Verdict.DONE else "bo"
            loser = "bo" if winner == "ana" else "ana"
            assert (await first.handoffs.conversations())[0].claimed_by == winner
            assert await second.handoffs.hand_back("test:1", loser) is Verdict.TAKEN
            assert await second.handoffs.hand_back("test:1", winner) is Verdict.DONE
            assert [c.session_key for c in await first.handoffs.conversations()] == ["test:2"]
            assert (await first.load_session("test:1")).state == {"count": 0, "back": True}
            assert await first.handoffs.claim("test:1", winner) is Verdict.GONE
        finally:
            if other_store is not store:
                await other_store.close()
