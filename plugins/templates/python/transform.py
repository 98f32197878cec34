"""{{name}}: a wasp transform. Adds `payload.label` (the `label` of the
plugin's `config:` block, default "checked") to every message."""

import wasp


class Label:
    label = "checked"

    def init(self, config: dict) -> None:
        self.label = config.get("label", self.label)
        if not isinstance(self.label, str):
            raise wasp.invalid_config("`label` must be text")

    def transform(self, event: wasp.Event) -> wasp.Transformed:
        if event.message_id is None:
            return wasp.unchanged()
        envelope = wasp.data(event)
        envelope["payload"]["label"] = self.label
        return wasp.replace(envelope)


Plugin, Transform = wasp.export(Label())
