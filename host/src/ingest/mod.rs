//! Ingest: where events enter. An event (from `POST /api/events`, a
//! provider decoder or a session engine) is checked, completed with its
//! session's envelope fields, normalized into a canonical [`Event`] and
//! queued for the pipeline generation current at that moment.

mod providers;

use std::sync::Arc;

use serde_json::Value;

use crate::event::{Event, EventError};
use crate::metrics::{EventLabels, Metrics, OutcomeLabels};
use crate::pipeline::{Job, Pipelines, Submitter};
use crate::session::Sessions;

pub use providers::{ProviderError, ProviderOutcome, Source};

/// An accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its id.
    pub id: String,
    /// The pipeline generation it will be processed by.
    pub generation: u64,
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
    /// wasp is shutting down.
    #[error("wasp is shutting down and accepts no more events")]
    ShuttingDown,
}

impl IngestError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            IngestError::Invalid(_) => "invalid",
            IngestError::UnknownSession { .. } => "unknown_session",
            IngestError::ShuttingDown => "shutting_down",
        }
    }
}

/// The entrance every event goes through.
#[derive(Clone)]
pub struct Ingest {
    sessions: Arc<Sessions>,
    pipelines: Arc<Pipelines>,
    submitter: Submitter,
    metrics: Arc<Metrics>,
}

impl Ingest {
    /// An entrance queueing to `submitter`.
    pub fn new(
        sessions: Arc<Sessions>,
        pipelines: Arc<Pipelines>,
        submitter: Submitter,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            sessions,
            pipelines,
            submitter,
            metrics,
        }
    }

    /// Accept one event given as JSON.
    pub async fn accept(&self, value: Value) -> Result<Accepted, IngestError> {
        let outcome = self.accept_inner(value).await;
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

    async fn accept_inner(&self, mut value: Value) -> Result<Accepted, IngestError> {
        if let Some(object) = value.as_object_mut()
            && let Some(name) = object
                .get("session")
                .and_then(Value::as_str)
                .map(str::to_owned)
        {
            match self.sessions.get(&name) {
                Some(session) => session.enrich(object),
                None => {
                    return Err(IngestError::UnknownSession {
                        name,
                        known: self.sessions.names(),
                    });
                }
            }
        }
        let event = Event::from_value(value)?;
        self.metrics
            .events_in
            .get_or_create(&EventLabels {
                session: event.session().to_owned(),
                event: event.name().to_owned(),
            })
            .inc();
        let pipeline = self.pipelines.current();
        let accepted = Accepted {
            id: event.id().to_owned(),
            generation: pipeline.generation,
        };
        self.submitter
            .submit(Job { event, pipeline })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        Ok(accepted)
    }
}
