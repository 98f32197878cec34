//! `stamp`: a test transform that writes its configured `stamp` into each
//! event's payload (as `payload.stamp`). The hot-reload test changes the
//! stamp with every config version, so each delivered event shows which
//! pipeline generation processed it.

use wasp_plugin_sdk::serde::Deserialize;
use wasp_plugin_sdk::{Event, Plugin, PluginError, Transform, Transformed, Value};

/// The `config:` block.
#[derive(Debug, Deserialize)]
#[serde(crate = "wasp_plugin_sdk::serde", deny_unknown_fields)]
pub struct Config {
    /// What to write.
    pub stamp: Value,
}

/// The transform.
pub struct Stamp(Value);

impl Plugin for Stamp {
    type Config = Config;

    fn init(config: Config) -> Result<Self, PluginError> {
        Ok(Self(config.stamp))
    }
}

impl Transform for Stamp {
    fn transform(&self, mut event: Event) -> Result<Transformed, PluginError> {
        event.payload_mut()?.insert("stamp".into(), self.0.clone());
        Ok(Transformed::replace(event))
    }
}

wasp_plugin_sdk::export!(Stamp: transform);
