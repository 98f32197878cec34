// {{name}}: a wasp transform. Adds `payload.label` (the `label` of the
// plugin's `config:` block, default "checked") to every message.
import { data, definePlugin, invalidConfig, replace, unchanged, type Event, type Transformed } from "./wasp.js";

interface Config {
  label?: unknown;
}

let label = "checked";

export const { plugin, transform } = definePlugin<Config>({
  init(config) {
    const value = config.label ?? label;
    if (typeof value !== "string") throw invalidConfig("`label` must be text");
    label = value;
  },
  transform(event: Event): Transformed {
    if (event.messageId === undefined) return unchanged();
    const envelope = data(event);
    envelope.payload.label = label;
    return replace(envelope);
  },
});
