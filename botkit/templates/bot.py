"""The counting bot: answers every message with how many it has had from this conversation; "reset"
starts it over."""


async def app(context):
    if not context.event.is_message:
        return
    if context.event.is_text and context.event.text.lower() == "reset":
        context.reset_state()
        await context.send_text("Forgotten.")
        return
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")
