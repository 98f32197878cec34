//! WebAssembly plugins: the WIT bindings, the engine, compiled-component
//! caching, loading (with kind checks) and live instances with limits.
//!
//! The walk: [`PluginRuntime::load`] turns component bytes into a
//! [`CompiledPlugin`] (compiled once, cached on disk, exports checked);
//! a [`PluginSpec`] adds wasp.yaml's name, config and limits; each pipeline
//! worker owns an [`InstanceSlot`] per plugin and calls it for event after
//! event. Built-in plugins are embedded in the binary ([`builtin`]).

pub mod bindings;
pub mod builtin;
pub mod cache;
pub mod engine;
mod instance;
mod loader;
mod state;

pub use cache::{CacheOutcome, ComponentCache};
pub use engine::PluginEngine;
pub use instance::{
    CallError, InstanceSlot, Limits, PluginInstance, PluginSpec, StartStage, TrapReason,
};
pub use loader::{CompiledPlugin, Kind, LoadError, PluginRuntime};

#[cfg(test)]
mod tests;
