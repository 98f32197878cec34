//! Loading a component: compile (or fetch from the cache), link it against
//! the host imports, and find which plugin kinds it exports. Loading fails
//! with a clear error when the bytes are not a component, when it needs
//! imports wasp does not provide, or when it exports no plugin kind.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::bindings::{self, export_names, filter, format, plugin, route, transform, wit_package};
use super::cache::{CacheOutcome, ComponentCache};
use super::engine::PluginEngine;
use super::state::PluginState;

/// The four things a plugin can be used as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Keep or drop events.
    Filter,
    /// Rewrite or drop events.
    Transform,
    /// Choose endpoints.
    Route,
    /// Turn events into webhook requests.
    Format,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::Filter, Kind::Transform, Kind::Route, Kind::Format];

    /// The kind's name as written in config and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Transform => "transform",
            Kind::Route => "route",
            Kind::Format => "format",
        }
    }

    /// The WIT interface a component exports to be usable as this kind.
    pub fn export_name(self) -> &'static str {
        match self {
            Kind::Filter => export_names::FILTER,
            Kind::Transform => export_names::TRANSFORM,
            Kind::Route => export_names::ROUTE,
            Kind::Format => export_names::FORMAT,
        }
    }

    /// Parse a kind name.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a component cannot be loaded as a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a WebAssembly component (e.g. a core module).
    #[error(
        "{label} is not a WebAssembly component{}",
        if *core_module { " (it is a core wasm module: build it for the wasm32-wasip2 target, or wrap it with `wasm-tools component new`)" } else { "" }
    )]
    NotAComponent {
        /// The plugin.
        label: String,
        /// Whether it is a core module.
        core_module: bool,
    },
    /// Compilation failed.
    #[error("{0} cannot be compiled: {1}")]
    Compile(String, String),
    /// The component imports something wasp does not provide.
    #[error(
        "{0} needs imports wasp does not provide: {1} (plugins may import only wasp:plugin/log, wasp:plugin/clock and WASI 0.2 without files or network)"
    )]
    Link(String, String),
    /// The component does not export the plugin lifecycle interface.
    #[error(
        "{label} does not export {} (it exports: {exports}); build it with wasp-plugin-sdk or a wasp:plugin world",
        export_names::PLUGIN
    )]
    NotAPlugin { label: String, exports: String },
    /// The component was built against another version of the WIT package.
    #[error(
        "{label} was built against {found}, but this wasp speaks {}@{}: rebuild it against this wasp's WIT (`wasp plugin build`, or wasp-plugin-sdk {})",
        wit_package::name(),
        wit_package::version(),
        wit_package::version()
    )]
    WitVersion {
        /// The plugin.
        label: String,
        /// The version(s) the plugin names, e.g. `wasp:plugin@0.2.0`.
        found: String,
    },
    /// The component's exports do not match the WIT wasp expects.
    #[error("{0} exports a different version of an interface than wasp expects: {1}")]
    Mismatch(String, String),
}

/// A compiled, linked plugin component: everything needed to make instances.
pub struct CompiledPlugin {
    label: String,
    sha256: String,
    cache: CacheOutcome,
    exports: Vec<String>,
    pub(super) pre: InstancePre<PluginState>,
    pub(super) plugin: plugin::GuestIndices,
    pub(super) filter: Option<filter::GuestIndices>,
    pub(super) transform: Option<transform::GuestIndices>,
    pub(super) route: Option<route::GuestIndices>,
    pub(super) format: Option<format::GuestIndices>,
}

impl fmt::Debug for CompiledPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledPlugin")
            .field("label", &self.label)
            .field("sha256", &self.sha256)
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl CompiledPlugin {
    /// Where the plugin came from (`builtin:waha`, a file path).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// SHA-256 of the component bytes, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Whether the compiled code came from the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// Whether the plugin exports `kind`.
    pub fn has(&self, kind: Kind) -> bool {
        match kind {
            Kind::Filter => self.filter.is_some(),
            Kind::Transform => self.transform.is_some(),
            Kind::Route => self.route.is_some(),
            Kind::Format => self.format.is_some(),
        }
    }

    /// The kinds the plugin exports.
    pub fn kinds(&self) -> Vec<Kind> {
        Kind::ALL.into_iter().filter(|k| self.has(*k)).collect()
    }

    /// Every export name of the component, for error messages.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// An error saying the plugin cannot be used as `kind`.
    pub fn require(&self, kind: Kind) -> Result<(), String> {
        if self.has(kind) {
            return Ok(());
        }
        let kinds: Vec<&str> = self.kinds().iter().map(|k| k.as_str()).collect();
        Err(format!(
            "{} does not export {} so it cannot be used as a {kind}; it is a {} plugin",
            self.label,
            kind.export_name(),
            if kinds.is_empty() {
                "no-kind".to_owned()
            } else {
                kinds.join(" + ")
            },
        ))
    }
}

