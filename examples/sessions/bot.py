"""A shop bot: "add <item>" fills the cart, "checkout" orders it and ends the session. A session left
with a full cart ends 30 minutes after its last message, and the end hook reminds the user."""


async def on_start(context):
    await context.send_text("Welcome to the shop! Say \"add <item>\", then \"checkout\".")


async def app(context):
    text = (context.event.text or "").strip()
    cart = list(context.state["cart"])
    if text.startswith("add "):
        cart.append(text[4:])
        context.set_state({"cart": cart})
        await context.send_text(f"In your cart: {', '.join(cart)}")
    elif text == "checkout" and cart:
        context.log_event("order_completed", items=len(cart))
        context.set_state({"cart": [], "ordered": cart})
        await context.send_text(f"Ordered {len(cart)} item(s). Thank you!")
        await context.end_session()
    else:
        await context.send_text("Say \"add <item>\" or \"checkout\".")


async def on_end(context):
    """Runs once per session: after checkout (end_session), or when the session expires."""
    cart = context.state["cart"]
    if cart:
        await context.send_text(f"You left {len(cart)} item(s) in your cart: {', '.join(cart)}. They are gone now.")
