//! The worker pool: plain OS threads (WASM calls are synchronous and
//! CPU-bound, and must not run on tokio's async workers), each with its own
//! plugin instances and its own bounded queue. Jobs are spread over the
//! queues by their ordering key (chat, or session), so the events of one
//! chat are processed in the order they were accepted while different
//! chats run in parallel. A job carries the pipeline generation it entered
//! with, so a reload never changes the pipeline of an event already
//! accepted, and where its event stands in the store ([`Entry`]): a new
//! event is processed before it is stored, so that it is stored once,
//! with its deliveries, in one commit.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::Pipeline;
use super::worker::{Processed, Scope, Worker};
use crate::event::Event;
use crate::metrics::Metrics;
use crate::plugin::PluginEngine;
use crate::store::{Admitted, NewEvent, StoreError};

/// Jobs waiting per worker before submitters wait.
const QUEUE: usize = 2048;

/// What to do with each processed event (called on the worker thread, in
/// the order the worker processed them).
pub type Sink = Arc<dyn Fn(Entry, Processed) + Send + Sync>;

/// One event to process with the pipeline it entered.
pub struct Job {
    /// The event.
    pub event: Event,
    /// Its pipeline generation.
    pub pipeline: Arc<Pipeline>,
    /// Where it stands in the store.
    pub entry: Entry,
    /// Only part of the pipeline (a retry), or all of it.
    pub scope: Option<Scope>,
}

/// Where a job's event stands in the store.
#[derive(Debug)]
pub enum Entry {
    /// Stored before with this sequence number, and not routed (recovered
    /// after a restart): its deliveries are added to it
    /// ([`EventLog::complete`](crate::store::EventLog::complete)).
    Stored(i64),
    /// Not stored yet: it is stored with its deliveries in one commit
    /// ([`EventLog::admit_routed`](crate::store::EventLog::admit_routed)).
    Arriving(Arrival),
    /// A retry of failed plugin call `failure`: what it makes is stored as
    /// the failure's resolution
    /// ([`EventLog::resolve_failure`](crate::store::EventLog::resolve_failure)),
    /// and `reply` hears it.
    Retry {
        /// The failure retried.
        failure: i64,
        /// Hears what the retry made, once stored.
        reply: oneshot::Sender<Result<Retried, StoreError>>,
    },
}

/// What a retry of a failed plugin call made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retried {
    /// Deliveries it added to the outbox.
    pub deliveries: usize,
    /// Plugin calls that failed again.
    pub failures: usize,
}

/// A new event on its way to the store.
#[derive(Debug)]
pub struct Arrival {
    /// The row to store.
    pub record: NewEvent,
    /// Hears what storing it did, at its commit.
    pub reply: oneshot::Sender<Result<Admitted, StoreError>>,
}

/// Worker threads and their queue.
pub struct WorkerPool {
    queues: Arc<[async_channel::Sender<Job>]>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Start `workers` threads passing results to `sink`.
    pub fn start(workers: usize, engine: PluginEngine, metrics: Arc<Metrics>, sink: Sink) -> Self {
        let mut queues = Vec::new();
        let threads = (0..workers.max(1))
            .map(|n| {
                let (jobs, queue) = async_channel::bounded::<Job>(QUEUE);
                queues.push(jobs);
                let sink = sink.clone();
                let mut worker = Worker::new(engine.clone(), metrics.clone());
                std::thread::Builder::new()
                    .name(format!("wasp-worker-{n}"))
                    .spawn(move || {
                        while let Ok(job) = queue.recv_blocking() {
                            let processed =
                                worker.process(&job.pipeline, job.event, job.scope.as_ref());
                            sink(job.entry, processed);
                        }
                    })
                    .expect("spawn a pipeline worker thread")
            })
            .collect();
        Self {
            queues: queues.into(),
            threads,
        }
    }

    /// A handle for submitting jobs.
    pub fn submitter(&self) -> Submitter {
        Submitter(self.queues.clone())
    }

    /// Stop taking jobs, finish the queued ones, and join the threads.
    pub fn shutdown(self) {
        for queue in self.queues.iter() {
            queue.close();
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Submits jobs to the pool (cheap to clone).
#[derive(Clone)]
pub struct Submitter(Arc<[async_channel::Sender<Job>]>);

impl Submitter {
    /// Queue a job on its ordering key's worker, waiting while that queue
    /// is full. Fails only when the pool is shutting down.
    pub async fn submit(&self, job: Job) -> Result<(), Job> {
        let key = job.pipeline.ordering_key(&job.event);
        let queue = &self.0[(key % self.0.len() as u64) as usize];
        queue.send(job).await.map_err(|e| e.into_inner())
    }

    /// Jobs waiting.
    pub fn queued(&self) -> usize {
        self.0.iter().map(|q| q.len()).sum()
    }
}
