// {{name}}: a wasp route. Sends group messages to the endpoint named by
// `groups` and everything else with a chat to `people` (from the plugin's
// `config:` block; endpoints are named in wasp.yaml).
import { definePlugin, invalidConfig, type Event } from "./wasp.js";

interface Config {
  groups?: unknown;
  people?: unknown;
}

let groups = "groups";
let people = "people";

export const { plugin, route } = definePlugin<Config>({
  init(config) {
    const [g, p] = [config.groups ?? groups, config.people ?? people];
    if (typeof g !== "string" || typeof p !== "string") {
      throw invalidConfig("`groups` and `people` must be endpoint names");
    }
    [groups, people] = [g, p];
  },
  route(event: Event): string[] {
    if (event.chatId === undefined) return [];
    return [event.chatId.endsWith("@g.us") ? groups : people];
  },
});
