//! Delivery: formatted requests go to their endpoints over HTTP, with the
//! per-attempt headers computed at send time and each provider's retry
//! behaviour. Every delivery is in the store before its first attempt, and
//! every attempt is recorded. The pipeline hands over [`Delivery`] items;
//! nothing here calls back into the pipeline.

pub mod actor;
pub mod attempt;
pub mod breaker;
mod dispatcher;
pub mod policy;
pub mod pull;
mod sender;

use std::sync::Arc;
use std::time::Duration;

pub use dispatcher::{Dispatcher, EndpointStatus};
pub use policy::RetryPolicy;
pub use pull::{PullQueue, PullQueues};
pub use sender::{AttemptOutcome, HttpSender, delivery_client, install_tls_provider};

use crate::config::Ordering;
use crate::plugin::bindings::Request;
use crate::store::NewDelivery;

/// Where an endpoint's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An absolute http(s) URL.
    Url(url::Url),
    /// A path on wasp's own listener (resolved when the server is bound).
    Local(String),
    /// A pull queue (Green-API's HTTP API technology): consumers fetch
    /// notifications with `receiveNotification`.
    Queue {
        /// The queue: Green-API's `idInstance`.
        instance: String,
        /// Its consumers' `apiTokenInstance`.
        token: String,
        /// How long notifications are kept.
        keep: Duration,
        /// `deleteNotification` answers carry `reason`.
        delete_reason: bool,
    },
}

/// An endpoint, as delivery sees it.
#[derive(Debug)]
pub struct Endpoint {
    /// Name from wasp.yaml.
    pub name: String,
    /// Where requests go.
    pub target: Target,
    /// The format plugin's name (selects provider retry defaults).
    pub format: String,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// When to retry.
    pub policy: RetryPolicy,
    /// Standard Webhooks secrets signing every attempt (empty: none).
    pub standard: Vec<crate::signature::StandardSecret>,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// Ordered delivery.
    pub ordering: Ordering,
    /// Circuit breaker settings.
    pub breaker: breaker::BreakerConfig,
    /// Deliveries kept in memory.
    pub queue_limit: usize,
    /// Its format settings' text values, where stored deliveries find their
    /// signing keys again (never stored themselves).
    pub settings: attempt::SettingStrings,
}

/// One request to one endpoint for one event.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The event's id.
    pub event_id: String,
    /// The event's name.
    pub event_name: String,
    /// The event's session.
    pub session: String,
    /// Where it goes.
    pub endpoint: Arc<Endpoint>,
    /// What its endpoint orders by: the chat (or the session, for events
    /// without one), or the session for `ordering: session`.
    pub ordering_key: String,
    /// What the format produced.
    pub request: Request,
}

impl Delivery {
    /// The row the outbox stores.
    pub fn to_new(&self) -> NewDelivery {
        NewDelivery {
            event_id: self.event_id.clone(),
            event_name: self.event_name.clone(),
            session: self.session.clone(),
            endpoint: self.endpoint.name.clone(),
            ordering_key: self.ordering_key.clone(),
            headers: self
                .request
                .headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
            attempt_headers: attempt::encode_attempt_headers(
                &self.request.attempt_headers,
                &self.endpoint.settings,
            ),
            body: self.request.body.clone(),
            queue: match &self.endpoint.target {
                Target::Queue { instance, keep, .. } => {
                    Some((instance.clone(), keep.as_millis() as u64))
                }
                _ => None,
            },
        }
    }

    /// The in-memory item once stored as delivery `id`.
    pub fn into_item(self, id: i64) -> (String, actor::Item) {
        let item = actor::Item {
            id,
            event_id: self.event_id,
            event_name: self.event_name,
            session: self.session,
            ordering_key: self.ordering_key,
            request: Arc::new(self.request),
            attempts: 0,
            first_attempt_at: None,
            due_at: 0,
        };
        (self.endpoint.name.clone(), item)
    }
}
