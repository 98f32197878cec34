// Types of the wasp plugin SDK (wasp.js) and of the WIT contract
// `wasp:plugin@0.1.0` as JavaScript sees it. Written by `wasp plugin new`
// and refreshed by `wasp plugin build`; do not edit it there.

/** One WhatsApp event, as it crosses into a plugin (WIT `event`). */
export interface Event {
  /** Unique event id: `evt_` followed by a lower-case ULID. */
  id: string;
  /** WAHA event name, e.g. `message`, `message.any`, `message.ack`, `session.status`. */
  name: string;
  /** Name of the session (the WhatsApp account) the event belongs to. */
  session: string;
  /** When the event was created, in Unix milliseconds. */
  timestampMs: bigint;
  /** The chat the event concerns (`…@c.us` for people, `…@g.us` for groups), if any. */
  chatId?: string;
  /** Who sent it: the group participant in groups, otherwise the author. */
  sender?: string;
  /** Whether this account sent the message (`payload.fromMe`). */
  fromMe?: boolean;
  /** The message id (`payload.id`), for message events. */
  messageId?: string;
  /** The message text (`payload.body`), where there is one. */
  body?: string;
  /** The canonical event: the WAHA webhook envelope, as compact JSON. */
  json: string;
}

/** The whole event as an object: the WAHA webhook envelope. */
export interface EventData {
  id?: string;
  event: string;
  session: string;
  timestamp?: number;
  payload: Record<string, any>;
  [key: string]: any;
}

/** WIT `transformed`. */
export type Transformed = { tag: "unchanged" } | { tag: "replace"; val: string } | { tag: "drop" };

/** WIT `header`. */
export interface Header {
  name: string;
  value: string;
}

/** WIT `timestamped-hmac`. */
export interface TimestampedHmac {
  key: string;
  prefix: string;
}

/** WIT `attempt-value`: a header value computed on every delivery attempt. */
export type AttemptValue =
  | { tag: "unix-millis" }
  | { tag: "unix-seconds" }
  | { tag: "request-id" }
  | { tag: "timestamped-hmac-sha256"; val: TimestampedHmac };

/** WIT `attempt-header`. */
export interface AttemptHeader {
  name: string;
  value: AttemptValue;
}

/** WIT `request`: what one endpoint receives. */
export interface Request {
  headers: Header[];
  attemptHeaders: AttemptHeader[];
  body: Uint8Array;
}

/** WIT `formatted`. */
export type Formatted = { tag: "send"; val: Request } | { tag: "skip"; val: string };

/** The endpoint a format plugin is formatting for. */
export interface Endpoint<S> {
  /** The endpoint's name in wasp.yaml. */
  name: string;
  /** Its settings block (as returned by `configureEndpoint`, if given). */
  settings: S;
}

/** The kind of a plugin error (WIT `plugin-error`). */
export type PluginErrorKind = "invalid-config" | "invalid-event" | "failed";

/** A plugin error; any other exception becomes a `failed` error with its message. */
export declare class PluginError extends Error {
  constructor(kind: PluginErrorKind, message: string);
  kind: PluginErrorKind;
}

export declare function invalidConfig(message: string): PluginError;
export declare function invalidEvent(message: string): PluginError;
export declare function failed(message: string): PluginError;

export declare function unchanged(): Transformed;
export declare function replace(event: EventData | string): Transformed;
export declare function drop(): Transformed;

export declare function send(
  body: unknown,
  headers?: Record<string, string>,
  attemptHeaders?: AttemptHeader[],
): Formatted;
export declare function skip(reason: string): Formatted;

/** The whole event as an object, parsed once per event. */
export declare function data(event: Event): EventData;

/** The current time in Unix milliseconds, from wasp's clock. */
export declare function nowMs(): number;

type Fields = Record<string, unknown>;

/** Structured records in wasp's log, tagged with the plugin's name. */
export declare const log: {
  trace(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
};

/** What a plugin implements; give at least one of the four kinds. */
export interface PluginSpec<C = any, S = any> {
  /** Called once per instance with the `config:` block (`{}` when absent). Throw `invalidConfig` to refuse it. */
  init?(config: C): void;
  /** Keep (`true`) or drop (`false`) the event. */
  filter?(event: Event): boolean;
  /** Rewrite the event: `unchanged()` (also when nothing is returned), `replace(data)` or `drop()`. */
  transform?(event: Event): Transformed | undefined | void;
  /** The endpoint names (as in wasp.yaml) the event goes to. */
  route?(event: Event): string[];
  /** Check one endpoint's settings; return them (possibly normalised) or throw `invalidConfig`. */
  configureEndpoint?(endpoint: string, settings: any): S | void;
  /** The request one endpoint receives: `send(body, headers)` or `skip(reason)`. */
  format?(event: Event, endpoint: Endpoint<S>): Formatted;
}

/** The component's exports, to be exported by the plugin's entry module. */
export interface PluginExports {
  plugin: { init(config: string): void };
  filter: { filter(event: Event): boolean };
  transform: { transform(event: Event): Transformed };
  route: { route(event: Event): string[] };
  format: {
    configureEndpoint(endpoint: string, settings: string): void;
    format(event: Event, endpoint: string): Formatted;
  };
}

export declare function definePlugin<C = any, S = any>(spec: PluginSpec<C, S>): PluginExports;
