//! {{name}}: a wasp format. Sends each event with a chat as a small JSON
//! body with an `x-event` header; an endpoint's `settings:` may name a
//! `channel`, which the body carries.

use wasp_plugin_sdk::{
    Endpoint, Event, Format, Formatted, Header, Plugin, PluginError, Request, json,
    serde::Deserialize,
};

#[derive(Deserialize)]
#[serde(crate = "wasp_plugin_sdk::serde")]
pub struct Settings {
    #[serde(default)]
    channel: Option<String>,
}

pub struct {{type}};

impl Plugin for {{type}} {
    type Config = ();

    fn init(_: ()) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

impl Format for {{type}} {
    type Settings = Settings;

    fn format(&self, event: &Event, endpoint: &Endpoint<'_, Settings>) -> Result<Formatted, PluginError> {
        let Some(chat) = event.chat_id() else {
            return Ok(Formatted::Skip("the event has no chat".into()));
        };
        let mut body = json!({
            "type": event.name(),
            "session": event.session(),
            "chat": chat,
            "text": event.body(),
        });
        if let Some(channel) = &endpoint.settings.channel {
            body["channel"] = json!(channel);
        }
        Ok(Formatted::Send(Request {
            headers: vec![
                Header { name: "content-type".into(), value: "application/json".into() },
                Header { name: "x-event".into(), value: event.name().into() },
            ],
            attempt_headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }))
    }
}

wasp_plugin_sdk::export!({{type}}: format);
