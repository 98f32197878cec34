"""wasp plugin SDK for Python.

Written into every Python plugin project by `wasp plugin new` and refreshed by
`wasp plugin build`; do not edit it there.

A plugin is a class with `init` (optional) and any of `filter`, `transform`,
`route`, `format` (with `configure_endpoint`). `export(instance)` returns the
classes componentize-py looks for in the app module, `Plugin` first and then
one per kind, in the order filter, transform, route, format:

    Plugin, Filter = wasp.export(KeywordFilter())

The SDK parses the `config:` block and endpoint settings from JSON, turns any
exception into a plugin error carrying its message, and sends `print` and
`sys.stderr` to wasp's log, tagged with the plugin's name.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional

from componentize_py_types import Err
from wit_world.imports import clock, log as _log, types

Event = types.Event
"""One WhatsApp event (WIT `event`): id, name, session, timestamp_ms, chat_id,
sender, from_me, message_id, body (the optional ones may be None) and json."""

Transformed = types.Transformed
Formatted = types.Formatted
Header = types.Header
AttemptHeader = types.AttemptHeader


class PluginError(Exception):
    """An error the plugin reports on purpose; `kind` is "invalid-config",
    "invalid-event" or "failed". Any other exception becomes "failed"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def invalid_config(message: str) -> PluginError:
    """The plugin's config or an endpoint's settings are invalid."""
    return PluginError("invalid-config", message)


def invalid_event(message: str) -> PluginError:
    """The event lacks something the plugin needs."""
    return PluginError("invalid-event", message)


def failed(message: str) -> PluginError:
    """Any other failure."""
    return PluginError("failed", message)


def unchanged() -> Transformed:
    """Transform result: keep the event as it was (cheapest)."""
    return types.Transformed_Unchanged()


def replace(event: Any) -> Transformed:
    """Transform result: replace the event with `event` (the whole envelope,
    a dict or JSON text)."""
    text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return types.Transformed_Replace(text)


def drop() -> Transformed:
    """Transform result: drop the event."""
    return types.Transformed_Drop()


def send(body: Any, headers: Optional[dict[str, str]] = None, attempt_headers: Optional[list] = None) -> Formatted:
    """Format result: send `body` (a dict or list as JSON, str or bytes as is)
    with `headers`; `content-type` defaults to application/json."""
    if isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    listed = [types.Header(name, str(value)) for name, value in (headers or {}).items()]
    if not any(h.name.lower() == "content-type" for h in listed):
        listed.insert(0, types.Header("content-type", "application/json"))
    return types.Formatted_Send(types.Request(listed, attempt_headers or [], raw))


def skip(reason: str) -> Formatted:
    """Format result: this format has no equivalent of the event; send nothing."""
    return types.Formatted_Skip(reason)


def data(event: Event) -> dict:
    """The whole event (the WAHA envelope) as a dict, parsed once per event."""
    cached = getattr(event, "_wasp_data", None)
    if cached is None:
        cached = json.loads(event.json)
        object.__setattr__(event, "_wasp_data", cached)
    return cached


def now_ms() -> int:
    """The current time in Unix milliseconds, from wasp's clock."""
    return clock.now_ms()


@dataclass
class Endpoint:
    """The endpoint a format plugin is formatting for."""

    name: str
    settings: Any


class _Log:
    """Structured records in wasp's log: `log.info("sent", order="4711")`."""

    def _write(self, level: Any, message: str, fields: dict) -> None:
        _log.log(level, str(message), [_log.Field(k, v if isinstance(v, str) else json.dumps(v)) for k, v in fields.items()])

    def trace(self, message: str, **fields: Any) -> None:
        self._write(_log.Level.TRACE, message, fields)

    def debug(self, message: str, **fields: Any) -> None:
        self._write(_log.Level.DEBUG, message, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._write(_log.Level.INFO, message, fields)

    def warn(self, message: str, **fields: Any) -> None:
        self._write(_log.Level.WARN, message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._write(_log.Level.ERROR, message, fields)


log = _Log()


class _LogStream:
    """`sys.stdout`/`sys.stderr` as lines in wasp's log."""

    def __init__(self, level: Any) -> None:
        self.level = level
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            if line.strip():
                _log.log(self.level, line, [])
        return len(text)

    def flush(self) -> None:
        if self.pending.strip():
            _log.log(self.level, self.pending, [])
        self.pending = ""


sys.stdout = _LogStream(_log.Level.INFO)
sys.stderr = _LogStream(_log.Level.ERROR)


def _plugin_error(error: PluginError) -> Any:
    if error.kind == "invalid-config":
        return types.PluginError_InvalidConfig(str(error))
    if error.kind == "invalid-event":
        return types.PluginError_InvalidEvent(str(error))
    return types.PluginError_Failed(str(error))


def _guarded(call: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        try:
            return call(*args)
        except Err:
            raise
        except PluginError as error:
            raise Err(_plugin_error(error))
        except Exception as error:
            raise Err(types.PluginError_Failed(f"{type(error).__name__}: {error}"))

    return run


def _parse(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise invalid_config(f"{what} is not valid JSON: {error}")


KINDS = ("filter", "transform", "route", "format")


def export(plugin: Any) -> tuple:
    """The classes componentize-py needs: `Plugin`, then one for each kind
    `plugin` implements, in the order filter, transform, route, format."""
    from wit_world import exports

    kinds = [k for k in KINDS if callable(getattr(plugin, k, None))]
    if not kinds:
        raise TypeError("a wasp plugin needs at least one of filter, transform, route, format")
    settings: dict[str, Any] = {}

    def init(config: str) -> None:
        value = _parse(config, "the plugin's config")
        if callable(getattr(plugin, "init", None)):
            plugin.init({} if value is None else value)

    def keep(event: Event) -> bool:
        return bool(plugin.filter(event))

    def transform(event: Event) -> Transformed:
        result = plugin.transform(event)
        return unchanged() if result is None else result

    def route(event: Event) -> list[str]:
        return [str(name) for name in plugin.route(event) or []]

    def configure_endpoint(endpoint: str, text: str) -> None:
        value = _parse(text, f"the settings of endpoint `{endpoint}`")
        value = {} if value is None else value
        checker = getattr(plugin, "configure_endpoint", None)
        checked = checker(endpoint, value) if callable(checker) else None
        settings[endpoint] = value if checked is None else checked

    def format_event(event: Event, endpoint: str) -> Formatted:
        return plugin.format(event, Endpoint(endpoint, settings.get(endpoint, {})))

    made: list[type] = [type("Plugin", (exports.Plugin,), {"init": _method(init)})]
    if "filter" in kinds:
        made.append(type("Filter", (exports.Filter,), {"filter": _method(keep)}))
    if "transform" in kinds:
        made.append(type("Transform", (exports.Transform,), {"transform": _method(transform)}))
    if "route" in kinds:
        made.append(type("Route", (exports.Route,), {"route": _method(route)}))
    if "format" in kinds:
        made.append(
            type(
                "Format",
                (exports.Format,),
                {"configure_endpoint": _method(configure_endpoint), "format": _method(format_event)},
            )
        )
    return tuple(made)


def _method(function: Callable[..., Any]) -> Callable[..., Any]:
    guarded = _guarded(function)

    def method(self: Any, *args: Any) -> Any:
        return guarded(*args)

    return method
