// keyword-filter in TypeScript: keeps messages that mention one of the
// configured keywords; the same behaviour, config and cases as the Rust
// example (plugins/examples/keyword-filter).
import { definePlugin, invalidConfig, type Event } from "./wasp.js";
import { checkConfig } from "./config.js";

let keywords: string[] = [];
let caseSensitive = false;
let keepWithoutText = true;

export const { plugin, filter } = definePlugin<Record<string, unknown>>({
  init(config) {
    const c = checkConfig(config, {
      keywords: { type: "strings", required: true },
      case_sensitive: { type: "boolean", default: false },
      keep_events_without_text: { type: "boolean", default: true },
    });
    caseSensitive = c.case_sensitive;
    keepWithoutText = c.keep_events_without_text;
    keywords = c.keywords
      .map((k) => k.trim())
      .filter((k) => k !== "")
      .map((k) => (caseSensitive ? k : k.toLowerCase()));
    if (keywords.length === 0) throw invalidConfig("`keywords` must list at least one keyword");
  },
  filter(event: Event): boolean {
    if (event.body === undefined) return keepWithoutText;
    const text = caseSensitive ? event.body : event.body.toLowerCase();
    return keywords.some((k) => text.includes(k));
  },
});
