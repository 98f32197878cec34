// Checks a plugin's config block the way the Rust examples' serde does:
// unknown keys, missing required keys and wrong types are refused by name.
import { invalidConfig } from "./wasp.js";

type Rule =
  | { type: "strings"; required?: boolean; default?: string[] }
  | { type: "string"; required?: boolean; default?: string }
  | { type: "boolean"; required?: boolean; default?: boolean }
  | { type: "count"; required?: boolean; default?: number };

type Value<R extends Rule> = R["type"] extends "strings"
  ? string[]
  : R["type"] extends "string"
    ? string
    : R["type"] extends "boolean"
      ? boolean
      : number;

const checks: Record<Rule["type"], (v: unknown) => boolean> = {
  strings: (v) => Array.isArray(v) && v.every((s) => typeof s === "string"),
  string: (v) => typeof v === "string",
  boolean: (v) => typeof v === "boolean",
  count: (v) => Number.isInteger(v) && (v as number) >= 0,
};

const described: Record<Rule["type"], string> = {
  strings: "a list of text",
  string: "text",
  boolean: "true or false",
  count: "a whole number, 0 or more",
};

export function checkConfig<S extends Record<string, Rule>>(
  config: Record<string, unknown>,
  schema: S,
): { [K in keyof S]: Value<S[K]> } {
  for (const key of Object.keys(config)) {
    if (!(key in schema)) {
      const known = Object.keys(schema).map((k) => `\`${k}\``).join(", ");
      throw invalidConfig(`unknown field \`${key}\`, expected one of ${known}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, rule] of Object.entries(schema)) {
    const value = config[key];
    if (value === undefined) {
      if (rule.required) throw invalidConfig(`missing field \`${key}\``);
      out[key] = rule.default;
    } else if (!checks[rule.type](value)) {
      throw invalidConfig(`\`${key}\` must be ${described[rule.type]}`);
    } else {
      out[key] = value;
    }
  }
  return out as { [K in keyof S]: Value<S[K]> };
}
