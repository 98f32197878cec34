//! Ingest: where events enter. An event (from `POST /api/events`, a
//! provider decoder or a session engine) is checked, completed with its
//! session's envelope fields, normalized into a canonical [`Event`] and
//! queued for the pipeline generation current at that moment. Once the
//! workers have run it, it is committed to the store together with the
//! deliveries it produced (unless it duplicates a recent one, in which case
//! neither is stored), its deliveries go to their endpoints, and once the
//! commit is on disk it is "accepted": its deliveries may leave while the
//! commit flushes, before its sender hears the answer.

pub mod providers;

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use crate::event::{Draft, Event, EventError};
use crate::metrics::{EventLabels, Metrics, OutcomeLabels};
use crate::pipeline::{Arrival, Entry, Job, Pipeline, Pipelines, Retried, Scope, Submitter};
use crate::session::{Refusal, Sessions, Status};
use crate::store::{AcceptOutcome, NewEvent, StoreError};

pub use providers::{Caller, ProviderError, ProviderOutcome};

/// An accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its id.
    pub id: String,
    /// The pipeline generation that processed it.
    pub generation: u64,
    /// It repeats an event accepted before (`id` is that event's); nothing
    /// was stored, and its pipeline's output was dropped.
    pub duplicate: bool,
    /// It has the id of an event accepted before but a different `event`
    /// or `payload`: refused as a duplicate, the first one stands.
    pub conflict: bool,
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

