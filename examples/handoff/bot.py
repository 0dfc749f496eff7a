"""A bot that hands the conversation to a human when the user writes "human" (docs/handoff.md).

While a human holds the conversation this handler does not run; when the agent hands it back (or the
desk's timeout does), it gets a ``handback`` event first.
"""
from __future__ import annotations


async def app(context) -> None:
    event = context.event
    seen = [*context.state.get("seen", []), str(event.type)]
    context.set_state({"seen": seen[-20:]})
    if event.type == "handback":
        await context.send_text("You are back with the bot. Write \"human\" to talk to a person again.")
        return
    if not event.is_text:
        return
    if event.text.strip().lower() == "human":
        await context.send_text("Connecting you to a person; they will answer here.")
        await context.handoff(reason="asked for a human")
        return
    await context.send_text(f"Bot: you said {event.text!r}. Write \"human\" to talk to a person.")
