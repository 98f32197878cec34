//! Ingest: where events enter. An event (from `POST /api/events`, a
//! provider decoder or a session engine) is checked, completed with its
//! session's envelope fields, normalized into a canonical [`Event`],
//! committed to the store (unless it duplicates a recent one) and queued for
//! the pipeline generation current at that moment; once its commit is on
//! disk it is "accepted". The pipeline starts on it while the commit
//! flushes, so its deliveries may leave before its sender hears the answer.

mod providers;

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use crate::event::{Draft, Event, EventError};
use crate::metrics::{EventLabels, Metrics, OutcomeLabels};
use crate::pipeline::{Job, Pipeline, Pipelines, Submitter};
use crate::session::{Refusal, Sessions, Status};
use crate::store::{AcceptOutcome, NewEvent, Store, StoreError};

pub use providers::{ProviderError, ProviderOutcome, Source};

/// An accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its id.
    pub id: String,
    /// The pipeline generation it will be processed by.
    pub generation: u64,
    /// It repeats an event accepted before (`id` is that event's); nothing new was queued.
    pub duplicate: bool,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// Not a valid canonical event.
    #[error(transparent)]
    Invalid(#[from] EventError),
    /// The session is not known.
    #[error("unknown session `{name}`; known sessions: {}", if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
    UnknownSession {
        /// The session named by the event.
        name: String,
        /// The sessions wasp knows.
        known: Vec<String>,
    },
    /// The session is STOPPED or FAILED.
    #[error("session `{name}` is {}; start it with POST /api/sessions/{name}/start", status.as_str())]
    SessionNotRunning {
        /// The session.
        name: String,
        /// Its status.
        status: Status,
    },
    /// wasp is shutting down.
    #[error("wasp is shutting down and accepts no more events")]
    ShuttingDown,
    /// The event could not be stored.
    #[error("the event could not be stored: {0}")]
    Store(#[from] StoreError),
}

impl IngestError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            IngestError::Invalid(_) => "invalid",
            IngestError::UnknownSession { .. } => "unknown_session",
            IngestError::SessionNotRunning { .. } => "session_not_running",
            IngestError::ShuttingDown => "shutting_down",
            IngestError::Store(_) => "store",
        }
    }
}

/// How an event is let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Refuse it when it repeats a recent event (same id, or same provider
    /// message id and event name).
    pub dedup: bool,
    /// It comes from wasp itself (a session's status change), so the
    /// session need not be running.
    pub internal: bool,
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            dedup: true,
            internal: false,
        }
    }
}

impl Admission {
    /// wasp's own events: always admitted, never deduplicated.
    pub const INTERNAL: Admission = Admission {
        dedup: false,
        internal: true,
    };
}

