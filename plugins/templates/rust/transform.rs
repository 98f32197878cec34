//! {{name}}: a wasp transform. Adds `payload.label` (the `label` of the
//! plugin's `config:` block, default "checked") to every message.

use wasp_plugin_sdk::{Event, Plugin, PluginError, Transform, Transformed, Value, serde::Deserialize};

#[derive(Deserialize)]
#[serde(crate = "wasp_plugin_sdk::serde")]
pub struct Config {
    #[serde(default = "checked")]
    label: String,
}

fn checked() -> String {
    "checked".into()
}

pub struct {{type}} {
    label: String,
}

impl Plugin for {{type}} {
    type Config = Config;

    fn init(config: Config) -> Result<Self, PluginError> {
        Ok(Self { label: config.label })
    }
}

impl Transform for {{type}} {
    fn transform(&self, mut event: Event) -> Result<Transformed, PluginError> {
        if event.message_id().is_none() {
            return Ok(Transformed::Unchanged);
        }
        event
            .payload_mut()?
            .insert("label".into(), Value::String(self.label.clone()));
        Ok(Transformed::replace(event))
    }
}

wasp_plugin_sdk::export!({{type}}: transform);
