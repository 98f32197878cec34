"""{{name}}: a wasp filter. Keeps messages that mention `keyword` (from the
plugin's `config:` block in wasp.yaml) and every event without text."""

import wasp


class KeywordFilter:
    keyword = "order"

    def init(self, config: dict) -> None:
        self.keyword = str(config.get("keyword", self.keyword)).lower()
        if not self.keyword.strip():
            raise wasp.invalid_config("`keyword` must not be empty")

    def filter(self, event: wasp.Event) -> bool:
        if event.body is None:
            return True
        return self.keyword in event.body.lower()


Plugin, Filter = wasp.export(KeywordFilter())
