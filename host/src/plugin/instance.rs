//! Live plugin instances. A [`PluginSpec`] is a compiled plugin plus what
//! wasp.yaml says about it (name, config, limits, the endpoints a format
//! serves); an [`InstanceSlot`] owns one instance of it, reused for event
//! after event, and replaces it after a trap (a trapped store is dead).
//!
//! Every call runs under the plugin's time limit (epoch deadline) and memory
//! limit (resource limiter), both installed before instantiation. What goes
//! wrong is reported as a [`CallError`]: the plugin's own error, kept apart
//! from traps (timeout, memory limit, panic).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Store, Trap};

use super::bindings::{
    Event, Formatted, PluginError, Transformed, filter, format, plugin, route, transform,
};
use super::engine::PluginEngine;
use super::loader::{CompiledPlugin, Kind};
use super::state::PluginState;

/// Per-plugin limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub memory: u64,
    /// Longest a single call may run.
    pub time: Duration,
}

impl Limits {
    /// Default memory limit: 64 MiB.
    pub const DEFAULT_MEMORY: u64 = 64 << 20;
    /// Default time limit per call: 100 ms.
    pub const DEFAULT_TIME: Duration = Duration::from_millis(100);
    /// `init` and `configure-endpoint` get at least this long.
    pub const SETUP_TIME: Duration = Duration::from_secs(1);
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: Self::DEFAULT_MEMORY,
            time: Self::DEFAULT_TIME,
        }
    }
}

/// A compiled plugin configured for use.
#[derive(Debug)]
pub struct PluginSpec {
    /// The plugin's name in wasp.yaml (what logs and metrics say).
    pub name: Arc<str>,
    /// The compiled component.
    pub compiled: Arc<CompiledPlugin>,
    /// The `config:` block as JSON (`null` when absent).
    pub config_json: String,
    /// Memory and time limits.
    pub limits: Limits,
    /// For format plugins: `(endpoint name, settings JSON)` of each endpoint it serves.
    pub endpoints: Vec<(String, String)>,
}

/// Why a trap happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapReason {
    /// The call ran past the time limit.
    Timeout(Duration),
    /// The plugin tried to grow its memory past the limit.
    MemoryLimit {
        /// The limit, in bytes.
        limit: u64,
        /// The size it asked for.
        requested: u64,
    },
    /// The plugin panicked (the message comes from its stderr).
    Panic(String),
    /// Any other trap.
    Other(String),
}

impl fmt::Display for TrapReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrapReason::Timeout(limit) => write!(
                f,
                "ran longer than its time limit of {} ms",
                limit.as_millis()
            ),
            TrapReason::MemoryLimit { limit, requested } => write!(
                f,
                "exceeded its memory limit of {} (asked for {})",
                human_bytes(*limit),
                human_bytes(*requested)
            ),
            TrapReason::Panic(message) => write!(f, "panicked: {message}"),
            TrapReason::Other(message) => write!(f, "trapped: {message}"),
        }
    }
}

/// The step of starting an instance that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartStage {
    /// Instantiation (linking, start functions).
    Instantiate,
    /// `init` (the plugin's config).
    Init,
    /// `configure-endpoint` for this endpoint (its settings).
    Endpoint(String),
}

/// What went wrong in a plugin call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error on purpose; the instance stays usable.
    #[error("{}", error.describe(plugin))]
    Plugin {
        /// Plugin name.
        plugin: Arc<str>,
        /// Its error.
        error: PluginError,
    },
    /// The plugin trapped; its instance was discarded.
    #[error("plugin `{plugin}` {reason}")]
    Trap {
        /// Plugin name.
        plugin: Arc<str>,
        /// Why.
        reason: TrapReason,
    },
    /// The plugin could not be instantiated or initialized.
    #[error("plugin `{plugin}` could not start: {message}")]
    Start {
        /// Plugin name.
        plugin: Arc<str>,
        /// Which step failed.
        stage: StartStage,
        /// Why.
        message: String,
    },
    /// The plugin does not export the kind it was called as.
    #[error("plugin `{plugin}` is not a {kind} plugin")]
    NotExported {
        /// Plugin name.
        plugin: Arc<str>,
        /// The kind.
        kind: Kind,
    },
}

impl CallError {
    /// A short label for metrics: `error`, `timeout`, `memory`, `panic`, `trap`, `start`.
    pub fn label(&self) -> &'static str {
        match self {
            CallError::Plugin { .. } | CallError::NotExported { .. } => "error",
            CallError::Trap { reason, .. } => match reason {
                TrapReason::Timeout(_) => "timeout",
                TrapReason::MemoryLimit { .. } => "memory",
                TrapReason::Panic(_) => "panic",
                TrapReason::Other(_) => "trap",
            },
            CallError::Start { .. } => "start",
        }
    }
}

