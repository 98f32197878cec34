//! The runtime behind [`crate::export!`]: generic functions the generated
//! bindings call, holding the plugin instance and per-endpoint settings.
//! The macro supplies the storage (a `thread_local!` of the concrete type);
//! a component instance is single-threaded, so that is the instance.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::de::DeserializeOwned;

use crate::wit::types;
use crate::{Endpoint, Event, Filter, Format, Plugin, PluginError, Route, Transform};

/// Where the macro keeps the plugin built by `init`.
pub type Slot<T> = RefCell<Option<T>>;

/// Where the macro keeps endpoint settings for a format plugin.
pub type EndpointSlot<S> = RefCell<HashMap<String, S>>;

/// Parse a JSON config block. `null` (no block) also tries `{}`, so config
/// structs whose fields all have defaults work without a block.
pub fn parse_config<C: DeserializeOwned>(json: &str, what: &str) -> Result<C, PluginError> {
    match serde_json::from_str::<C>(json) {
        Ok(config) => Ok(config),
        Err(_) if json.trim() == "null" => serde_json::from_str::<C>("{}").map_err(|e| {
            PluginError::invalid_config(format!(
                "a `{what}` block is required: {}",
                without_position(&e)
            ))
        }),
        Err(e) => Err(PluginError::invalid_config(without_position(&e))),
    }
}

/// serde_json's message without " at line 1 column N", which would point
/// into JSON the user never wrote (they wrote YAML).
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn with_plugin<T, R>(
    slot: &Slot<T>,
    call: impl FnOnce(&T) -> Result<R, PluginError>,
) -> Result<R, PluginError> {
    let plugin = slot.borrow();
    let plugin = plugin
        .as_ref()
        .ok_or_else(|| PluginError::failed("the plugin was called before `init`"))?;
    call(plugin)
}

/// `plugin.init`.
pub fn init<T: Plugin>(slot: &Slot<T>, config: String) -> Result<(), PluginError> {
    let config = parse_config::<T::Config>(&config, "config")?;
    let plugin = T::init(config)?;
    *slot.borrow_mut() = Some(plugin);
    Ok(())
}

/// `filter.filter`.
pub fn filter<T: Filter>(slot: &Slot<T>, event: types::Event) -> Result<bool, PluginError> {
    with_plugin(slot, |plugin| plugin.filter(&Event::from_raw(event)))
}

/// `transform.transform`.
pub fn transform<T: Transform>(
    slot: &Slot<T>,
    event: types::Event,
) -> Result<types::Transformed, PluginError> {
    with_plugin(slot, |plugin| plugin.transform(Event::from_raw(event)))
}

/// `route.route`.
pub fn route<T: Route>(slot: &Slot<T>, event: types::Event) -> Result<Vec<String>, PluginError> {
    with_plugin(slot, |plugin| plugin.route(&Event::from_raw(event)))
}

/// `format.configure-endpoint`.
pub fn configure_endpoint<T: Format>(
    slot: &Slot<T>,
    endpoints: &EndpointSlot<T::Settings>,
    endpoint: String,
    settings: String,
) -> Result<(), PluginError> {
    let parsed = parse_config::<T::Settings>(&settings, "settings")?;
    with_plugin(slot, |plugin| plugin.check_settings(&endpoint, &parsed))?;
    endpoints.borrow_mut().insert(endpoint, parsed);
    Ok(())
}

/// `format.format`.
pub fn format<T: Format>(
    slot: &Slot<T>,
    endpoints: &EndpointSlot<T::Settings>,
    event: types::Event,
    endpoint: String,
) -> Result<types::Formatted, PluginError> {
    let endpoints = endpoints.borrow();
    let settings = endpoints.get(&endpoint).ok_or_else(|| {
        PluginError::failed(format!(
            "endpoint `{endpoint}` was not configured with this format"
        ))
    })?;
    with_plugin(slot, |plugin| {
        plugin.format(
            &Event::from_raw(event),
            &Endpoint {
                name: &endpoint,
                settings,
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Defaults {
        #[serde(default)]
        words: Vec<String>,
    }

    #[derive(serde::Deserialize, Debug)]
    struct Required {
        #[allow(dead_code)]
        key: String,
    }

    #[test]
    fn config_parsing() {
        assert_eq!(
            parse_config::<Defaults>("null", "config").unwrap(),
            Defaults { words: vec![] }
        );
        assert_eq!(parse_config::<()>("null", "config").unwrap(), ());
        let error = parse_config::<Defaults>(r#"{"word": 1}"#, "config").unwrap_err();
        assert_eq!(
            error,
            PluginError::InvalidConfig("unknown field `word`, expected `words`".into())
        );
        let error = parse_config::<Required>("null", "settings").unwrap_err();
        assert_eq!(
            error,
            PluginError::InvalidConfig(
                "a `settings` block is required: missing field `key`".into()
            )
        );
    }
}
