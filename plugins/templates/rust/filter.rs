//! {{name}}: a wasp filter. Keeps messages that mention `keyword` (from the
//! plugin's `config:` block in wasp.yaml) and every event without text.

use wasp_plugin_sdk::{Event, Filter, Plugin, PluginError, serde::Deserialize};

#[derive(Deserialize)]
#[serde(crate = "wasp_plugin_sdk::serde")]
pub struct Config {
    #[serde(default = "order")]
    keyword: String,
}

fn order() -> String {
    "order".into()
}

pub struct {{type}} {
    keyword: String,
}

impl Plugin for {{type}} {
    type Config = Config;

    fn init(config: Config) -> Result<Self, PluginError> {
        let keyword = config.keyword.to_lowercase();
        if keyword.trim().is_empty() {
            return Err(PluginError::invalid_config("`keyword` must not be empty"));
        }
        Ok(Self { keyword })
    }
}

impl Filter for {{type}} {
    fn filter(&self, event: &Event) -> Result<bool, PluginError> {
        Ok(event
            .body()
            .is_none_or(|body| body.to_lowercase().contains(&self.keyword)))
    }
}

wasp_plugin_sdk::export!({{type}}: filter);