/// Refuse a component whose `wasp:plugin` imports or exports name a version
/// this host cannot link, naming both versions (before linking, whose error
/// would only say an import is missing).
fn check_wit_version<'a>(
    label: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), LoadError> {
    let mut found: Vec<String> = Vec::new();
    let mut incompatible = false;
    for version in names.filter_map(wit_package::version_of) {
        incompatible |= !version.is_some_and(wit_package::compatible);
        let shown = match version {
            Some(v) => format!("{}@{v}", wit_package::name()),
            None => format!("{} without a version", wit_package::name()),
        };
        if !found.contains(&shown) {
            found.push(shown);
        }
    }
    if incompatible {
        return Err(LoadError::WitVersion {
            label: label.into(),
            found: found.join(" and "),
        });
    }
    Ok(())
}

/// Compiles and links plugins; one per process.
#[derive(Clone)]
pub struct PluginRuntime {
    engine: PluginEngine,
    linker: Arc<Linker<PluginState>>,
    cache: ComponentCache,
}

impl PluginRuntime {
    /// A runtime on `engine`, caching compiled components in `cache_dir`.
    pub fn new(
        engine: PluginEngine,
        cache_dir: Option<std::path::PathBuf>,
    ) -> Result<Self, LoadError> {
        let mut linker = Linker::<PluginState>::new(engine.engine());
        let link_error = |e: wasmtime::Error| LoadError::Link("the host".into(), format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link_error)?;
        bindings::AllKinds::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)
            .map_err(link_error)?;
        let cache = ComponentCache::new(cache_dir, engine.fingerprint());
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// Compile and link `wasm`, described by `label` in messages.
    pub fn load(&self, label: &str, wasm: &[u8]) -> Result<Arc<CompiledPlugin>, LoadError> {
        if !wasm.starts_with(b"\0asm") {
            return Err(LoadError::NotAComponent {
                label: label.into(),
                core_module: false,
            });
        }
        // Byte 4..8: version + layer; layer 0 is a core module, 1 a component.
        if wasm.get(6..8) == Some(&[0, 0]) {
            return Err(LoadError::NotAComponent {
                label: label.into(),
                core_module: true,
            });
        }
        let engine = self.engine.engine();
        let (component, cache) = self
            .cache
            .load(engine, wasm)
            .map_err(|e| LoadError::Compile(label.into(), format!("{e:#}")))?;
        let component_type = component.component_type();
        let exports: Vec<String> = component_type
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let imports = component_type.imports(engine).map(|(name, _)| name);
        check_wit_version(label, imports.chain(exports.iter().map(String::as_str)))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(label.into(), format!("{e:#}")))?;
        let has = |name: &str| component.get_export_index(None, name).is_some();
        if !has(export_names::PLUGIN) {
            return Err(LoadError::NotAPlugin {
                label: label.into(),
                exports: if exports.is_empty() {
                    "nothing".into()
                } else {
                    exports.join(", ")
                },
            });
        }
        let mismatch = |e: wasmtime::Error| LoadError::Mismatch(label.into(), format!("{e:#}"));
        let plugin = plugin::GuestIndices::new(&pre).map_err(mismatch)?;
        macro_rules! optional {
            ($module:ident, $name:expr) => {
                if has($name) {
                    Some($module::GuestIndices::new(&pre).map_err(mismatch)?)
                } else {
                    None
                }
            };
        }
        let compiled = CompiledPlugin {
            label: label.into(),
            sha256: hex::encode(Sha256::digest(wasm)),
            cache,
            exports,
            filter: optional!(filter, export_names::FILTER),
            transform: optional!(transform, export_names::TRANSFORM),
            route: optional!(route, export_names::ROUTE),
            format: optional!(format, export_names::FORMAT),
            plugin,
            pre,
        };
        Ok(Arc::new(compiled))
    }
}
