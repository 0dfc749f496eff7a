"""An onboarding bot, Stealth style: a question flow, a catch-all that steps back, a re-engagement nudge.

    hello->say_hello → survey->ask_name → survey->get_name → survey->ask_colour → survey->get_colour
                                                                   ↘ (no answer after a while) reengage->nudge
    → goodbye->say_goodbye → back to hello->say_hello

Run it with `botkit console --config examples/flows/bot.config.py`.
"""
from botkit.flows.router import Flows

flows = Flows()  # the entry is the first state declared: hello->say_hello
COLOURS = [("Red", "red"), ("Green", "green"), ("Blue", "blue")]


@flows.state("hello")
async def say_hello(context):
    await context.send_text("Hi! I'm the onboarding bot. Two quick questions.")
    await context.step_to("survey")  # a flow alone: its first state, ask_name


@flows.flow("survey")
class Survey:
    async def ask_name(self, context):
        await context.send_text("What's your name?")
        context.update_session_to(state="get_name")

    async def get_name(self, context):
        name = (context.event.text or "").strip()
        if not name:
            await context.step_to(state="ask_name")
            return
        context.set_state({"name": name})
        await context.step_to(state="ask_colour")

    async def ask_colour(self, context):
        # Buttons on every channel: inline keyboards, templates, cards; a numbered list on SMS. Pressing one
        # (or typing "2" on SMS) brings a payload event; typing a colour works too.
        await context.send_buttons(f"Nice to meet you, {context.state['name']}. What's your favourite colour?", COLOURS)
        context.update_session_to(state="get_colour")
        # If no answer comes, nudge once; dropped if the user has answered (moved on) by then.
        delay = context.extra.get("reengage_after", 3600)
        await context.step_to_in(delay, "reengage", "nudge", unless_moved=True)

    async def get_colour(self, context):
        context.set_state({"colour": (context.event.payload or context.event.text or "").strip()})
        await context.step_to("goodbye")


@flows.state("goodbye")
async def say_goodbye(context):
    await context.send_text(f"Thanks, {context.state['name']}! {context.state['colour']} it is. Say anything to start over.")
    context.update_session_to("hello")


@flows.state("reengage")
async def nudge(context):
    await context.send_text(f"Still there, {context.state['name']}? What's your favourite colour?")
    context.update_session_to("survey", "get_colour")


@flows.catch_all
async def lost(context):
    """Reached when the session's slug names no state, e.g. after a deploy renamed the state it was in."""
    await context.send_text("Sorry, I lost track of where we were. Let's go back a step.")
    await context.step_back()
