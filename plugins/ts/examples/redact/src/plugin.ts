// redact in TypeScript: masks phone numbers in message text, keeping the
// last digits; the same behaviour, config and cases as the Rust example
// (plugins/examples/redact).
import { data, definePlugin, invalidConfig, invalidEvent, replace, unchanged, type Event, type Transformed } from "./wasp.js";
import { checkConfig } from "./config.js";

interface Config {
  min_digits: number;
  keep_last: number;
  mask: string;
  fields: string[];
}

type Json = Record<string, unknown>;

let config: Config;
let paths: string[][];

export const { plugin, transform } = definePlugin<Json>({
  init(block) {
    config = checkConfig(block, {
      min_digits: { type: "count", default: 7 },
      keep_last: { type: "count", default: 2 },
      mask: { type: "string", default: "•" },
      fields: { type: "strings", default: ["body", "replyTo.body"] },
    });
    if (config.min_digits < 3) throw invalidConfig("`min_digits` must be at least 3");
    if (config.mask === "") throw invalidConfig("`mask` must not be empty");
    paths = config.fields.map((f) => f.split("."));
  },
  transform(event: Event): Transformed {
    const onlyBody = paths.length === 1 && paths[0].length === 1 && paths[0][0] === "body";
    if (onlyBody && (event.body === undefined || redact(event.body) === null)) return unchanged();
    const payload: unknown = data(event).payload;
    if (!isObject(payload)) {
      throw invalidEvent("the event has no payload object");
    }
    let changed = false;
    for (const path of paths) {
      const parent = lookup(payload, path.slice(0, -1));
      const key = path[path.length - 1];
      const text = parent?.[key];
      if (parent !== undefined && typeof text === "string") {
        const redacted = redact(text);
        if (redacted !== null) {
          parent[key] = redacted;
          changed = true;
        }
      }
    }
    return changed ? replace(data(event)) : unchanged();
  },
});

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function lookup(object: Json, path: string[]): Json | undefined {
  let value: unknown = object;
  for (const key of path) {
    if (!isObject(value) || !Object.hasOwn(value, key)) return undefined;
    value = value[key];
  }
  return isObject(value) ? value : undefined;
}

/** `text` with each phone number's digits masked but the last few, or null when it has none. */
export function redact(text: string): string | null {
  const spans = phoneNumbers(text, config.min_digits);
  if (spans.length === 0) return null;
  let out = "";
  let last = 0;
  for (const [start, end] of spans) {
    out += text.slice(last, start);
    const span = text.slice(start, end);
    const digits = [...span].filter(isDigitChar).length;
    const hide = Math.max(0, digits - config.keep_last);
    let seen = 0;
    for (const c of span) {
      if (isDigitChar(c) && ++seen <= hide) {
        out += config.mask;
      } else {
        out += c;
      }
    }
    last = end;
  }
  return out + text.slice(last);
}

const isDigitChar = (c: string): boolean => c >= "0" && c <= "9";
const isDigit = (code: number): boolean => code >= 48 && code <= 57;
const isAlpha = (code: number): boolean => (code >= 65 && code <= 90) || (code >= 97 && code <= 122);

/** Spans [start, end) of phone numbers: digits with + ( ) and single separators. */
function phoneNumbers(text: string, minDigits: number): [number, number][] {
  const at = (i: number): number => (i < text.length ? text.charCodeAt(i) : -1);
  const spans: [number, number][] = [];
  let i = 0;
  while (i < text.length) {
    const c = at(i);
    const starts = isDigit(c) || ((c === 43 || c === 40) && isDigit(at(i + 1)));
    const before = i > 0 ? at(i - 1) : -1;
    const precededByWord = isDigit(before) || isAlpha(before) || before === 95;
    if (!starts || precededByWord) {
      i += 1;
      continue;
    }
    const start = i;
    let end = i;
    let digits = 0;
    let j = i;
    while (j < text.length) {
      const d = at(j);
      if (isDigit(d)) {
        digits += 1;
        j += 1;
        end = j;
      } else if (
        (d === 43 && j === start) ||
        d === 40 ||
        d === 41 ||
        ((d === 32 || d === 45 || d === 46) && (isDigit(at(j + 1)) || at(j + 1) === 40))
      ) {
        j += 1;
      } else {
        break;
      }
    }
    if (digits >= minDigits && !isAlpha(at(end))) spans.push([start, end]);
    i = Math.max(j, i + 1);
  }
  return spans;
}
