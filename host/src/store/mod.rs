//! Durable state, split by what it holds: the event log with dedup and
//! what the pipeline made of each event ([`EventLog`]), the delivery
//! outbox and every attempt ([`Outbox`]), endpoint state
//! ([`EndpointState`]), sessions created over the API ([`SessionStore`])
//! and pull-mode endpoints' notification queues ([`PullQueueStore`]).
//! [`Store`] is all of them, with retention across them and the writer's
//! life; the host holds an `Arc<dyn Store>`. The embedded implementation
//! is SQLite ([`sqlite::SqliteStore`]); another backend implements the same
//! traits.
//!
//! Writes return futures that resolve once the write is durable (committed;
//! an accepted event can also be had at its commit, with its flush still
//! under way: [`EventLog::admit`]). A new event is normally stored already
//! routed, with the deliveries its pipeline produced, in one commit
//! ([`EventLog::admit_routed`]);
//! reads are synchronous: short indexed ones may run in place on an async
//! worker (each reader has a connection of its own), longer ones belong in
//! `spawn_blocking` or start-up.

pub mod claims;
#[cfg(test)]
pub(crate) mod conformance;
mod failures;
pub mod filter;
pub mod postgres;
pub mod sqlite;

pub use failures::{FailureFilter, FailureRecord, FailureState, NewFailure, Routed};

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

/// A future resolving when a write is committed.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The storage backend failed.
    #[error("storage failed: {0}")]
    Backend(String),
    /// The store is shutting down.
    #[error("the store is closed")]
    Closed,
    /// No such delivery / endpoint / receipt.
    #[error("{0} not found")]
    NotFound(String),
}

/// Whether `body` repeats the stored event `stored`: the same `event` and
/// `payload` (both canonical JSON); an id posted again with another event
/// or payload is a conflict.
pub fn same_event(stored: &str, body: &str) -> bool {
    let parts = |body: &str| {
        crate::event::Envelope::parse(body).map(|envelope| {
            (
                envelope.get("event").map(str::to_owned),
                envelope.get("payload").map(str::to_owned),
            )
        })
    };
    parts(stored) == parts(body)
}

/// An event to make durable.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `evt_…` id.
    pub id: String,
    /// Session.
    pub session: String,
    /// Event name.
    pub name: String,
    /// Canonical JSON.
    pub body: String,
    /// Pipeline generation it entered with.
    pub generation: u64,
    /// Extra dedup key (provider message id + event name), if any.
    pub fingerprint: Option<String>,
    /// How long a fingerprint marks later events as duplicates, ms.
    pub dedup_window_ms: u64,
}

/// What accepting an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Stored as a new event with this sequence number.
    Stored(i64),
    /// A duplicate of the event with this id; nothing stored.
    Duplicate(String),
    /// The same id as an event accepted before, with a different `event`
    /// or `payload`: nothing stored (the first one stands), and the sender
    /// is told.
    Conflict(String),
}

/// An event the store has committed: what accepting it did, visible to
/// every later write and read, and its flush to disk, still under way.
pub struct Admitted {
    /// What accepting the event did.
    pub outcome: AcceptOutcome,
    /// The ids of the deliveries stored with it ([`EventLog::admit_routed`]),
    /// in order; empty for a duplicate, whose deliveries are dropped.
    pub deliveries: Vec<i64>,
    /// Resolves once the commit is on disk (with `sync: full`; at once
    /// otherwise). A duplicate's answer waits for it too: the original may
    /// be in the very commit being flushed.
    pub durable: StoreFuture<()>,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted")
            .field("outcome", &self.outcome)
            .field("deliveries", &self.deliveries)
            .finish_non_exhaustive()
    }
}

/// A delivery produced by the pipeline, to add to the outbox.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The event's id.
    pub event_id: String,
    /// The event's name.
    pub event_name: String,
    /// The event's session.
    pub session: String,
    /// Endpoint name.
    pub endpoint: String,
    /// Key for ordered delivery (the chat, else the session).
    pub ordering_key: String,
    /// Fixed headers, in order.
    pub headers: Vec<(String, String)>,
    /// Per-attempt headers (their WIT encoding, as JSON).
    pub attempt_headers: String,
    /// Body bytes.
    pub body: Vec<u8>,
    /// For a pull-mode endpoint: the queue (instance) it goes to and how
    /// long it is kept, ms. The body then waits in the queue instead of the
    /// outbox.
    pub queue: Option<(String, u64)>,
}