/// Why a failed plugin call could not be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError {
    /// The stored event does not read back.
    #[error("the stored event cannot be read: {0}")]
    Event(#[from] EventError),
    /// The config no longer has the route.
    #[error("route `{0}` is no longer in the config")]
    RouteGone(String),
    /// The pipeline or the store is not taking work.
    #[error(transparent)]
    Ingest(IngestError),
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
    dedup_window_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Ingest {
    /// An entrance queueing to `submitter` (whose sink stores).
    pub fn new(
        sessions: Arc<Sessions>,
        pipelines: Arc<Pipelines>,
        submitter: Submitter,
        metrics: Arc<Metrics>,
        dedup_window: std::time::Duration,
    ) -> Self {
        Self {
            sessions,
            pipelines,
            submitter,
            metrics,
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

    /// Queue an event stored but not routed (recovery after a restart).
    pub async fn resume(&self, seq: i64, event: Event) -> Result<(), IngestError> {
        self.queue(event, self.pipelines.current(), Entry::Stored(seq))
            .await
    }

    /// Hand an event to the workers, on the pipeline it entered with.
    async fn queue(
        &self,
        event: Event,
        pipeline: Arc<Pipeline>,
        entry: Entry,
    ) -> Result<(), IngestError> {
        self.submitter
            .submit(Job {
                event,
                pipeline,
                entry,
                scope: None,
            })
            .await
            .map_err(|_| IngestError::ShuttingDown)
    }

    /// Run a failed plugin call's event again on the current pipeline:
    /// its route only (its endpoint only, for a format), without the
    /// plugin when `skip_plugin`. What it makes is stored as the failure's
    /// resolution before this answers.
    pub async fn retry_failure(
        &self,
        failure: &crate::store::FailureRecord,
        skip_plugin: bool,
    ) -> Result<Retried, RetryError> {
        let event = Event::from_canonical_json(failure.event.clone())?;
        let pipeline = self.pipelines.current();
        if !pipeline.has_route(&failure.route) {
            return Err(RetryError::RouteGone(failure.route.clone()));
        }
        let scope = Scope {
            route: failure.route.clone(),
            endpoint: failure.endpoint.clone(),
            skip: skip_plugin.then(|| failure.plugin.clone()),
        };
        let (reply, retried) = tokio::sync::oneshot::channel();
        self.submitter
            .submit(Job {
                event,
                pipeline,
                entry: Entry::Retry {
                    failure: failure.id,
                    reply,
                },
                scope: Some(scope),
            })
            .await
            .map_err(|_| RetryError::Ingest(IngestError::ShuttingDown))?;
        retried
            .await
            .map_err(|_| RetryError::Ingest(IngestError::ShuttingDown))?
            .map_err(|e| RetryError::Ingest(e.into()))
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
        let record = NewEvent {
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
        };
        let labels = EventLabels {
            session: record.session.clone(),
            event: record.name.clone(),
        };
        let accepted = Accepted {
            id: record.id.clone(),
            generation: pipeline.generation,
            duplicate: false,
            conflict: false,
        };
        // The workers run it, then store it with its deliveries: answered at
        // the commit, while the log flushes; the sender hears it is accepted
        // once it is on disk.
        let (reply, stored) = tokio::sync::oneshot::channel();
        self.queue(event, pipeline, Entry::Arriving(Arrival { record, reply }))
            .await?;
        // Unanswered: the job was dropped with the pool (shutting down), or
        // a worker or the forwarding task died; nothing was stored.
        let admitted = stored.await.map_err(|_| {
            tracing::warn!(event = %accepted.id, "the event was dropped before it was stored");
            IngestError::ShuttingDown
        })??;
        let conflict = matches!(admitted.outcome, AcceptOutcome::Conflict(_));
        match admitted.outcome {
            AcceptOutcome::Stored(_) => {}
            AcceptOutcome::Duplicate(original) | AcceptOutcome::Conflict(original) => {
                admitted.durable.await?;
                self.metrics
                    .events_rejected
                    .get_or_create(&OutcomeLabels {
                        outcome: "duplicate".to_owned(),
                    })
                    .inc();
                if conflict {
                    tracing::warn!(event = %original, "an event was posted again with the same id and a different event or payload; the first one stands");
                } else {
                    tracing::debug!(event = %accepted.id, %original, "duplicate event accepted once");
                }
                return Ok(Accepted {
                    id: original,
                    duplicate: true,
                    conflict,
                    ..accepted
                });
            }
        }
        admitted.durable.await?;
        self.metrics.events_in.get_or_create(&labels).inc();
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;
    use crate::delivery::{Dispatcher, HttpSender};
    use crate::pipeline::WorkerPool;
    use crate::plugin::{PluginEngine, PluginRuntime};
    use crate::session::Origin;
    use crate::store::sqlite::FlushGate;
    use crate::store::{EventLog, PullQueueStore, Store};

    const CONFIG: &str = r#"
endpoints:
  - {name: queue, format: green-api, mode: pull, pull: {api_token: t}, settings: {id_instance: 5}, events: [message]}
routes: [{to: [queue]}]
"#;

    #[tokio::test]
    async fn an_event_is_stored_with_its_deliveries_and_accepted_once_on_disk() {
        let dir =
            std::env::temp_dir().join(format!("wasp-ingest-{}", crate::event::new_event_id()));
        // The store's flushes wait while the gate is shut.
        let (store, gate) = FlushGate::open(&dir.join("wasp.db"));
        let loaded =
            crate::config::parse("wasp.yaml", CONFIG, &dir, &HashMap::<String, String>::new())
                .unwrap();
        let engine = PluginEngine::new().unwrap();
        let runtime = PluginRuntime::new(engine.clone(), None).unwrap();
        let pipeline = crate::pipeline::build(&loaded, &runtime, 1).unwrap();
        let metrics = Metrics::new();
        let dispatcher = Arc::new(Dispatcher::new(
            store.clone(),
            HttpSender::new("http://127.0.0.1:9".to_owned()),
            metrics.clone(),
            tokio::runtime::Handle::current(),
        ));
        dispatcher.configure(pipeline.endpoints().cloned().collect());
        let (sink, forwarder) =
            crate::pipeline::forwarder(store.clone(), dispatcher, Default::default());
        let pool = WorkerPool::start(1, engine, metrics.clone(), sink);
        let sessions = Arc::new(Sessions::default());
        let spec = serde_json::from_value(json!({"name": "s"})).unwrap();
        sessions.insert(crate::session::Entry::new(spec, Origin::Config, json!({})));
        let ingest = Ingest::new(
            sessions,
            Arc::new(Pipelines::new(pipeline)),
            pool.submitter(),
            metrics,
            Duration::from_secs(60),
        );
        // wasp's own events skip the session's status; these are deduplicated.
        let admission = Admission {
            dedup: true,
            internal: true,
        };
        let post = || {
            let ingest = ingest.clone();
            tokio::spawn(async move {
                let event = json!({"event": "message", "session": "s",
                    "payload": {"id": "false_11111111111@c.us_AAAA", "timestamp": 1700000000,
                                "from": "11111111111@c.us", "fromMe": false, "body": "hi"}});
                ingest.accept_with(event, admission).await
            })
        };

        let accepting = post();
        // Committed (readers see it) with its deliveries, while its flush is held.
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.queue_length("5").unwrap() == 0 {
            assert!(Instant::now() < deadline, "the event's delivery is stored");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            store.unrouted_events().unwrap().is_empty(),
            "stored already routed"
        );
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

        // A repeat is answered with the original, and its deliveries dropped.
        let repeat = tokio::time::timeout(Duration::from_secs(10), post())
            .await
            .expect("answered")
            .unwrap()
            .unwrap();
        assert!(repeat.duplicate);
        assert_eq!(repeat.id, accepted.id);
        assert_eq!(store.queue_length("5").unwrap(), 1);

        tokio::task::spawn_blocking(move || pool.shutdown())
            .await
            .unwrap();
        forwarder.await.unwrap();
        store.close();
        let _ = std::fs::remove_dir_all(dir);
    }
}
