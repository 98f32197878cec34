//! The pipeline's dead letters: a plugin call that failed on an event (a
//! trap, a time or memory limit, a plugin error, an event the transform
//! returned broken) leaves a record of which route, which plugin, which
//! endpoint (for a format) and the error, with the event as it entered,
//! stored in the same commit as the event's other deliveries. An accepted
//! event therefore never vanishes silently: it is delivered, filtered out
//! on purpose, or listed here until it is retried (after a fix, or
//! skipping the plugin) or pruned.

use serde::Serialize;

use super::NewDelivery;

/// What the pipeline made of one event: stored in one commit.
#[derive(Debug, Clone, Default)]
pub struct Routed {
    /// Requests for the outbox (or pull queues).
    pub deliveries: Vec<NewDelivery>,
    /// Plugin calls that failed.
    pub failures: Vec<NewFailure>,
    /// What each route and plugin did with the event (JSON, see
    /// `pipeline::walk`), kept with the event; `None` keeps what is there.
    pub walk: Option<String>,
}

impl FromIterator<NewDelivery> for Routed {
    fn from_iter<I: IntoIterator<Item = NewDelivery>>(deliveries: I) -> Self {
        Vec::from_iter(deliveries).into()
    }
}

impl From<Vec<NewDelivery>> for Routed {
    fn from(deliveries: Vec<NewDelivery>) -> Self {
        Self {
            deliveries,
            failures: Vec::new(),
            walk: None,
        }
    }
}

/// A failed plugin call, to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFailure {
    /// The event's id.
    pub event_id: String,
    /// The event's name.
    pub event_name: String,
    /// The event's session.
    pub session: String,
    /// The route it failed in.
    pub route: String,
    /// The plugin that failed.
    pub plugin: String,
    /// What the plugin was called as: `filter`, `transform`, `route`, `format`.
    pub kind: String,
    /// For a format: the endpoint it was formatting for.
    pub endpoint: Option<String>,
    /// What went wrong (`trap`, `timeout`, `memory`, `error`, …).
    pub outcome: String,
    /// The error, in words.
    pub error: String,
    /// The event as it entered the pipeline (canonical JSON), to retry with.
    pub event: String,
}

/// Where a dead letter of the pipeline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureState {
    /// Not retried yet.
    Dead,
    /// Retried: what the retry made is in the outbox (or a newer failure).
    Retried,
}

impl FailureState {
    /// Name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureState::Dead => "dead",
            FailureState::Retried => "retried",
        }
    }

    /// Parse a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "dead" => Some(FailureState::Dead),
            "retried" => Some(FailureState::Retried),
            _ => None,
        }
    }
}

/// A failed plugin call, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct FailureRecord {
    /// Its id.
    pub id: i64,
    /// The event's id.
    pub event_id: String,
    /// The event's name.
    pub event_name: String,
    /// The event's session.
    pub session: String,
    /// The route it failed in.
    pub route: String,
    /// The plugin that failed.
    pub plugin: String,
    /// What the plugin was called as.
    pub kind: String,
    /// For a format: the endpoint.
    pub endpoint: Option<String>,
    /// `trap`, `timeout`, `memory`, `error`, …
    pub outcome: String,
    /// The error.
    pub error: String,
    /// Dead, or retried.
    pub state: FailureState,
    /// When it failed, Unix ms.
    pub created_at: u64,
    /// When it was retried, Unix ms.
    pub retried_at: Option<u64>,
    /// The event as it entered the pipeline.
    #[serde(skip)]
    pub event: String,
}

/// Which failures to list.
#[derive(Debug, Clone, Default)]
pub struct FailureFilter {
    /// Only this state.
    pub state: Option<FailureState>,
    /// Only this route.
    pub route: Option<String>,
    /// Only this plugin.
    pub plugin: Option<String>,
    /// Only this event.
    pub event_id: Option<String>,
    /// Most rows (newest first).
    pub limit: usize,
    /// Only ids below this (paging backwards).
    pub before_id: Option<i64>,
}
