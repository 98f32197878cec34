"""redact in Python: masks phone numbers in message text, keeping the last
digits; the same behaviour, config and cases as the Rust example
(plugins/examples/redact)."""

from typing import Optional

import wasp
from config import check_config


def _digit(c: str) -> bool:
    return "0" <= c <= "9"


def _alpha(c: str) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z"


def phone_numbers(text: str, min_digits: int) -> list[tuple[int, int]]:
    """Spans [start, end) of phone numbers: digits with + ( ) and single separators."""
    n = len(text)

    def at(i: int) -> str:
        return text[i] if i < n else ""

    spans = []
    i = 0
    while i < n:
        c = text[i]
        starts = _digit(c) or (c in "+(" and _digit(at(i + 1)))
        before = text[i - 1] if i > 0 else ""
        preceded_by_word = bool(before) and (_digit(before) or _alpha(before) or before == "_")
        if not starts or preceded_by_word:
            i += 1
            continue
        start = end = j = i
        digits = 0
        while j < n:
            d = text[j]
            if _digit(d):
                digits += 1
                j += 1
                end = j
            elif (d == "+" and j == start) or d in "()" or (d in " -." and (_digit(at(j + 1)) or at(j + 1) == "(")):
                j += 1
            else:
                break
        if digits >= min_digits and not _alpha(at(end)):
            spans.append((start, end))
        i = max(j, i + 1)
    return spans


class Redact:
    def init(self, config: dict) -> None:
        self.config = check_config(
            config,
            {
                "min_digits": ("count", 7),
                "keep_last": ("count", 2),
                "mask": ("string", "•"),
                "fields": ("strings", ["body", "replyTo.body"]),
            },
        )
        if self.config["min_digits"] < 3:
            raise wasp.invalid_config("`min_digits` must be at least 3")
        if not self.config["mask"]:
            raise wasp.invalid_config("`mask` must not be empty")
        self.paths = [field.split(".") for field in self.config["fields"]]

    def redact(self, text: str) -> Optional[str]:
        spans = phone_numbers(text, self.config["min_digits"])
        if not spans:
            return None
        out = []
        last = 0
        for start, end in spans:
            out.append(text[last:start])
            span = text[start:end]
            hide = max(0, sum(1 for c in span if _digit(c)) - self.config["keep_last"])
            seen = 0
            for c in span:
                if _digit(c):
                    seen += 1
                    if seen <= hide:
                        out.append(self.config["mask"])
                        continue
                out.append(c)
            last = end
        out.append(text[last:])
        return "".join(out)

    def transform(self, event: wasp.Event) -> wasp.Transformed:
        only_body = self.paths == [["body"]]
        if only_body and (event.body is None or self.redact(event.body) is None):
            return wasp.unchanged()
        envelope = wasp.data(event)
        payload = envelope.get("payload")
        if not isinstance(payload, dict):
            raise wasp.invalid_event("the event has no payload object")
        changed = False
        for path in self.paths:
            parent = payload
            for key in path[:-1]:
                parent = parent.get(key) if isinstance(parent, dict) else None
            text = parent.get(path[-1]) if isinstance(parent, dict) else None
            if isinstance(text, str):
                redacted = self.redact(text)
                if redacted is not None:
                    parent[path[-1]] = redacted
                    changed = True
        return wasp.replace(envelope) if changed else wasp.unchanged()


Plugin, Transform = wasp.export(Redact())
