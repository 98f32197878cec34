//! The wasmtime engine every plugin runs on: compilation settings, the
//! instance allocator, and the epoch ticker that enforces per-call time
//! limits. One engine per process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// How often the epoch advances. Per-call time limits are rounded up to
/// whole ticks (plus one, because a call may start just before a tick).
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Largest linear memory any plugin may be allowed (the per-plugin limit is
/// enforced by a resource limiter below this ceiling).
pub const MAX_PLUGIN_MEMORY: u64 = 4 << 30;

/// Concurrent instances the pooling allocator reserves slots for (every
/// plugin × every pipeline worker × live pipeline generations).
const POOL_INSTANCES: u32 = 1000;

/// The shared engine plus the thread that ticks its epoch.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    /// Stops the epoch thread when the last clone of the engine goes.
    _ticker: Arc<Ticker>,
    pooling: bool,
}

struct Ticker {
    stop: Arc<AtomicBool>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

/// The engine could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the WebAssembly engine: {0}")]
pub struct EngineError(String);

impl PluginEngine {
    /// Create the engine: Cranelift at `speed`, epoch interruption, and the
    /// pooling allocator (falling back to on-demand allocation when the
    /// machine refuses the pool's virtual memory reservation).
    pub fn new() -> Result<Self, EngineError> {
        compile_at_low_priority();
        let (engine, pooling) = match Engine::new(&config(true)) {
            Ok(engine) => (engine, true),
            Err(error) => {
                tracing::warn!(%error, "pooling allocator unavailable; using on-demand instance allocation");
                let engine =
                    Engine::new(&config(false)).map_err(|e| EngineError(format!("{e:#}")))?;
                (engine, false)
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("wasp-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| EngineError(format!("cannot start the epoch thread: {e}")))?
        };
        Ok(Self {
            engine,
            _ticker: Arc::new(Ticker {
                stop,
                thread: std::sync::Mutex::new(Some(thread)),
            }),
            pooling,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether instances come from the pooling allocator.
    pub fn is_pooling(&self) -> bool {
        self.pooling
    }

    /// A stable fingerprint of everything that makes compiled code
    /// compatible with this engine: wasmtime's version and configuration.
    pub fn fingerprint(&self) -> String {
        let mut hasher = super::cache::StableHasher::default();
        std::hash::Hash::hash(&self.engine.precompile_compatibility_hash(), &mut hasher);
        hasher.hex()
    }

    /// Epoch ticks to allow for a call limited to `limit`.
    pub fn ticks_for(limit: Duration) -> u64 {
        let tick = EPOCH_TICK.as_nanos();
        (limit.as_nanos().div_ceil(tick) as u64).max(1) + 1
    }
}

fn config(pooling: bool) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true);
    // `WASP_PERFMAP=1` writes /tmp/perf-<pid>.map so `perf report` names
    // the plugins' compiled functions (for profiling; off by default).
    if std::env::var_os("WASP_PERFMAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 4)
            .max_memory_size(MAX_PLUGIN_MEMORY as usize)
            .max_core_instance_size(4 << 20)
            .max_component_instance_size(4 << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Build rayon's global pool (where Cranelift compiles a component's
/// functions in parallel) with threads at nice 10, once per process: a big
/// plugin compiled on a hot reload then takes the CPU that events leave
/// over instead of competing with ingest and delivery (BENCHMARKS.md,
/// "hot reload adding a JS plugin"). Best effort: if the pool already
/// exists, or the priority cannot be set, compilation runs as before.
fn compile_at_low_priority() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let built = rayon::ThreadPoolBuilder::new()
            .thread_name(|n| format!("wasp-compile-{n}"))
            .start_handler(|_| {
                #[cfg(target_os = "linux")]
                if let Err(error) =
                    rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10)
                {
                    tracing::debug!(%error, "compile thread keeps its priority");
                }
            })
            .build_global();
        if let Err(error) = built {
            tracing::debug!(%error, "rayon's pool exists; compile threads keep their priority");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_up_and_add_one() {
        assert_eq!(PluginEngine::ticks_for(Duration::from_millis(5)), 2);
        assert_eq!(PluginEngine::ticks_for(Duration::from_millis(6)), 3);
        assert_eq!(PluginEngine::ticks_for(Duration::from_millis(100)), 21);
        assert_eq!(PluginEngine::ticks_for(Duration::ZERO), 2);
    }
}
