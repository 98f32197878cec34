"""{{name}}: a wasp route. Sends group messages to the endpoint named by
`groups` and everything else with a chat to `people` (from the plugin's
`config:` block; endpoints are named in wasp.yaml)."""

import wasp


class ByChatType:
    groups = "groups"
    people = "people"

    def init(self, config: dict) -> None:
        self.groups = config.get("groups", self.groups)
        self.people = config.get("people", self.people)
        if not isinstance(self.groups, str) or not isinstance(self.people, str):
            raise wasp.invalid_config("`groups` and `people` must be endpoint names")

    def route(self, event: wasp.Event) -> list[str]:
        if event.chat_id is None:
            return []
        return [self.groups if event.chat_id.endswith("@g.us") else self.people]


Plugin, Route = wasp.export(ByChatType())
