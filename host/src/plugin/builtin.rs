//! Plugins compiled from `plugins/` by the build script: the built-in ones
//! embedded in the binary (formats and examples), and the directory where
//! every built plugin (test-only ones included) was written.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// The component bytes of the built-in plugin `name`.
pub fn get(name: &str) -> Option<&'static [u8]> {
    EMBEDDED
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, bytes)| *bytes)
}

/// Names of all built-in plugins.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, _)| *name)
}

/// Path of a plugin built from `plugins/` (e.g. the test plugin `hostile`).
pub fn build_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(BUILD_DIR).join(format!("{name}.wasm"))
}
