"""Two channels on one platform: WhatsApp through Twilio and through the Cloud API, enabled together.
A session remembers the channel it came through; the bot's own messages go back through it."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from botkit import Bot, Flows
from tests.fuzz_bodies import TwilioSpec, WhatsAppCloudSpec
from tests.support import FakeAPI, Served, eventually, make_config

TWILIO = TwilioSpec("whatsapp-twilio", "whatsapp", "", "/webhooks/whatsapp", prefix="whatsapp:")
CLOUD = WhatsAppCloudSpec("whatsapp-cloud", "wa_cloud", "", "/webhooks/wa_cloud")
TWILIO_KEY, CLOUD_KEY = "whatsapp:+15551234567", "whatsapp:+16505551234"


def flows() -> Flows:
    app = Flows()

    @app.state("chat")
    async def chat(context: Any) -> None:
        if context.event.type == "scheduled":
            await context.send_text(f"reminder for {context.session.id}")
        else:
            await context.step_to_in(0.2, "chat", "chat")

    return app


async def test_a_proactive_send_and_a_scheduled_step_go_back_through_the_channel_each_session_came_from(tmp_path):
    api = FakeAPI()
    await api.start()
    live = SimpleNamespace(api=api, port=0)
    channels = {"whatsapp": TWILIO.settings(live), "wa_cloud": {**CLOUD.settings(live), "adapter": "whatsapp"}}  # type: ignore[arg-type]
    bot = Bot(make_config(tmp_path, initial_state={}, channels=channels), handler=flows())
    try:
        async with Served(bot) as served:
            live.port = int(served.url.rsplit(":", 1)[1])
            for spec in (TWILIO, CLOUD):
                raw = spec.encode(spec.valid(1))
                headers = {"Content-Type": spec.content_type, **spec.sign(live, raw)}  # type: ignore[arg-type]
                assert (await served.post(spec.path, data=raw, headers=headers)).status == 200

            twilio_calls = lambda: api.calls_to(r"/Messages\.json$")  # noqa: E731
            cloud_calls = lambda: api.calls_to(r"/106540352242922/messages$")  # noqa: E731
            await eventually(lambda: len(twilio_calls()) == 1 and len(cloud_calls()) == 1)
            assert twilio_calls()[0].form["Body"] == f"reminder for {TWILIO_KEY}"
            assert cloud_calls()[0].json["text"]["body"] == f"reminder for {CLOUD_KEY}"

            await bot.send_text(TWILIO_KEY, "to the Twilio number")
            await bot.send_text(CLOUD_KEY, "to the Cloud API number")
            assert [c.form["Body"] for c in twilio_calls()][1:] == ["to the Twilio number"]
            assert [c.json["text"]["body"] for c in cloud_calls()][1:] == ["to the Cloud API number"]
            assert (await bot.load_session(CLOUD_KEY)).channel == "wa_cloud"  # type: ignore[union-attr]
            assert (await bot.load_session(TWILIO_KEY)).channel == "whatsapp"  # type: ignore[union-attr]
    finally:
        await api.close()
