//! The pipeline: routes pick events, plugin chains filter and transform
//! them, route plugins and static lists name endpoints, and each endpoint's
//! format plugin turns the event into the request it will receive.
//!
//! A [`Pipeline`] is one immutable generation built from one config
//! ([`build`]); [`Pipelines`] holds the current one and swaps in new ones
//! on reload. A [`WorkerPool`] runs events through the generation each
//! entered with. Calls only go downstream, to `delivery`.

mod build;
mod forward;
mod pool;
pub mod tail;
pub mod walk;
mod wit_event;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub use build::build;
pub use forward::forwarder;
pub use pool::{Arrival, Entry, Job, Retried, Sink, Submitter, WorkerPool};
pub use wit_event::to_wit_event;
pub use worker::{Processed, Scope, Worker};

use crate::config::glob::GlobSet;
use crate::delivery::Endpoint;
use crate::plugin::{Kind, PluginEngine, PluginInstance, PluginSpec};

/// How many pipeline worker threads `config` asks for (`pipeline.workers`,
/// else one per core).
pub fn worker_count(config: &crate::config::Config) -> usize {
    config
        .pipeline
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1)
}

/// One generation of the pipeline.
#[derive(Debug)]
pub struct Pipeline {
    /// Increases with every reload.
    pub generation: u64,
    /// SHA-256 of the config text it was built from.
    pub config_hash: String,
    /// Log each event's walk at info level.
    pub log_events: bool,
    plugins: Vec<Arc<PluginSpec>>,
    routes: Vec<Route>,
    endpoints: Vec<PipelineEndpoint>,
    endpoint_index: HashMap<String, usize>,
    /// Some endpoint wants its deliveries in order per session (not just
    /// per chat), so a session's events must keep their order end to end.
    orders_by_session: bool,
    /// Per plugin (same index as `plugins`): instances made while building,
    /// off the event path, for workers to take on their first event.
    warm: Vec<Mutex<Vec<PluginInstance>>>,
}

impl Pipeline {
    /// Make instances of every plugin until each has `workers` ready, so
    /// that no worker instantiates a plugin on an event's path (a JS or
    /// Python instance costs ~0.5 ms; see BENCHMARKS.md). Runs where the
    /// pipeline is built: at start and on the reload's blocking thread.
    pub fn prewarm(&self, engine: &PluginEngine, workers: usize) {
        for (spec, warm) in self.plugins.iter().zip(&self.warm) {
            let have = warm.lock().expect("warm instances").len();
            for _ in have..workers {
                match spec.instantiate(engine) {
                    Ok(instance) => warm.lock().expect("warm instances").push(instance),
                    // It started once while building; a worker will retry
                    // on its first event and report what fails.
                    Err(_) => break,
                }
            }
        }
    }

    /// A ready instance of plugin `index`, if one is left.
    pub(crate) fn take_warm(&self, index: usize) -> Option<PluginInstance> {
        self.warm.get(index)?.lock().expect("warm instances").pop()
    }

    /// The endpoints, as delivery sees them.
    pub fn endpoints(&self) -> impl Iterator<Item = &Arc<Endpoint>> {
        self.endpoints.iter().map(|e| &e.endpoint)
    }

    /// Whether a route of this name exists.
    pub fn has_route(&self, name: &str) -> bool {
        self.routes.iter().any(|route| route.name == name)
    }

    /// The plugins in use.
    pub fn plugins(&self) -> &[Arc<PluginSpec>] {
        &self.plugins
    }

    /// What must stay in order through the pipeline for `event`: its chat
    /// (or its session, when an endpoint orders by session or the event
    /// has no chat). Events with the same key are processed one after the
    /// other, in the order they were accepted.
    pub fn ordering_key(&self, event: &crate::event::Event) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        event.session().hash(&mut hasher);
        if !self.orders_by_session
            && let Some(chat) = &event.fields().chat_id
        {
            chat.hash(&mut hasher);
        }
        hasher.finish()
    }
}

#[derive(Debug)]
struct Route {
    name: String,
    sessions: GlobSet,
    events: GlobSet,
    chain: Vec<Step>,
    to: Vec<usize>,
    router: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Step {
    plugin: usize,
    kind: Kind,
}

#[derive(Debug)]
struct PipelineEndpoint {
    endpoint: Arc<Endpoint>,
    events: GlobSet,
    format: usize,
}

/// The current generation, swapped atomically on reload.
#[derive(Debug)]
pub struct Pipelines {
    current: RwLock<Arc<Pipeline>>,
}

impl Pipelines {
    /// Start with `pipeline`.
    pub fn new(pipeline: Pipeline) -> Self {
        Self {
            current: RwLock::new(Arc::new(pipeline)),
        }
    }

    /// The generation new events enter with.
    pub fn current(&self) -> Arc<Pipeline> {
        self.current.read().expect("pipeline lock").clone()
    }

    /// Make `pipeline` current; events already queued keep theirs.
    pub fn swap(&self, pipeline: Pipeline) -> Arc<Pipeline> {
        let pipeline = Arc::new(pipeline);
        *self.current.write().expect("pipeline lock") = pipeline.clone();
        pipeline
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::plugin::{PluginEngine, PluginRuntime};

    const CONFIG: &str = r#"
plugins:
  - {name: orders, builtin: keyword-filter, config: {keywords: [order]}}
  - {name: redact, builtin: redact}
endpoints:
  - {name: out, url: "http://127.0.0.1:9/hook", format: waha}
routes: [{chain: [orders, redact], to: [out]}]
"#;

    #[test]
    fn every_worker_finds_its_instances_made_when_the_config_loaded() {
        let dir = std::env::temp_dir();
        let loaded =
            crate::config::parse("wasp.yaml", CONFIG, &dir, &HashMap::<String, String>::new())
                .unwrap();
        let engine = PluginEngine::new().unwrap();
        let runtime = PluginRuntime::new(engine.clone(), None).unwrap();
        let pipeline = super::build(&loaded, &runtime, 1).unwrap();
        pipeline.prewarm(&engine, 3);
        let plugins = pipeline.plugins().len();
        assert_eq!(plugins, 3, "orders, redact and the waha format");
        for index in 0..plugins {
            for _ in 0..3 {
                let instance = pipeline.take_warm(index).expect("a ready instance");
                assert_eq!(instance.spec().name, pipeline.plugins()[index].name);
            }
            assert!(pipeline.take_warm(index).is_none());
        }
    }
}
