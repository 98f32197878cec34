// {{name}}: a wasp transform. Adds `payload.label` (the `label` of the
// plugin's `config:` block, default "checked") to every message.
import { data, definePlugin, invalidConfig, replace, unchanged } from "./wasp.js";

let label = "checked";

export const { plugin, transform } = definePlugin({
  init(config) {
    label = config.label ?? label;
    if (typeof label !== "string") throw invalidConfig("`label` must be text");
  },
  transform(event) {
    if (event.messageId === undefined) return unchanged();
    const envelope = data(event);
    envelope.payload.label = label;
    return replace(envelope);
  },
});