/// One notification waiting in a pull queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Receipt id (`receiptId`), increasing.
    pub receipt_id: i64,
    /// The body, as the format produced it (JSON text).
    pub body: String,
}

/// Delivery states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for an attempt (first or retry).
    Pending,
    /// Delivered.
    Delivered,
    /// Given up: a final answer (a 4xx, a 410, …).
    Failed,
    /// Given up: attempts or time exhausted (the dead-letter state).
    Dead,
}

impl DeliveryState {
    /// Name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Dead => "dead",
        }
    }

    /// Parse a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            "dead" => DeliveryState::Dead,
            _ => return None,
        })
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    /// Delivery id.
    pub id: i64,
    /// The event's id.
    pub event_id: String,
    /// The event's name.
    pub event_name: String,
    /// The event's session.
    pub session: String,
    /// Endpoint name.
    pub endpoint: String,
    /// Ordering key.
    pub ordering_key: String,
    /// State.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When it was created, Unix ms.
    pub created_at: u64,
    /// When the next attempt is due, Unix ms (pending only).
    pub next_attempt_at: u64,
    /// When the first attempt was made, Unix ms.
    pub first_attempt_at: Option<u64>,
    /// The last answer's status, if any.
    pub last_status: Option<u16>,
    /// The last error or response excerpt.
    pub last_error: Option<String>,
    /// Fixed headers.
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
    /// Per-attempt headers (JSON).
    #[serde(skip)]
    pub attempt_headers: String,
    /// Body.
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// One attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery_id: i64,
    /// 1 for the first attempt.
    pub number: u32,
    /// When it started, Unix ms.
    pub at: u64,
    /// HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Round trip, ms.
    pub latency_ms: f64,
    /// `delivered`, `retry`, `failed`, `gone`, `timeout`, `network`.
    pub outcome: String,
    /// Start of the answer, or the error.
    pub excerpt: String,
}

/// The delivery's state after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    /// Delivered.
    Delivered,
    /// Retry at this Unix ms.
    RetryAt(u64),
    /// Final failure.
    Failed,
    /// Attempts exhausted.
    Dead,
}

/// Which stored events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this session.
    pub session: Option<String>,
    /// Only this event name.
    pub name: Option<String>,
    /// Only this event id.
    pub id: Option<String>,
    /// Only events that name this chat (as a JSON string anywhere in them).
    pub chat: Option<String>,
    /// Received at or after, Unix ms.
    pub since: Option<u64>,
    /// Received before, Unix ms.
    pub until: Option<u64>,
    /// Most rows (newest first).
    pub limit: usize,
    /// Only sequence numbers below this (paging backwards).
    pub before_seq: Option<i64>,
}

/// A stored event.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    /// Sequence number (arrival order).
    pub seq: i64,
    /// `evt_…` id.
    pub id: String,
    /// Session.
    pub session: String,
    /// Event name.
    pub name: String,
    /// When it was received, Unix ms.
    pub received_at: u64,
    /// Canonical JSON.
    pub body: String,
    /// What each route and plugin did with it (JSON, `pipeline::walk`),
    /// once it was routed.
    pub walk: Option<String>,
}

/// Which deliveries to list or replay.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only this endpoint.
    pub endpoint: Option<String>,
    /// Only events of this session.
    pub session: Option<String>,
    /// Only these states.
    pub states: Vec<DeliveryState>,
    /// Only this event id.
    pub event_id: Option<String>,
    /// Only this event name.
    pub event_name: Option<String>,
    /// Created at or after, Unix ms.
    pub since: Option<u64>,
    /// Created before, Unix ms.
    pub until: Option<u64>,
    /// Most rows (newest first).
    pub limit: usize,
    /// Only ids below this (paging backwards).
    pub before_id: Option<i64>,
}

