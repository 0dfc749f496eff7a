"""What the bot does around human mode (botkit.engine.handoff), for every channel at once: the list of
conversations waiting for a human (``HandoffIndex``), the agents' moves (claim, reply, hand back), each
run under the session's lease like any event, and the notices the desks hear live over the store's bus
(topic ``desk``) from whichever worker handled the conversation."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from botkit.adapters.base import Adapter
from botkit.app.handoff_index import HandoffIndex
from botkit.core.errors import BotkitError
from botkit.core.keys import shown
from botkit.core.session import HANDOFF, Session
from botkit.engine import handoff
from botkit.engine.context import Context
from botkit.engine.dispatcher import Outcome
from botkit.storage.base import SessionStore
from botkit.storage.live import Bus

log = logging.getLogger("botkit.handoff")

TOPIC = "desk"
"""The bus topic of the desks' live notices: ``{"kind": "handoff" | "claim" | "message" | "handback", "session_key", …}``."""


class Verdict(StrEnum):
    DONE = "done"
    TAKEN = "taken"
    """Another agent holds the conversation."""
    GONE = "gone"
    """The conversation is not (or no longer) in human mode."""


class HandoffBot(Protocol):
    store: SessionStore
    bus: Bus
    clock: Callable[[], float]

    @property
    def handler(self) -> Callable[[Context], Awaitable[Any]]: ...

    async def load_session(self, session_key: str) -> Session | None: ...

    async def run(self, session_key: str, handler: Callable[[Any], Awaitable[Any]], *, event_type: str = ...,
                  data: Mapping[str, Any] | None = ..., event_id: str | None = ...) -> Outcome: ...

    def channel_for(self, session: Session) -> Adapter: ...


@dataclass(slots=True)
class Conversation:
    session_key: str
    channel: str | None
    reason: str | None
    claimed_by: str | None
    waiting_since: float

    def to_dict(self) -> dict[str, Any]:
        return {"session_key": self.session_key, "channel": self.channel, "reason": self.reason,
                "claimed_by": self.claimed_by, "waiting_since": self.waiting_since}


def _conversation(session: Session) -> Conversation:
    part = session.parts.get(HANDOFF) or {}
    return Conversation(session.id, part.get("channel") or session.channel, part.get("reason"), part.get("agent"),
                        float(part.get("since") or session.last_activity))


