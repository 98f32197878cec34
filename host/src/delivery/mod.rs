//! Delivery: formatted requests go to their endpoints over HTTP, with the
//! per-attempt headers computed at send time and each provider's retry
//! behaviour. The pipeline hands over [`Delivery`] items; nothing here calls
//! back into the pipeline.

pub mod attempt;
mod dispatcher;
pub mod policy;
mod sender;

use std::sync::Arc;
use std::time::Duration;

pub use dispatcher::Dispatcher;
pub use policy::RetryPolicy;
pub use sender::{AttemptOutcome, HttpSender, install_tls_provider};

use crate::plugin::bindings::Request;

/// Where an endpoint's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An absolute http(s) URL.
    Url(url::Url),
    /// A path on wasp's own listener (resolved when the server is bound).
    Local(String),
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
    /// What the format produced.
    pub request: Request,
}
