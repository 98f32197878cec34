// {{name}}: a wasp filter. Keeps messages that mention `keyword` (from the
// plugin's `config:` block in wasp.yaml) and every event without text.
import { definePlugin, invalidConfig } from "./wasp.js";

let keyword = "order";

export const { plugin, filter } = definePlugin({
  init(config) {
    keyword = String(config.keyword ?? keyword).toLowerCase();
    if (keyword.trim() === "") throw invalidConfig("`keyword` must not be empty");
  },
  filter(event) {
    if (event.body === undefined) return true;
    return event.body.toLowerCase().includes(keyword);
  },
});
