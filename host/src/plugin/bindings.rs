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

/// The WIT package this host speaks: the `package` line of every file in
/// `wit/` (the one source; a test checks that all files agree). A plugin
/// built against another, incompatible version is refused at load with both
/// versions named.
pub mod wit_package {
    /// The package with its version, e.g. `wasp:plugin@0.1.0`.
    pub fn id() -> &'static str {
        include_str!("../../../wit/types.wit")
            .lines()
            .find_map(|line| line.strip_prefix("package "))
            .and_then(|rest| rest.strip_suffix(';'))
            .expect("wit/types.wit starts with its package")
    }

    /// The package name, e.g. `wasp:plugin`.
    pub fn name() -> &'static str {
        id().split_once('@').map_or(id(), |(name, _)| name)
    }

    /// The package version, e.g. `0.1.0`.
    pub fn version() -> &'static str {
        id().split_once('@').map_or("", |(_, version)| version)
    }

    /// Whether a plugin built against `version` links with this host: the
    /// same version, or a semver-compatible one (`0.1.x` for `0.1.0`, `1.y.z`
    /// for `1.0.0`) — wasmtime links those and reports any function missing.
    pub fn compatible(version: &str) -> bool {
        fn parts(v: &str) -> Option<(u64, u64)> {
            let mut it = v.split(['.', '-', '+']);
            let major = it.next()?.parse().ok()?;
            let minor = it.next()?.parse().ok()?;
            it.next()?.parse::<u64>().ok()?;
            Some((major, minor))
        }
        match (parts(version), parts(self::version())) {
            (Some((0, a)), Some((0, b))) => a == b,
            (Some((a, _)), Some((b, _))) => a == b && a > 0,
            _ => false,
        }
    }

    /// The version in an import/export name of this package
    /// (`wasp:plugin/filter@0.1.0` → `Some(Some("0.1.0"))`, no version →
    /// `Some(None)`), or `None` for another package's name.
    pub fn version_of(name: &str) -> Option<Option<&str>> {
        let rest = name.strip_prefix(self::name())?.strip_prefix('/')?;
        Some(rest.split_once('@').map(|(_, version)| version))
    }
}

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

#[cfg(test)]
mod tests {
    use super::{export_names, wit_package};

    #[test]
    fn the_version_is_the_one_in_wit() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit");
        assert_eq!(wit_package::id(), "wasp:plugin@0.1.0");
        let expected = format!("package {};", wit_package::id());
        let mut files = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "wit") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert_eq!(text.lines().next(), Some(expected.as_str()), "{path:?}");
                files += 1;
            }
        }
        assert!(files >= 3);
        for name in [
            export_names::PLUGIN,
            export_names::FILTER,
            export_names::TRANSFORM,
            export_names::ROUTE,
            export_names::FORMAT,
        ] {
            assert_eq!(
                wit_package::version_of(name),
                Some(Some(wit_package::version()))
            );
        }
    }

    #[test]
    fn compatible_versions_follow_semver() {
        assert!(wit_package::compatible("0.1.0"));
        assert!(wit_package::compatible("0.1.7"));
        assert!(!wit_package::compatible("0.2.0"));
        assert!(!wit_package::compatible("1.0.0"));
        assert!(!wit_package::compatible("0.1"));
        assert!(!wit_package::compatible("x"));
        assert_eq!(wit_package::version_of("wasp:plugin/log"), Some(None));
        assert_eq!(wit_package::version_of("wasi:io/streams@0.2.0"), None);
        assert_eq!(wit_package::version_of("wasp:pluginx/log@0.1.0"), None);
    }
}
