//! # wasp-plugin-sdk
//!
//! Everything a Rust crate needs to be a wasp plugin: one dependency, one
//! macro. A plugin is a type that implements [`Plugin`] (how it is built from
//! its `config:` block) and any of the four kinds: [`Filter`], [`Transform`],
//! [`Route`], [`Format`]. [`export!`] generates the WebAssembly component
//! bindings for exactly the kinds you list.
//!
//! ```ignore
//! use wasp_plugin_sdk::{Event, Filter, Plugin, PluginError};
//!
//! struct OnlyGroups;
//!
//! impl Plugin for OnlyGroups {
//!     type Config = ();
//!     fn init(_: ()) -> Result<Self, PluginError> { Ok(OnlyGroups) }
//! }
//!
//! impl Filter for OnlyGroups {
//!     fn filter(&self, event: &Event) -> Result<bool, PluginError> {
//!         Ok(event.is_group())
//!     }
//! }
//!
//! wasp_plugin_sdk::export!(OnlyGroups: filter);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` (the crate is a
//! `cdylib`), then try it with `wasp plugin test target/…/only_groups.wasm
//! --event event.json`.

mod event;
mod glue;

/// The allocator of every plugin: talc, built for WebAssembly (smaller and
/// faster than the C allocator the standard library uses there). Plugins
/// allocate for every event (parsing, building bodies), so this matters.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
pub mod log;
mod request;

pub use event::Event;
pub use request::RequestExt;
pub use serde;
pub use serde_json::{self, Map, Value, json};
pub use wasp_plugin_sdk_macro::export;

/// The raw WIT bindings this SDK is built on (the `wasp:plugin` package's
/// types, log and clock interfaces). Plugin code rarely needs them directly.
pub mod wit {
    pub use crate::bindings::wasp::plugin::{clock, log, types};
}

pub use wit::types::{
    AttemptHeader, AttemptValue, Formatted, Header, PluginError, Request, TimestampedHmac,
    Transformed,
};

#[allow(unsafe_code, clippy::all, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        // `wit` in this crate is the repository's one `wit/` folder (a
        // symlink that `cargo package` turns into a copy).
        path: "wit",
        world: "wasp:plugin/imports",
        generate_unused_types: true,
        additional_derives: [PartialEq],
    });
}

/// A plugin: built once per instance from its `config:` block in wasp.yaml.
pub trait Plugin: Sized + 'static {
    /// The shape of the `config:` block. Use `()` when there is none; a
    /// struct whose fields all have defaults accepts a missing block.
    type Config: serde::de::DeserializeOwned;

    /// Build the plugin. Return [`PluginError::InvalidConfig`] to refuse the config.
    fn init(config: Self::Config) -> Result<Self, PluginError>;
}

/// A filter keeps (`true`) or drops (`false`) events.
pub trait Filter: Plugin {
    /// Decide on one event.
    fn filter(&self, event: &Event) -> Result<bool, PluginError>;
}

/// A transform rewrites or drops events.
pub trait Transform: Plugin {
    /// Transform one event. Return [`Transformed::Unchanged`] when nothing
    /// changed (cheapest), [`Transformed::replace`] with the edited event, or
    /// [`Transformed::Drop`].
    fn transform(&self, event: Event) -> Result<Transformed, PluginError>;
}

/// A route names the endpoints an event goes to.
pub trait Route: Plugin {
    /// Endpoint names (as in wasp.yaml) for one event; empty sends it nowhere.
    fn route(&self, event: &Event) -> Result<Vec<String>, PluginError>;
}

/// A format turns an event into the HTTP request one endpoint receives.
pub trait Format: Plugin {
    /// The shape of an endpoint's `settings:` block.
    type Settings: serde::de::DeserializeOwned;

    /// Check settings beyond what their type already enforces (called once
    /// per endpoint at load time).
    fn check_settings(
        &self,
        _endpoint: &str,
        _settings: &Self::Settings,
    ) -> Result<(), PluginError> {
        Ok(())
    }

    /// Format one event for one endpoint. Return [`Formatted::Skip`] with a
    /// reason when the format has no equivalent of the event.
    fn format(
        &self,
        event: &Event,
        endpoint: &Endpoint<'_, Self::Settings>,
    ) -> Result<Formatted, PluginError>;
}

/// The endpoint a [`Format`] is formatting for.
#[derive(Debug)]
pub struct Endpoint<'a, S> {
    /// The endpoint's name in wasp.yaml.
    pub name: &'a str,
    /// Its parsed settings.
    pub settings: &'a S,
}

/// The current time in Unix milliseconds, from the host's clock.
pub fn now_ms() -> u64 {
    wit::clock::now_ms()
}

impl PluginError {
    /// The plugin's config or an endpoint's settings are invalid.
    pub fn invalid_config(message: impl std::fmt::Display) -> Self {
        PluginError::InvalidConfig(message.to_string())
    }

    /// The event does not have the shape the plugin needs.
    pub fn invalid_event(message: impl std::fmt::Display) -> Self {
        PluginError::InvalidEvent(message.to_string())
    }

    /// Any other failure.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        PluginError::Failed(message.to_string())
    }
}

impl Transformed {
    /// Replace the event with `event` (typically edited through
    /// [`Event::payload_mut`]).
    pub fn replace(event: Event) -> Self {
        Transformed::Replace(event.into_json())
    }
}

/// Internals used by the code [`export!`] generates. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::glue::*;
    pub use wit_bindgen;
}
