// Checks a plugin's config block the way the Rust examples' serde does:
// unknown keys, missing required keys and wrong types are refused by name.
import { invalidConfig } from "./wasp.js";

const checks = {
  strings: (v) => Array.isArray(v) && v.every((s) => typeof s === "string"),
  string: (v) => typeof v === "string",
  boolean: (v) => typeof v === "boolean",
  count: (v) => Number.isInteger(v) && v >= 0,
};

const described = {
  strings: "a list of text",
  string: "text",
  boolean: "true or false",
  count: "a whole number, 0 or more",
};

export function checkConfig(config, schema) {
  for (const key of Object.keys(config)) {
    if (!(key in schema)) {
      throw invalidConfig(`unknown field \`${key}\`, expected one of ${Object.keys(schema).map((k) => `\`${k}\``).join(", ")}`);
    }
  }
  const out = {};
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
  return out;
}
