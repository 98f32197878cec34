"""Checks a plugin's config block the way the Rust examples' serde does:
unknown keys, missing required keys and wrong types are refused by name."""

from typing import Any

import wasp

REQUIRED = object()

_CHECKS = {
    "strings": (lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v), "a list of text"),
    "string": (lambda v: isinstance(v, str), "text"),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "count": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number, 0 or more"),
}


def check_config(config: dict, schema: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """`schema` maps each key to (type, default); a default of REQUIRED makes it required."""
    for key in config:
        if key not in schema:
            known = ", ".join(f"`{k}`" for k in schema)
            raise wasp.invalid_config(f"unknown field `{key}`, expected one of {known}")
    checked = {}
    for key, (kind, default) in schema.items():
        if key not in config:
            if default is REQUIRED:
                raise wasp.invalid_config(f"missing field `{key}`")
            checked[key] = default
            continue
        test, described = _CHECKS[kind]
        if not test(config[key]):
            raise wasp.invalid_config(f"`{key}` must be {described}")
        checked[key] = config[key]
    return checked
