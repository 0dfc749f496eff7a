"""Welcome back (docs/sessions.md, "Bot memory"): the bot remembers, beyond the session, when it last
saw each user, and how many people it has met. A session expires after 30 idle minutes; the bot memory
does not, so the next session opens with "Welcome back!"."""
from datetime import UTC, datetime


async def app(context):
    if not context.event.is_message:
        return
    memory = context.bot_memory
    last_visit_key = "last_visit:" + context.session.id
    last_visit = await memory.get(last_visit_key)
    if context.session.message_count == 1:  # the first message of this session
        if last_visit is None:
            people = await memory.get("people_met", 0) + 1
            await memory.set("people_met", people)  # not atomic: two first visits at once may count one
            await context.send_text(f"Welcome! First time here? You are visitor number {people}.")
        else:
            await context.send_text(f"Welcome back! Last seen: {last_visit}")
    else:
        await context.send_text(f"You said: {context.event.text or context.event.payload}")
    await memory.set(last_visit_key, datetime.fromtimestamp(context.clock(), UTC).strftime("%Y-%m-%d %H:%M UTC"))
