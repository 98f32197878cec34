//! On-disk cache of compiled components. Compiling a component with
//! Cranelift costs tens of milliseconds; loading the serialized artifact
//! costs a fraction of one. Entries are keyed by the SHA-256 of the wasm
//! bytes and the engine fingerprint (wasmtime version + configuration), so a
//! changed plugin or a new wasmtime never loads stale code.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The wasmtime release compiled code is produced by; part of every key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// A directory of compiled components, or none (compile every time).
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
    fingerprint: String,
}

/// How a component was obtained, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from the cache.
    Hit,
    /// Compiled and written to the cache.
    Miss,
    /// Compiled; no cache configured.
    Disabled,
}

impl ComponentCache {
    /// A cache in `dir` (created on first write), for an engine with `fingerprint`.
    pub fn new(dir: Option<PathBuf>, fingerprint: String) -> Self {
        Self { dir, fingerprint }
    }

    /// The cache file for `wasm`.
    pub fn entry_path(&self, wasm: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let digest = hex::encode(Sha256::digest(wasm));
        let mut key = StableHasher::default();
        key.write_str(&self.fingerprint);
        key.write_str(WASMTIME_VERSION);
        Some(dir.join(format!("{}-{}.cwasm", &digest[..32], &key.hex()[..16])))
    }

    /// Load `wasm`'s compiled form from the cache, or compile it and store it.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> Result<(Component, CacheOutcome), wasmtime::Error> {
        let Some(path) = self.entry_path(wasm) else {
            return Ok((
                Component::from_binary(engine, wasm)?,
                CacheOutcome::Disabled,
            ));
        };
        if path.is_file() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), error = %format!("{error:#}"),
                        "discarding unusable compiled-plugin cache entry");
                    let _ = fs::remove_file(&path);
                }
            }
        }
        let component = Component::from_binary(engine, wasm)?;
        if let Err(error) = store(&path, &component) {
            tracing::warn!(path = %path.display(), %error, "cannot write compiled-plugin cache entry");
        }
        Ok((component, CacheOutcome::Miss))
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> Result<Component, wasmtime::Error> {
    // SAFETY: files in the cache directory are written only by `store` below,
    // from `Component::serialize` of this engine's configuration (the file
    // name carries the engine fingerprint), and land by atomic rename, so a
    // reader never sees a partial file. wasmtime additionally checks the
    // artifact header and engine compatibility before using it.
    unsafe { Component::deserialize_file(engine, path) }
}

fn store(path: &Path, component: &Component) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    let dir = path.parent().ok_or("cache path has no parent")?;
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id()
    ));
    let mut file = fs::File::create(&temp).map_err(|e| e.to_string())?;
    file.write_all(&bytes).map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    fs::rename(&temp, path).map_err(|e| e.to_string())
}

/// A `Hasher` over SHA-256, so `Hash` values (like wasmtime's compatibility
/// hash) give the same key on every run and every Rust release.
#[derive(Default)]
pub struct StableHasher(Sha256);

impl StableHasher {
    /// Hash a string with a length prefix.
    pub fn write_str(&mut self, text: &str) {
        std::hash::Hasher::write(self, &(text.len() as u64).to_le_bytes());
        std::hash::Hasher::write(self, text.as_bytes());
    }

    /// The digest so far, as hex.
    pub fn hex(&self) -> String {
        hex::encode(self.0.clone().finalize())
    }
}

impl std::hash::Hasher for StableHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_content_and_engine() {
        let dir = Some(PathBuf::from("/cache"));
        let a = ComponentCache::new(dir.clone(), "engine-a".into());
        let b = ComponentCache::new(dir, "engine-b".into());
        let one = a.entry_path(b"one").unwrap();
        assert_ne!(one, a.entry_path(b"two").unwrap());
        assert_ne!(one, b.entry_path(b"one").unwrap());
        assert_eq!(one, a.entry_path(b"one").unwrap());
        assert!(
            ComponentCache::new(None, "x".into())
                .entry_path(b"one")
                .is_none()
        );
    }
}
