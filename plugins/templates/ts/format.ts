// {{name}}: a wasp format. Sends each event with a chat as a small JSON
// body with an `x-event` header; an endpoint's `settings:` may name a
// `channel`, which the body carries.
import { definePlugin, invalidConfig, send, skip, type Endpoint, type Event, type Formatted } from "./wasp.js";

interface Settings {
  channel?: string;
}

export const { plugin, format } = definePlugin<unknown, Settings>({
  configureEndpoint(endpoint: string, settings: { channel?: unknown }): Settings {
    if (settings.channel !== undefined && typeof settings.channel !== "string") {
      throw invalidConfig(`endpoint ${endpoint}: \`channel\` must be text`);
    }
    return settings as Settings;
  },
  format(event: Event, endpoint: Endpoint<Settings>): Formatted {
    if (event.chatId === undefined) return skip("the event has no chat");
    const body: Record<string, unknown> = {
      type: event.name,
      session: event.session,
      chat: event.chatId,
      text: event.body ?? null,
    };
    if (endpoint.settings.channel !== undefined) body.channel = endpoint.settings.channel;
    return send(body, { "x-event": event.name });
  },
});
