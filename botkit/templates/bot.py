"""The counting bot: answers every message with how many it has had from this conversation."""


async def app(context):
    if not context.event.is_message:
        return
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")