class Handoffs:
    """The bot's side of human mode; ``botkit.Bot`` delegates its ``HandoffHost`` calls here."""

    def __init__(self, bot: HandoffBot, timeout: float | None) -> None:
        self.bot = bot
        self.timeout = timeout
        """Seconds after which a conversation nobody answered goes back to the bot (None: never)."""
        self.index = HandoffIndex(bot.store, bot.clock)

    # -- the engine's hooks (after the session's change is saved) ----------------------------------

    async def handed_off(self, session: Session) -> None:
        conversation = _conversation(session)
        await self.index.add(session.id, {"reason": conversation.reason, "since": conversation.waiting_since,
                                          "channel": conversation.channel})
        await self._notify("handoff", session.id, conversation=conversation.to_dict())
        await self._platform(session, "hand_off", conversation.reason)

    async def handed_back(self, session: Session, by: str) -> None:
        await self.index.remove(session.id)
        await self._notify("handback", session.id, by=by)
        await self._platform(session, "hand_back", by)

    async def human_message(self, session: Session, entry: dict[str, Any]) -> None:
        await self._notify("message", session.id, entry=entry)

    # -- what agents do ----------------------------------------------------------------------------

    async def conversations(self) -> list[Conversation]:
        """The conversations in human mode, the longest waiting first."""
        found = []
        for key in await self.index.entries():
            session = await self.bot.load_session(key)
            if session is not None and session.human and not handoff.expired(session, self.bot.clock(), self.timeout):
                found.append(_conversation(session))
        return sorted(found, key=lambda conversation: conversation.waiting_since)

    async def conversation(self, key: str) -> tuple[Conversation, list[dict[str, Any]]] | None:
        """A conversation in human mode and its transcript, or None."""
        session = await self.bot.load_session(key)
        if session is None or not session.human:
            return None
        return _conversation(session), await session.load_history()

    async def claim(self, key: str, agent: str) -> Verdict:
        async def take(context: Context, part: dict[str, Any]) -> None:
            part.update(agent=agent, active_at=self.bot.clock())

        verdict = await self._act(key, agent, "claim", take)
        if verdict is Verdict.DONE:
            await self._notify("claim", key, agent=agent)
        return verdict

    async def reply(self, key: str, agent: str, text: str) -> Verdict:
        """Send ``text`` to the conversation through its own channel, as ``agent`` (who must hold it, or
        takes it when nobody does); kept in its history."""
        sent: dict[str, Any] = {}

        async def send(context: Context, part: dict[str, Any]) -> None:
            session = context.session
            await context.sender.send_text(text)
            now = self.bot.clock()
            part.update(agent=agent, active_at=now)
            session.remember({"dir": "out", "type": "text", "text": text, "at": now, "agent": agent})
            sent.update(session.log.pending[-1] if session.log.pending else {"dir": "out", "text": text, "at": now})

        verdict = await self._act(key, agent, "reply", send)
        if verdict is Verdict.DONE:
            await self._notify("message", key, entry=sent)
        return verdict

    async def hand_back(self, key: str, agent: str) -> Verdict:
        """Give the conversation back to the bot: the handler runs at once on a ``handback`` event."""
        async def give_back(context: Context, part: dict[str, Any]) -> None:
            handoff.end(context.session)
            context.after_save.append(lambda: self.handed_back(context.session, "agent"))
            try:
                await self.bot.handler(context)
            except Exception:
                log.exception("the handler raised on the handback of %s; the conversation is the bot's again", shown(key))

        return await self._act(key, agent, "handback", give_back)

    async def _act(self, key: str, agent: str, action: str,
                   move: Callable[[Context, dict[str, Any]], Awaitable[None]]) -> Verdict:
        """Run an agent's ``move`` under the session's lease, if ``agent`` may act on the conversation
        (nobody else holds it); GONE when it is not in human mode, TAKEN when another agent holds it."""
        verdict = Verdict.GONE

        async def run(context: Context) -> None:
            nonlocal verdict
            part = _may_act(context.session, agent)
            if isinstance(part, Verdict):
                verdict = part
                return
            await move(context, part)
            verdict = Verdict.DONE

        event_type = "handback" if action == "handback" else "desk"
        outcome = await self.bot.run(key, run, event_type=event_type, data={"action": action, "agent": agent, "by": "agent"})
        if outcome is not Outcome.HANDLED:
            raise BotkitError(f"the desk's {action} on {shown(key)} was not saved ({outcome}; see the log)")
        return verdict

    async def _notify(self, kind: str, key: str, **data: Any) -> None:
        try:
            await self.bot.bus.publish(TOPIC, {"kind": kind, "session_key": key, **data})
        except Exception as exc:
            log.warning("could not tell the desks about the %s of %s: %s", kind, shown(key), exc)

    async def _platform(self, session: Session, move: str, detail: str | None) -> None:
        """The platform's own handover (Messenger's Handover Protocol), where the channel has one."""
        try:
            channel = self.bot.channel_for(session)
        except BotkitError:
            return  # no channel serves it (any more): nothing to tell a platform
        try:
            await getattr(channel, move)(session, detail)
        except Exception:
            log.exception("the channel's %s of %s failed", move, shown(session.id))


def _may_act(session: Session, agent: str) -> dict[str, Any] | Verdict:
    """The conversation's handoff part when ``agent`` may act on it (nobody holds it, or they do), else
    why not."""
    part: dict[str, Any] | None = session.parts.get(HANDOFF)
    if not part:
        return Verdict.GONE
    if part.get("agent") not in (None, agent):
        return Verdict.TAKEN
    return part