/// An event accepted but not yet routed (for recovery).
#[derive(Debug, Clone)]
pub struct UnroutedEvent {
    /// Sequence number.
    pub seq: i64,
    /// Canonical JSON.
    pub body: String,
}

/// Retention limits applied by [`Store::prune`].
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Delivered deliveries, routed events and attempts older than this go, ms.
    pub max_age_ms: u64,
    /// Dead letters kept per endpoint (oldest go first).
    pub dead_letters_per_endpoint: usize,
    /// Attempts kept per delivery (oldest go first).
    pub attempts_per_delivery: usize,
}

/// What pruning removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Events removed.
    pub events: u64,
    /// Deliveries removed.
    pub deliveries: u64,
    /// Attempts removed.
    pub attempts: u64,
    /// Expired pull-queue notifications removed.
    pub notifications: u64,
    /// Dead letters of the pipeline removed (retried ones past the age,
    /// dead ones past the cap per plugin).
    pub failures: u64,
}

/// The event log: events made durable once (by id, and by message
/// fingerprint within the dedup window), what the pipeline made of each
/// (deliveries and failed plugin calls, committed with the event or when
/// it is routed), and reading them back.
pub trait EventLog: Send + Sync {
    /// Make an event durable, unless its id is stored already or its
    /// fingerprint was seen within the dedup window.
    fn accept(&self, event: NewEvent) -> StoreFuture<AcceptOutcome> {
        let admitted = self.admit(event);
        Box::pin(async move {
            let admitted = admitted.await?;
            admitted.durable.await?;
            Ok(admitted.outcome)
        })
    }

    /// [`EventLog::accept`], answered at the commit: the caller can start on
    /// the event while the commit flushes, and must await
    /// [`Admitted::durable`] before telling anyone the event is accepted.
    fn admit(&self, event: NewEvent) -> StoreFuture<Admitted> {
        self.admit_with(event, None)
    }

    /// Store a new event already routed: the event, marked routed, and the
    /// deliveries its pipeline produced, in one commit — answered like
    /// [`EventLog::admit`], with the deliveries' ids. A duplicate stores
    /// neither. Either all of it is committed or none of it.
    fn admit_routed(&self, event: NewEvent, routed: Routed) -> StoreFuture<Admitted> {
        self.admit_with(event, Some(routed))
    }

    /// [`EventLog::admit`] (`deliveries: None`: to be routed later, with
    /// [`EventLog::complete`]) or [`EventLog::admit_routed`].
    fn admit_with(&self, event: NewEvent, routed: Option<Routed>) -> StoreFuture<Admitted>;

    /// Record the pipeline's output for event `seq`: add its deliveries to
    /// the outbox (and its failed plugin calls) and mark it routed, in one
    /// transaction. Returns the new delivery ids, in order.
    fn complete(&self, seq: i64, routed: Routed) -> StoreFuture<Vec<i64>>;

    /// Record a retry of failure `id`: mark it retried, and store what the
    /// retry made, in one transaction. Returns the new delivery ids.
    fn resolve_failure(&self, id: i64, routed: Routed) -> StoreFuture<Vec<i64>>;

    /// One failed plugin call.
    fn failure(&self, id: i64) -> Result<Option<FailureRecord>, StoreError>;

    /// Failed plugin calls, newest first.
    fn failures(&self, filter: &FailureFilter) -> Result<Vec<FailureRecord>, StoreError>;

    /// Stored events, newest first.
    fn events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError>;

    /// When each event received at or after `since` (Unix ms) arrived,
    /// newest first, at most `max`: read from the newest row back.
    fn recent_events(&self, since: u64, max: usize) -> Result<Vec<u64>, StoreError>;

    /// Events accepted but not routed (after a crash).
    fn unrouted_events(&self) -> Result<Vec<UnroutedEvent>, StoreError>;
}

/// The outbox: deliveries and their attempts — what is due, what
/// happened on each attempt, resending, and reading them back.
pub trait Outbox: Send + Sync {
    /// Record an attempt and the delivery's new state.
    fn record_attempt(&self, attempt: AttemptRecord, after: AfterAttempt) -> StoreFuture<()>;

    /// Put deliveries back in the queue, due now (retry, replay). Returns how many.
    fn requeue(&self, ids: Vec<i64>) -> StoreFuture<u64>;

