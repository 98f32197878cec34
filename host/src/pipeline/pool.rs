//! The worker pool: plain OS threads (WASM calls are synchronous and
//! CPU-bound, and must not run on tokio's async workers), each with its own
//! plugin instances, fed from one bounded queue. A job carries the pipeline
//! generation it entered with, so a reload never changes the pipeline of an
//! event already accepted.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::Pipeline;
use super::worker::{Processed, Worker};
use crate::event::Event;
use crate::metrics::Metrics;
use crate::plugin::PluginEngine;

/// Jobs waiting for a worker before submitters wait.
const QUEUE: usize = 4096;

/// What to do with each processed event.
pub type Sink = Arc<dyn Fn(Processed) + Send + Sync>;

/// One event to process with the pipeline it entered.
pub struct Job {
    /// Its sequence number in the store.
    pub seq: i64,
    /// The event.
    pub event: Event,
    /// Its pipeline generation.
    pub pipeline: Arc<Pipeline>,
}

/// Worker threads and their queue.
pub struct WorkerPool {
    jobs: async_channel::Sender<Job>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Start `workers` threads passing results to `sink`.
    pub fn start(workers: usize, engine: PluginEngine, metrics: Arc<Metrics>, sink: Sink) -> Self {
        let (jobs, queue) = async_channel::bounded::<Job>(QUEUE);
        let threads = (0..workers.max(1))
            .map(|n| {
                let queue = queue.clone();
                let sink = sink.clone();
                let mut worker = Worker::new(engine.clone(), metrics.clone());
                std::thread::Builder::new()
                    .name(format!("wasp-worker-{n}"))
                    .spawn(move || {
                        while let Ok(job) = queue.recv_blocking() {
                            let processed = worker.process(&job.pipeline, job.seq, job.event);
                            sink(processed);
                        }
                    })
                    .expect("spawn a pipeline worker thread")
            })
            .collect();
        Self { jobs, threads }
    }

    /// A handle for submitting jobs.
    pub fn submitter(&self) -> Submitter {
        Submitter(self.jobs.clone())
    }

    /// Stop taking jobs, finish the queued ones, and join the threads.
    pub fn shutdown(self) {
        self.jobs.close();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Submits jobs to the pool (cheap to clone).
#[derive(Clone)]
pub struct Submitter(async_channel::Sender<Job>);

impl Submitter {
    /// Queue a job, waiting while the queue is full. Fails only when the
    /// pool is shutting down.
    pub async fn submit(&self, job: Job) -> Result<(), Job> {
        self.0.send(job).await.map_err(|e| e.into_inner())
    }

    /// Jobs waiting.
    pub fn queued(&self) -> usize {
        self.0.len()
    }
}
