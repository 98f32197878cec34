// wasp plugin SDK for JavaScript and TypeScript.
//
// Written into every JS/TS plugin project by `wasp plugin new` and refreshed
// by `wasp plugin build`; do not edit it there. Its types are in wasp.d.ts.
//
// `definePlugin({ init, filter, transform, route, format, configureEndpoint })`
// returns the exports a wasp component needs (`plugin`, `filter`, …). It
// parses the `config:` block and endpoint settings from JSON, turns any
// exception into a plugin error carrying its message, and sends
// `console.log`/`console.error` to wasp's log, tagged with the plugin's name.

import { log as hostLog } from "wasp:plugin/log@0.1.0";
import { nowMs as hostNowMs } from "wasp:plugin/clock@0.1.0";

/** A plugin error: `kind` is "invalid-config", "invalid-event" or "failed". */
export class PluginError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "PluginError";
    this.kind = kind;
  }
}

/** The plugin's config or an endpoint's settings are invalid. */
export function invalidConfig(message) {
  return new PluginError("invalid-config", message);
}

/** The event lacks something the plugin needs. */
export function invalidEvent(message) {
  return new PluginError("invalid-event", message);
}

/** Any other failure. */
export function failed(message) {
  return new PluginError("failed", message);
}

/** Transform result: keep the event as it was (cheapest). */
export function unchanged() {
  return { tag: "unchanged" };
}

/** Transform result: replace the event with `event` (the whole envelope, an object or JSON text). */
export function replace(event) {
  return { tag: "replace", val: typeof event === "string" ? event : JSON.stringify(event) };
}

/** Transform result: drop the event. */
export function drop() {
  return { tag: "drop" };
}

const encoder = new TextEncoder();

/**
 * Format result: send `body` (an object or array is sent as JSON, a string
 * as is) with `headers` (an object of name → value). `content-type` defaults
 * to application/json.
 */
export function send(body, headers = {}, attemptHeaders = []) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const list = Object.entries(headers).map(([name, value]) => ({ name, value: String(value) }));
  if (!list.some((h) => h.name.toLowerCase() === "content-type")) {
    list.unshift({ name: "content-type", value: "application/json" });
  }
  return { tag: "send", val: { headers: list, attemptHeaders, body: encoder.encode(text) } };
}

/** Format result: this format has no equivalent of the event; send nothing. */
export function skip(reason) {
  return { tag: "skip", val: reason };
}

/** The whole event (the WAHA envelope) as an object. Parsed on first use, once per event. */
export function data(event) {
  let value = parsed.get(event);
  if (value === undefined) {
    value = JSON.parse(event.json);
    parsed.set(event, value);
  }
  return value;
}

const parsed = new WeakMap();

/** The current time in Unix milliseconds, from wasp's clock. */
export function nowMs() {
  return Number(hostNowMs());
}

function fields(values) {
  if (!values) return [];
  return Object.entries(values).map(([key, value]) => ({
    key,
    value: typeof value === "string" ? value : JSON.stringify(value),
  }));
}

/** Structured records in wasp's log, tagged with the plugin's name. */
export const log = {
  trace: (message, values) => hostLog("trace", String(message), fields(values)),
  debug: (message, values) => hostLog("debug", String(message), fields(values)),
  info: (message, values) => hostLog("info", String(message), fields(values)),
  warn: (message, values) => hostLog("warn", String(message), fields(values)),
  error: (message, values) => hostLog("error", String(message), fields(values)),
};

function show(value) {
  if (typeof value === "string") return value;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

function line(args) {
  return args.map(show).join(" ");
}

console.log = (...args) => log.info(line(args));
console.info = (...args) => log.info(line(args));
console.debug = (...args) => log.debug(line(args));
console.warn = (...args) => log.warn(line(args));
console.error = (...args) => log.error(line(args));

/** What the host receives when `call` throws: a plugin error with the message. */
function guarded(call) {
  return (...args) => {
    try {
      return call(...args);
    } catch (error) {
      if (error instanceof PluginError) {
        throw { tag: error.kind, val: error.message };
      }
      if (error instanceof Error) {
        throw { tag: "failed", val: `${error.name}: ${error.message}` };
      }
      throw { tag: "failed", val: `uncaught exception: ${show(error)}` };
    }
  };
}

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw invalidConfig(`${what} is not valid JSON: ${error.message}`);
  }
}

/**
 * The exports of a wasp plugin. Give `init` (optional) and at least one of
 * `filter`, `transform`, `route`, `format`; export what it returns:
 *
 *     export const { plugin, filter } = definePlugin({ filter(event) { … } });
 */
export function definePlugin(spec) {
  const kinds = ["filter", "transform", "route", "format"].filter((k) => typeof spec[k] === "function");
  if (kinds.length === 0) {
    throw new Error("definePlugin needs at least one of filter, transform, route, format");
  }
  const settings = new Map();
  const exports = {
    plugin: {
      init: guarded((config) => {
        const value = parseJson(config, "the plugin's config");
        if (spec.init) spec.init(value === null ? {} : value);
      }),
    },
  };
  if (spec.filter) {
    exports.filter = { filter: guarded((event) => Boolean(spec.filter(event))) };
  }
  if (spec.transform) {
    exports.transform = {
      transform: guarded((event) => spec.transform(event) ?? unchanged()),
    };
  }
  if (spec.route) {
    exports.route = { route: guarded((event) => Array.from(spec.route(event) ?? [], String)) };
  }
  if (spec.format) {
    exports.format = {
      configureEndpoint: guarded((endpoint, text) => {
        const value = parseJson(text, `the settings of endpoint \`${endpoint}\``);
        const checked = spec.configureEndpoint ? spec.configureEndpoint(endpoint, value ?? {}) : undefined;
        settings.set(endpoint, checked === undefined ? value ?? {} : checked);
      }),
      format: guarded((event, endpoint) =>
        spec.format(event, { name: endpoint, settings: settings.get(endpoint) ?? {} }),
      ),
    };
  }
  return exports;
}
