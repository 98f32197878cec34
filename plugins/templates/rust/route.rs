//! {{name}}: a wasp route. Sends group messages to the endpoint named by
//! `groups` and everything else with a chat to `people` (from the plugin's
//! `config:` block; endpoints are named in wasp.yaml).

use wasp_plugin_sdk::{Event, Plugin, PluginError, Route, serde::Deserialize};

#[derive(Deserialize)]
#[serde(crate = "wasp_plugin_sdk::serde")]
pub struct Config {
    #[serde(default = "groups")]
    groups: String,
    #[serde(default = "people")]
    people: String,
}

fn groups() -> String {
    "groups".into()
}

fn people() -> String {
    "people".into()
}

pub struct {{type}} {
    config: Config,
}

impl Plugin for {{type}} {
    type Config = Config;

    fn init(config: Config) -> Result<Self, PluginError> {
        Ok(Self { config })
    }
}

impl Route for {{type}} {
    fn route(&self, event: &Event) -> Result<Vec<String>, PluginError> {
        Ok(match event.chat_id() {
            None => Vec::new(),
            Some(chat) if chat.ends_with("@g.us") => vec![self.config.groups.clone()],
            Some(_) => vec![self.config.people.clone()],
        })
    }
}

wasp_plugin_sdk::export!({{type}}: route);
