//! The one place the host generates Rust bindings for the WIT package in
//! `wit/` (world `all-kinds`). Every other module imports the plugin types
//! from here.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wasp:plugin/all-kinds",
    additional_derives: [PartialEq, Eq],
});

pub use exports::wasp::plugin::{filter, format, plugin, route, transform};
pub use wasp::plugin::types::{
    AttemptHeader, AttemptValue, Event, Formatted, Header, PluginError, Request, TimestampedHmac,
    Transformed,
};
pub use wasp::plugin::{clock, log, types};

/// Exact export names, as the host looks them up in a component.
pub mod export_names {
    /// The lifecycle interface every plugin exports.
    pub const PLUGIN: &str = "wasp:plugin/plugin@0.1.0";
    /// The filter kind.
    pub const FILTER: &str = "wasp:plugin/filter@0.1.0";
    /// The transform kind.
    pub const TRANSFORM: &str = "wasp:plugin/transform@0.1.0";
    /// The route kind.
    pub const ROUTE: &str = "wasp:plugin/route@0.1.0";
    /// The format kind.
    pub const FORMAT: &str = "wasp:plugin/format@0.1.0";
}

impl PluginError {
    /// The plugin's message, without the variant.
    pub fn message(&self) -> &str {
        match self {
            PluginError::InvalidConfig(message)
            | PluginError::InvalidEvent(message)
            | PluginError::Failed(message) => message,
        }
    }

    /// The error as a sentence about plugin `plugin`.
    pub fn describe(&self, plugin: &str) -> String {
        match self {
            PluginError::InvalidConfig(message) => {
                format!("plugin `{plugin}` reported invalid config: {message}")
            }
            PluginError::InvalidEvent(message) => {
                format!("plugin `{plugin}` rejected the event: {message}")
            }
            PluginError::Failed(message) => format!("plugin `{plugin}` failed: {message}"),
        }
    }
}
