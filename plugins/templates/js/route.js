// {{name}}: a wasp route. Sends group messages to the endpoint named by
// `groups` and everything else with a chat to `people` (from the plugin's
// `config:` block; endpoints are named in wasp.yaml).
import { definePlugin, invalidConfig } from "./wasp.js";

let groups = "groups";
let people = "people";

export const { plugin, route } = definePlugin({
  init(config) {
    groups = config.groups ?? groups;
    people = config.people ?? people;
    if (typeof groups !== "string" || typeof people !== "string") {
      throw invalidConfig("`groups` and `people` must be endpoint names");
    }
  },
  route(event) {
    if (event.chatId === undefined) return [];
    return [event.chatId.endsWith("@g.us") ? groups : people];
  },
});