/// One live instance of a plugin.
pub struct PluginInstance {
    store: Store<PluginState>,
    filter: Option<filter::Guest>,
    transform: Option<transform::Guest>,
    route: Option<route::Guest>,
    format: Option<format::Guest>,
    spec: Arc<PluginSpec>,
    ticks: u64,
}

impl PluginSpec {
    /// Instantiate the plugin, call `init` with its config and, for a format,
    /// `configure-endpoint` for each endpoint it serves.
    pub fn instantiate(
        self: &Arc<Self>,
        engine: &PluginEngine,
    ) -> Result<PluginInstance, CallError> {
        let compiled = &self.compiled;
        let mut store = Store::new(
            engine.engine(),
            PluginState::new(self.name.clone(), self.limits.memory),
        );
        store.limiter(|state| state.limiter());
        let setup_ticks = PluginEngine::ticks_for(self.limits.time.max(Limits::SETUP_TIME));
        store.set_epoch_deadline(setup_ticks);
        let start_at = |stage: StartStage, message: String| CallError::Start {
            plugin: self.name.clone(),
            stage,
            message,
        };
        let start = |message: String| start_at(StartStage::Instantiate, message);
        let instance = compiled.pre.instantiate(&mut store).map_err(|e| {
            start(
                describe_failure(&store, &e, self.limits.time.max(Limits::SETUP_TIME)).to_string(),
            )
        })?;
        let lifecycle: plugin::Guest = compiled
            .plugin
            .load(&mut store, &instance)
            .map_err(|e| start(format!("{e:#}")))?;
        macro_rules! load {
            ($field:ident) => {
                match &compiled.$field {
                    Some(indices) => Some(
                        indices
                            .load(&mut store, &instance)
                            .map_err(|e| start(format!("{e:#}")))?,
                    ),
                    None => None,
                }
            };
        }
        let filter = load!(filter);
        let transform = load!(transform);
        let route = load!(route);
        let format = load!(format);

        match lifecycle.call_init(&mut store, &self.config_json) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                return Err(start_at(
                    StartStage::Init,
                    format!("init rejected the config: {}", error.message()),
                ));
            }
            Err(e) => {
                return Err(start_at(
                    StartStage::Init,
                    format!("init {}", describe_failure(&store, &e, Limits::SETUP_TIME)),
                ));
            }
        }
        if let Some(format) = &format {
            for (endpoint, settings) in &self.endpoints {
                store.set_epoch_deadline(setup_ticks);
                match format.call_configure_endpoint(&mut store, endpoint, settings) {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        return Err(start_at(
                            StartStage::Endpoint(endpoint.clone()),
                            format!(
                                "endpoint `{endpoint}`: settings rejected: {}",
                                error.message()
                            ),
                        ));
                    }
                    Err(e) => {
                        return Err(start_at(
                            StartStage::Endpoint(endpoint.clone()),
                            format!(
                                "configuring endpoint `{endpoint}` {}",
                                describe_failure(&store, &e, Limits::SETUP_TIME)
                            ),
                        ));
                    }
                }
            }
        }
        Ok(PluginInstance {
            store,
            filter,
            transform,
            route,
            format,
            ticks: PluginEngine::ticks_for(self.limits.time),
            spec: self.clone(),
        })
    }
}

/// Classify a failed call: limiter refusals, epoch interrupts and panics
/// (whose message the guest printed to stderr) get their own reasons.
fn describe_failure(
    store: &Store<PluginState>,
    error: &wasmtime::Error,
    time: Duration,
) -> TrapReason {
    let state = store.data();
    if let Some(requested) = state.limiter_ref().refused() {
        return TrapReason::MemoryLimit {
            limit: state.limiter_ref().limit(),
            requested,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => TrapReason::Timeout(time),
        Some(Trap::UnreachableCodeReached) => {
            let stderr = state.stderr_tail();
            match panic_message(&stderr) {
                Some(message) => TrapReason::Panic(message),
                None => TrapReason::Other(format!("{error:#}")),
            }
        }
        _ => TrapReason::Other(format!("{error:#}")),
    }
}

/// The message of the last Rust panic in `stderr`.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.rfind("panicked at ")?;
    let rest = &stderr[start + "panicked at ".len()..];
    let (location, message) = rest.split_once(":\n").unwrap_or((rest, ""));
    let message = message.lines().next().unwrap_or("").trim();
    Some(if message.is_empty() {
        format!("at {location}")
    } else {
        format!("{message} (at {location})")
    })
}

