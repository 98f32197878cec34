"""keyword-filter in Python: keeps messages that mention one of the configured
keywords; the same behaviour, config and cases as the Rust example
(plugins/examples/keyword-filter)."""

import wasp
from config import REQUIRED, check_config


class KeywordFilter:
    def init(self, config: dict) -> None:
        c = check_config(
            config,
            {
                "keywords": ("strings", REQUIRED),
                "case_sensitive": ("boolean", False),
                "keep_events_without_text": ("boolean", True),
            },
        )
        self.case_sensitive = c["case_sensitive"]
        self.keep_without_text = c["keep_events_without_text"]
        stripped = (k.strip() for k in c["keywords"])
        self.keywords = [k if self.case_sensitive else k.lower() for k in stripped if k]
        if not self.keywords:
            raise wasp.invalid_config("`keywords` must list at least one keyword")

    def filter(self, event: wasp.Event) -> bool:
        if event.body is None:
            return self.keep_without_text
        text = event.body if self.case_sensitive else event.body.lower()
        return any(k in text for k in self.keywords)


Plugin, Filter = wasp.export(KeywordFilter())
