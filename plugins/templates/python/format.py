"""{{name}}: a wasp format. Sends each event with a chat as a small JSON
body with an `x-event` header; an endpoint's `settings:` may name a
`channel`, which the body carries."""

import wasp


class SmallJson:
    def configure_endpoint(self, endpoint: str, settings: dict) -> dict:
        if not isinstance(settings.get("channel", ""), str):
            raise wasp.invalid_config(f"endpoint {endpoint}: `channel` must be text")
        return settings

    def format(self, event: wasp.Event, endpoint: wasp.Endpoint) -> wasp.Formatted:
        if event.chat_id is None:
            return wasp.skip("the event has no chat")
        body = {"type": event.name, "session": event.session, "chat": event.chat_id, "text": event.body}
        if "channel" in endpoint.settings:
            body["channel"] = endpoint.settings["channel"]
        return wasp.send(body, {"x-event": event.name})


Plugin, Format = wasp.export(SmallJson())
