"""What a conversation must remember of the buttons the bot sent, kept in the session's ``choices`` part.

- The numbered list of the text fallback (SMS, WhatsApp through Twilio) and the titles of reply
  keyboards (Telegram's quick replies, Teams' suggested actions) are *offered*: the next message that is
  one of the numbers or titles becomes the ``payload`` event of that button. Lists sent before the user's
  next message are numbered on (the second list of a turn starts at 3 when the first had 2), so every
  number names one button. Any message of the user ends the offer, so a number with no list pending
  stays plain text.
- A payload too long for the platform (Telegram's 64-byte ``callback_data``) is *kept*: the button
  carries a short token and the press is mapped back to the payload.
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from botkit.core.errors import BotkitError
from botkit.core.events import Event
from botkit.core.messages import Button
from botkit.core.session import Session

PART = "choices"
TOKEN_PREFIX = "~bk"
"""Starts every kept payload's token; a payload that itself starts so is kept too, never sent as is."""
KEPT = 200
"""Long payloads remembered per session, the oldest forgotten first."""
USER_MESSAGES = frozenset({"text", "image", "audio", "video", "file", "location", "sticker"})
"""What the user says: any of them ends an offer (a press of another button does not: a reply keyboard
stays up beside an inline one)."""


def next_number(session: Session | None) -> int:
    """The number the next offered button gets."""
    return 1 + len((session.parts.get(PART) or {}).get("offered") or []) if session is not None else 1


def offer(session: Session | None, buttons: Sequence[Button]) -> None:
    """Remember the postback buttons just listed, after those offered since the user's last message."""
    if session is None:
        raise BotkitError("a numbered list of buttons needs the conversation's session (send it through the context)")
    offered = [[b.title, b.payload] for b in buttons if b.payload is not None]
    if offered:
        session.part(PART).setdefault("offered", []).extend(offered)


def keep(session: Session | None, payload: str) -> str:
    """A short token standing for ``payload`` (the same token for the same payload)."""
    if session is None:
        raise BotkitError("a payload longer than the platform takes needs the conversation's session "
                          "(send it through the context)")
    digest = base64.urlsafe_b64encode(hashlib.sha256(payload.encode()).digest()[:15]).decode()
    token = TOKEN_PREFIX + digest
    kept = session.part(PART).setdefault("kept", {})
    kept.pop(token, None)
    kept[token] = payload
    while len(kept) > KEPT:
        del kept[next(iter(kept))]
    return token


def answer(session: Session, event: Event) -> None:
    """Turn ``event`` into the ``payload`` event of the button it answers, if it answers one."""
    part = session.parts.get(PART)
    if not part:
        return
    if event.type == "payload" and isinstance(event.payload, str) and event.payload.startswith(TOKEN_PREFIX):
        found = (part.get("kept") or {}).get(event.payload)
        if found is not None:
            event.payload = found
        return
    if event.type not in USER_MESSAGES:
        return  # a delivery receipt or a status callback answers nothing
    offered = part.pop("offered", None)
    if offered is None or event.type != "text" or not isinstance(event.text, str):
        return
    said = event.text.strip()
    for number, (title, payload) in enumerate(offered, 1):
        if said == str(number) or said.casefold() == title.casefold():
            event.type, event.payload = "payload", payload
            event.data["title"] = title
            return