impl fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginInstance")
            .field("plugin", &self.spec.name)
            .finish_non_exhaustive()
    }
}

impl PluginInstance {
    /// The spec this instance was made from.
    pub fn spec(&self) -> &Arc<PluginSpec> {
        &self.spec
    }

    /// The largest linear memory this instance has grown to, in bytes
    /// (what its memory limit is compared with).
    pub fn memory_peak(&self) -> u64 {
        self.store.data().limiter_ref().peak()
    }

    fn prepare(&mut self) {
        self.store.set_epoch_deadline(self.ticks);
    }

    fn result<T>(&self, outcome: wasmtime::Result<Result<T, PluginError>>) -> Result<T, CallError> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(CallError::Plugin {
                plugin: self.spec.name.clone(),
                error,
            }),
            Err(error) => Err(CallError::Trap {
                plugin: self.spec.name.clone(),
                reason: describe_failure(&self.store, &error, self.spec.limits.time),
            }),
        }
    }

    fn not_exported(&self, kind: Kind) -> CallError {
        CallError::NotExported {
            plugin: self.spec.name.clone(),
            kind,
        }
    }

    /// Run the filter.
    pub fn filter(&mut self, event: &Event) -> Result<bool, CallError> {
        let guest = self
            .filter
            .clone()
            .ok_or_else(|| self.not_exported(Kind::Filter))?;
        self.prepare();
        let outcome = guest.call_filter(&mut self.store, event);
        self.result(outcome)
    }

    /// Run the transform.
    pub fn transform(&mut self, event: &Event) -> Result<Transformed, CallError> {
        let guest = self
            .transform
            .clone()
            .ok_or_else(|| self.not_exported(Kind::Transform))?;
        self.prepare();
        let outcome = guest.call_transform(&mut self.store, event);
        self.result(outcome)
    }

    /// Run the route.
    pub fn route(&mut self, event: &Event) -> Result<Vec<String>, CallError> {
        let guest = self
            .route
            .clone()
            .ok_or_else(|| self.not_exported(Kind::Route))?;
        self.prepare();
        let outcome = guest.call_route(&mut self.store, event);
        self.result(outcome)
    }

    /// Run the format for `endpoint`.
    pub fn format(&mut self, event: &Event, endpoint: &str) -> Result<Formatted, CallError> {
        let guest = self
            .format
            .clone()
            .ok_or_else(|| self.not_exported(Kind::Format))?;
        self.prepare();
        let outcome = guest.call_format(&mut self.store, event, endpoint);
        self.result(outcome)
    }
}

/// One instance of one plugin, owned by one worker; made on first use and
/// made again after a trap.
pub struct InstanceSlot {
    spec: Arc<PluginSpec>,
    engine: PluginEngine,
    live: Option<PluginInstance>,
}

impl InstanceSlot {
    /// An empty slot for `spec`.
    pub fn new(spec: Arc<PluginSpec>, engine: PluginEngine) -> Self {
        Self::with_instance(spec, engine, None)
    }

    /// A slot holding `instance` (made ahead of time) if there is one.
    pub fn with_instance(
        spec: Arc<PluginSpec>,
        engine: PluginEngine,
        instance: Option<PluginInstance>,
    ) -> Self {
        Self {
            spec,
            engine,
            live: instance,
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &Arc<str> {
        &self.spec.name
    }

    /// Run `call` on the instance (creating it if needed). A trap discards
    /// the instance; the next call gets a fresh one.
    pub fn call<R>(
        &mut self,
        call: impl FnOnce(&mut PluginInstance) -> Result<R, CallError>,
    ) -> Result<R, CallError> {
        if self.live.is_none() {
            self.live = Some(self.spec.instantiate(&self.engine)?);
        }
        let instance = self.live.as_mut().expect("instantiated above");
        let outcome = call(instance);
        if matches!(outcome, Err(CallError::Trap { .. })) {
            self.live = None;
        }
        outcome
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if value.fract() == 0.0 {
                format!("{value:.0} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_stderr() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:42:22:\nhostile plugin panicked on purpose\nnote: run with `RUST_BACKTRACE=1`";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("hostile plugin panicked on purpose (at src/lib.rs:42:22)")
        );
        assert_eq!(panic_message("nothing here"), None);
    }

    #[test]
    fn bytes_read_naturally() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
