//! The built-in format plugins run outside a host: one live instance of a
//! format with one endpoint's settings, fed canonical events as the
//! delivery path feeds them (for round-trip and bridge tests).

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use wasp::plugin::bindings::Formatted;
use wasp::plugin::{Limits, PluginEngine, PluginInstance, PluginRuntime, PluginSpec, builtin};

use crate::shared_cache_dir;

/// The endpoint name every instance made here knows.
const ENDPOINT: &str = "endpoint";

/// One runtime for every instance, with the shared compiled-plugin cache.
fn runtime() -> &'static PluginRuntime {
    static RUNTIME: OnceLock<PluginRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        PluginRuntime::new(PluginEngine::new().unwrap(), Some(shared_cache_dir())).unwrap()
    })
}

/// A live instance of built-in `format` with `settings` (JSON) for its one
/// endpoint.
pub fn instance(format: &str, settings: &str) -> Arc<Mutex<PluginInstance>> {
    let runtime = runtime();
    let spec = Arc::new(PluginSpec {
        name: format.into(),
        compiled: runtime.load(format, builtin::get(format).unwrap()).unwrap(),
        config_json: "null".into(),
        limits: Limits::default(),
        endpoints: vec![(ENDPOINT.into(), settings.into())],
    });
    Arc::new(Mutex::new(spec.instantiate(runtime.engine()).unwrap()))
}

/// The body `instance` sends for canonical `envelope`, or why it skips it.
pub fn encode(instance: &Mutex<PluginInstance>, envelope: &Value) -> Result<Vec<u8>, String> {
    let event = wasp::event::Event::from_value(envelope.clone())
        .map_err(|error| format!("not a canonical event: {error}"))?;
    let wit = wasp::pipeline::to_wit_event(&event);
    match instance.lock().unwrap().format(&wit, ENDPOINT) {
        Ok(Formatted::Send(request)) => Ok(request.body),
        Ok(Formatted::Skip(reason)) => Err(reason),
        Err(error) => panic!("the format failed: {error}"),
    }
}
