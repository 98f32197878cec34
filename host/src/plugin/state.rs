//! What each plugin instance's store holds, and the host side of the plugin
//! imports: `log` (into `tracing`, tagged with the plugin name), `clock`, a
//! locked-down WASI (no files, no network, no environment; stdout lines go
//! to the log at info, stderr lines at warn, tagged too), and the memory
//! limiter.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{clock, log, types};

/// How much of a plugin's stderr is kept to explain a trap (the panic message).
const STDERR_TAIL: usize = 2048;

/// The data of one plugin instance's store.
pub struct PluginState {
    plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    stderr: OutputTail,
}

impl PluginState {
    /// State for an instance of plugin `plugin` limited to `memory_limit` bytes.
    pub fn new(plugin: Arc<str>, memory_limit: u64) -> Self {
        let stderr = OutputTail::new(plugin.clone(), Stream::Stderr);
        let stdout = OutputTail::new(plugin.clone(), Stream::Stdout);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout)
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            plugin,
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            stderr,
        }
    }

    /// The memory limiter (installed on the store before instantiation).
    pub fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }

    /// The memory limiter, read-only.
    pub fn limiter_ref(&self) -> &MemoryLimiter {
        &self.limiter
    }

    /// The end of what the plugin wrote to stderr (a panic message, usually).
    pub fn stderr_tail(&self) -> String {
        self.stderr.tail()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for PluginState {}

impl log::Host for PluginState {
    fn log(&mut self, level: log::Level, message: String, fields: Vec<log::Field>) {
        let plugin = &*self.plugin;
        let fields = FieldList(&fields);
        match level {
            log::Level::Trace => tracing::trace!(plugin, %fields, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, %fields, "{message}"),
            log::Level::Info => tracing::info!(plugin, %fields, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, %fields, "{message}"),
            log::Level::Error => tracing::error!(plugin, %fields, "{message}"),
        }
    }
}

impl clock::Host for PluginState {
    fn now_ms(&mut self) -> u64 {
        crate::clock::now_ms()
    }
}

/// Renders plugin log fields as `key=value key=value`.
struct FieldList<'a>(&'a [log::Field]);

impl std::fmt::Display for FieldList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, field) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}={:?}", field.key, field.value)?;
        }
        Ok(())
    }
}

/// Enforces a plugin's memory limit. Growth past the limit is refused (the
/// guest sees `memory.grow` fail, as the wasm spec allows); the refusal is
/// remembered so that the trap that usually follows is reported as what it
/// is: the memory limit.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
    refused: Option<u64>,
    peak: u64,
}

impl MemoryLimiter {
    fn new(limit: u64) -> Self {
        Self {
            limit,
            refused: None,
            peak: 0,
        }
    }

    /// The size the plugin asked for when growth was last refused.
    pub fn refused(&self) -> Option<u64> {
        self.refused
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The largest size a memory was allowed to grow to, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.refused = Some(desired as u64);
            return Ok(false);
        }
        self.peak = self.peak.max(desired as u64);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// A guest output stream: each line goes to the log; stderr also keeps its
/// last bytes to explain a trap.
#[derive(Clone)]
struct OutputTail {
    plugin: Arc<str>,
    stream: Stream,
    buffer: Arc<Mutex<VecDeque<u8>>>,
}

impl OutputTail {
    fn new(plugin: Arc<str>, stream: Stream) -> Self {
        Self {
            plugin,
            stream,
            buffer: Arc::default(),
        }
    }

    fn tail(&self) -> String {
        let buffer = self.buffer.lock().expect("stderr buffer lock");
        let (a, b) = buffer.as_slices();
        let mut bytes = a.to_vec();
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }

    fn record(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            match self.stream {
                Stream::Stdout => tracing::info!(plugin = &*self.plugin, "stdout: {line}"),
                Stream::Stderr => tracing::warn!(plugin = &*self.plugin, "stderr: {line}"),
            }
        }
        if let Stream::Stderr = self.stream {
            let mut buffer = self.buffer.lock().expect("stderr buffer lock");
            buffer.extend(bytes);
            let excess = buffer.len().saturating_sub(STDERR_TAIL);
            buffer.drain(..excess);
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for OutputTail {
    async fn ready(&mut self) {}
}

impl OutputStream for OutputTail {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.record(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl IsTerminal for OutputTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}