/// The entrance every event goes through.
#[derive(Clone)]
pub struct Ingest {
    sessions: Arc<Sessions>,
    pipelines: Arc<Pipelines>,
    submitter: Submitter,
    metrics: Arc<Metrics>,
    store: Arc<dyn Store>,
    dedup_window_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Ingest {
    /// An entrance storing into `store` and queueing to `submitter`.
    pub fn new(
        sessions: Arc<Sessions>,
        pipelines: Arc<Pipelines>,
        submitter: Submitter,
        metrics: Arc<Metrics>,
        store: Arc<dyn Store>,
        dedup_window: std::time::Duration,
    ) -> Self {
        Self {
            sessions,
            pipelines,
            submitter,
            metrics,
            store,
            dedup_window_ms: Arc::new(std::sync::atomic::AtomicU64::new(
                dedup_window.as_millis() as u64
            )),
        }
    }

    /// Change the dedup window (config reload).
    pub fn set_dedup_window(&self, window: std::time::Duration) {
        self.dedup_window_ms.store(
            window.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Queue an event already in the store (recovery after a restart).
    pub async fn resume(&self, seq: i64, event: Event) -> Result<(), IngestError> {
        self.queue(seq, event, self.pipelines.current()).await
    }

    /// Hand a stored event to the workers, on the pipeline it entered with.
    async fn queue(
        &self,
        seq: i64,
        event: Event,
        pipeline: Arc<Pipeline>,
    ) -> Result<(), IngestError> {
        self.submitter
            .submit(Job {
                seq,
                event,
                pipeline,
            })
            .await
            .map_err(|_| IngestError::ShuttingDown)
    }

    /// Accept one event given as JSON (from outside wasp, deduplicated).
    pub async fn accept(&self, value: Value) -> Result<Accepted, IngestError> {
        self.accept_with(value, Admission::default()).await
    }

    /// Accept one event given as JSON, let in as `admission` says.
    pub async fn accept_with(
        &self,
        value: impl Draft,
        admission: Admission,
    ) -> Result<Accepted, IngestError> {
        let outcome = self.accept_inner(value, admission).await;
        if let Err(error) = &outcome {
            self.metrics
                .events_rejected
                .get_or_create(&OutcomeLabels {
                    outcome: error.label().to_owned(),
                })
                .inc();
        }
        outcome
    }

    async fn accept_inner(
        &self,
        mut value: impl Draft,
        admission: Admission,
    ) -> Result<Accepted, IngestError> {
        if let Some(name) = value.session_name().map(Cow::into_owned) {
            let admitted = if admission.internal {
                self.sessions
                    .get(&name)
                    .ok_or_else(|| Refusal::Unknown(self.sessions.names()))
            } else {
                self.sessions.admit(&name)
            };
            match admitted {
                Ok(session) => {
                    session.enrich(&mut value);
                    crate::session::touch(&session);
                }
                Err(Refusal::Unknown(known)) => {
                    return Err(IngestError::UnknownSession { name, known });
                }
                Err(Refusal::NotRunning(status)) => {
                    return Err(IngestError::SessionNotRunning { name, status });
                }
            }
        }
        let event = value.into_event()?;
        let pipeline = self.pipelines.current();
        // Answered at the commit: the workers start on the event while the
        // log flushes, and the sender hears it is accepted once it is on disk.
        let admitted = self
            .store
            .admit(NewEvent {
                id: event.id().to_owned(),
                session: event.session().to_owned(),
                name: event.name().to_owned(),
                body: event.json().to_owned(),
                generation: pipeline.generation,
                fingerprint: if admission.dedup {
                    event.fields().fingerprint()
                } else {
                    None
                },
                dedup_window_ms: self
                    .dedup_window_ms
                    .load(std::sync::atomic::Ordering::Relaxed),
            })
            .await?;
        let seq = match admitted.outcome {
            AcceptOutcome::Stored(seq) => seq,
            AcceptOutcome::Duplicate(original) => {
                admitted.durable.await?;
                self.metrics
                    .events_rejected
                    .get_or_create(&OutcomeLabels {
                        outcome: "duplicate".to_owned(),
                    })
                    .inc();
                tracing::debug!(event = %event.id(), %original, "duplicate event accepted once");
                return Ok(Accepted {
                    id: original,
                    generation: pipeline.generation,
                    duplicate: true,
                });
            }
        };
        let labels = EventLabels {
            session: event.session().to_owned(),
            event: event.name().to_owned(),
        };
        let accepted = Accepted {
            id: event.id().to_owned(),
            generation: pipeline.generation,
            duplicate: false,
        };
        self.queue(seq, event, pipeline).await?;
        admitted.durable.await?;
        self.metrics.events_in.get_or_create(&labels).inc();
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Mutex, mpsc};
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::pipeline::{Processed, Sink, WorkerPool};
    use crate::plugin::{PluginEngine, PluginRuntime};
    use crate::session::{Entry, Origin};
    use crate::store::sqlite::FlushGate;

    #[tokio::test]
    async fn the_workers_start_on_an_event_before_its_sender_hears_it_is_accepted() {
        let dir =
            std::env::temp_dir().join(format!("wasp-ingest-{}", crate::event::new_event_id()));
        // The store's flushes wait while the gate is shut.
        let (store, gate) = FlushGate::open(&dir.join("wasp.db"));
        let loaded =
            crate::config::parse("wasp.yaml", "{}", &dir, &HashMap::<String, String>::new())
                .unwrap();
        let engine = PluginEngine::new().unwrap();
        let runtime = PluginRuntime::new(engine.clone(), None).unwrap();
        let pipeline = crate::pipeline::build(&loaded, &runtime, 1).unwrap();
        let (processed, worked) = mpsc::channel::<i64>();
        let processed = Mutex::new(processed);
        let sink: Sink = Arc::new(move |done: Processed| {
            let _ = processed.lock().unwrap().send(done.seq);
        });
        let metrics = Metrics::new();
        let pool = WorkerPool::start(1, engine, metrics.clone(), sink);
        let sessions = Arc::new(Sessions::default());
        let spec = serde_json::from_value(json!({"name": "s"})).unwrap();
        sessions.insert(Entry::new(spec, Origin::Config, json!({})));
        let ingest = Ingest::new(
            sessions,
            Arc::new(Pipelines::new(pipeline)),
            pool.submitter(),
            metrics,
            store.clone(),
            Duration::from_secs(60),
        );

        let accepting = tokio::spawn({
            let ingest = ingest.clone();
            async move {
                let event = json!({"event": "message", "session": "s", "payload": {"id": "m1", "body": "hi"}});
                ingest.accept_with(event, Admission::INTERNAL).await
            }
        });
        let seq = tokio::task::spawn_blocking(move || worked.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("the worker had the event while its flush was held");
        assert!(seq > 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !accepting.is_finished(),
            "not accepted before it is on disk"
        );

        gate.shut(false);
        let accepted = tokio::time::timeout(Duration::from_secs(10), accepting)
            .await
            .expect("accepted once flushed")
            .unwrap()
            .unwrap();
        assert!(!accepted.duplicate);
        tokio::task::spawn_blocking(move || pool.shutdown())
            .await
            .unwrap();
        store.close();
        let _ = std::fs::remove_dir_all(dir);
    }
}