    /// Pending deliveries of `endpoint` with id `>= from_id`, oldest first.
    /// For an endpoint that delivers in `order`, where ids may be committed
    /// out of order (several writers), a page also holds every earlier
    /// pending delivery of the same ordering keys, so that a chat's
    /// deliveries are never seen out of order.
    fn pending_deliveries(
        &self,
        endpoint: &str,
        from_id: i64,
        limit: usize,
        order: bool,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// One delivery.
    fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>, StoreError>;

    /// Deliveries matching `filter`, newest first.
    fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// A delivery's attempts, oldest first.
    fn attempts(&self, delivery_id: i64) -> Result<Vec<AttemptRecord>, StoreError>;

    /// Deliveries per state for one endpoint.
    fn counts(&self, endpoint: &str) -> Result<Vec<(DeliveryState, u64)>, StoreError>;

    /// When each delivery created at or after `since` (Unix ms) was created
    /// and its state, newest first, at most `max`: read from the newest row
    /// back (deliveries are appended in time order), not by scanning.
    fn recent_deliveries(
        &self,
        since: u64,
        max: usize,
    ) -> Result<Vec<(u64, DeliveryState)>, StoreError>;
}

/// Endpoint state that outlives a restart: disabled endpoints and why.
pub trait EndpointState: Send + Sync {
    /// Mark an endpoint disabled (e.g. after `410 Gone`) or enabled again.
    fn set_endpoint_disabled(&self, endpoint: String, disabled: Option<String>) -> StoreFuture<()>;

    /// Endpoints disabled, with the reason.
    fn disabled_endpoints(&self) -> Result<Vec<(String, String)>, StoreError>;
}

/// Sessions created over the API, kept across restarts.
pub trait SessionStore: Send + Sync {
    /// Save (create or replace) a session record created over the API.
    fn save_session(&self, name: String, record: String) -> StoreFuture<()>;

    /// Delete a saved session; `false` when there was none.
    fn delete_session(&self, name: String) -> StoreFuture<bool>;

    /// Saved sessions: (name, record).
    fn sessions(&self) -> Result<Vec<(String, String)>, StoreError>;
}

/// Pull queues (Green-API's HTTP API technology): notifications waiting
/// to be received and deleted.
pub trait PullQueueStore: Send + Sync {
    /// The oldest `limit` unexpired notifications of a pull queue, in the
    /// order their events were accepted.
    fn peek_notifications(
        &self,
        instance: &str,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Delete a notification; `false` when the receipt is unknown (or already deleted).
    fn delete_notification(&self, instance: String, receipt_id: i64) -> StoreFuture<bool>;

    /// Notifications waiting in a pull queue.
    fn queue_length(&self, instance: &str) -> Result<u64, StoreError>;
}

/// How a store groups its writes, for `/metrics`: writes committed, the
/// transactions they went in, and the log flushes that made them durable.
/// Writes per commit and per flush say how well group commit batches.
#[derive(Debug, Clone, Default)]
pub struct WriteCounters {
    /// Writes in committed transactions.
    pub writes: prometheus_client::metrics::counter::Counter,
    /// Transactions committed.
    pub commits: prometheus_client::metrics::counter::Counter,
    /// Flushes of the log to disk (`sync: full`).
    pub flushes: prometheus_client::metrics::counter::Counter,
}

/// Durable state (see the module docs): every part, retention across
/// them, and the writer's life.
pub trait Store: EventLog + Outbox + EndpointState + SessionStore + PullQueueStore {
    /// Apply retention limits.
    fn prune(&self, retention: Retention) -> StoreFuture<Pruned>;

    /// Whether the store accepts writes (for `/ready`).
    fn writable(&self) -> bool;

    /// Stop the writer after finishing queued writes.
    fn close(&self);

    /// This node's claims on deliveries and sessions, when the store is
    /// shared by several nodes (see [`claims`]); `None`: this node holds
    /// everything.
    fn claims(&self) -> Option<std::sync::Arc<dyn claims::Claims>> {
        None
    }

    /// The store's write counters, where it keeps them.
    fn write_counters(&self) -> Option<WriteCounters> {
        None
    }
}
