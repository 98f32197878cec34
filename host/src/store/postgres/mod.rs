//! The PostgreSQL store (`store.backend: postgres`): the same traits as the
//! embedded SQLite store, in a database any number of wasp nodes share.
//!
//! - **Durability:** every write is one transaction, committed with
//!   `synchronous_commit = on` before its future resolves, so an event is
//!   answered 202 only once it and its deliveries are on the database's disk.
//! - **Dedup across nodes:** the event id is a unique key, and so is the
//!   message fingerprint (`fingerprints`, with the time it was seen): two
//!   nodes accepting the same message at once wait for each other, and the
//!   later one finds the first.
//! - **Who delivers:** deliveries fall in partitions ([`super::claims`]); a
//!   node pages in only the pending deliveries of the partitions it leases
//!   (`cluster.rs`), and every attempt it records is fenced by the
//!   partition's epoch: a node that lost its lease cannot commit.
//! - **News between nodes:** a commit that adds or requeues deliveries
//!   sends `NOTIFY` with the endpoints and the lowest ids; every node
//!   listens, so the node that holds a chat's partition (and a long poll of
//!   a pull queue) wakes when another node accepted its event.
//!
//! Reads are synchronous in the store traits: this store drives its
//! connections on a small runtime of its own, so a read blocks its caller
//! (like SQLite's reader connection) without starving the connections.

mod attempts;
mod batch;
mod cluster;
pub mod local;
mod pool;
mod schema;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use self::cluster::Membership;
use self::pool::{Pool, backend, prepared};
use super::claims::{Claims, partition_of};
use super::filter::{Condition, saturating_i64};
use super::{
    AcceptOutcome, Admitted, AfterAttempt, AttemptRecord, DeliveryFilter, DeliveryRecord,
    DeliveryState, EndpointState, EventFilter, EventLog, EventRecord, FailureFilter, FailureRecord,
    FailureState, NewEvent, Notification, Outbox, Pruned, PullQueueStore, Retention, Routed,
    SessionStore, Store, StoreError, StoreFuture, UnroutedEvent,
};

pub use schema::VERSION;

/// How to reach the database and run the cluster.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// Connection string (URL or key=value).
    pub url: String,
    /// Connections per node.
    pub pool: usize,
    /// The schema wasp's tables live in.
    pub schema: String,
    /// How long claims last unrenewed.
    pub lease: Duration,
    /// How often they are renewed.
    pub heartbeat: Duration,
    /// This node's listening address, shown to the others.
    pub address: String,
}

impl PostgresSettings {
    /// From `store.postgres` (validated), for a node listening on `address`.
    pub fn from_config(config: &crate::config::PostgresConfig, address: String) -> Self {
        Self {
            url: config.url.clone(),
            pool: config.pool,
            schema: config.schema.clone(),
            lease: config.lease.0,
            heartbeat: config.heartbeat(),
            address,
        }
    }
}

/// A runtime that may be dropped anywhere (also inside another runtime).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// What the store's tasks share.
pub(crate) struct Inner {
    /// Itself, for reads started from a borrowed `Inner`.
    this: std::sync::Weak<Inner>,
    pool: Pool,
    handle: tokio::runtime::Handle,
    membership: Membership,
    /// Attempts kept per delivery (from the last retention run; 0: no cap yet).
    attempts_cap: AtomicUsize,
    /// The channel commits notify on.
    channel: String,
}

/// The PostgreSQL store.
pub struct PostgresStore {
    inner: Arc<Inner>,
    /// New events, to the group-commit writer (`batch.rs`).
    admits: Mutex<Option<tokio::sync::mpsc::UnboundedSender<batch::Write>>>,
    /// Attempts, to their group-commit writer (`attempts.rs`).
    attempts: Mutex<Option<tokio::sync::mpsc::UnboundedSender<attempts::Job>>>,
    /// The two writers.
    writers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    runtime: Mutex<OwnRuntime>,
    closed: AtomicBool,
    /// Writes under way (close waits for them).
    writing: Arc<AtomicUsize>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("node", &self.inner.membership.node)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connect, run the migrations, join the cluster and start renewing
    /// claims and listening for the other nodes' news.
    pub async fn open(settings: PostgresSettings) -> Result<Arc<Self>, StoreError> {
        let config: tokio_postgres::Config = settings.url.parse().map_err(|error| {
            StoreError::Backend(format!(
                "store.postgres.url is not a connection string: {error}"
            ))
        })?;
        let runtime = OwnRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("wasp-postgres")
                .enable_all()
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))?,
        ));
        let handle = runtime.0.as_ref().expect("just built").handle().clone();
        let started = handle.spawn({
            let handle = handle.clone();
            let settings = settings.clone();
            async move {
                let mut client = pool::connect(&config, "public").await?;
                schema::migrate(&mut client, &settings.schema).await?;
                drop(client);
                let inner = Arc::new_cyclic(|this| Inner {
                    this: this.clone(),
                    pool: Pool::new(config.clone(), settings.schema.clone(), settings.pool),
                    handle,
                    membership: Membership::new(&settings),
                    attempts_cap: AtomicUsize::new(0),
                    channel: format!("wasp_{}", settings.schema),
                });
                cluster::join(&inner).await?;
                // Hold a share before the first event (alone: everything).
                cluster::renew(&inner).await?;
                tokio::spawn(cluster::renew_loop(inner.clone()));
                tokio::spawn(cluster::listen_loop(inner.clone(), config));
                Ok::<_, StoreError>(inner)
            }
        });
        let inner = started
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))??;
        tracing::info!(
            node = %inner.membership.node,
            schema = %settings.schema,
            "PostgreSQL store open (schema version {VERSION})"
        );
        let (admits, jobs) = tokio::sync::mpsc::unbounded_channel();
        let (attempts, attempt_jobs) = tokio::sync::mpsc::unbounded_channel();
        let writers = vec![
            handle.spawn(batch::writer(inner.clone(), jobs)),
            handle.spawn(attempts::writer(inner.clone(), attempt_jobs)),
        ];
        Ok(Arc::new(Self {
            inner,
            admits: Mutex::new(Some(admits)),
            attempts: Mutex::new(Some(attempts)),
            writers: Mutex::new(writers),
            runtime: Mutex::new(runtime),
            closed: AtomicBool::new(false),
            writing: Arc::default(),
        }))
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.inner.membership.node
    }

    /// Run a write on the store's runtime; it resolves once committed.
    fn write<T, F>(&self, write: impl FnOnce(Arc<Inner>) -> F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        if self.closed.load(Ordering::Acquire) {
            return Box::pin(async { Err(StoreError::Closed) });
        }
        let writing = self.writing.clone();
        writing.fetch_add(1, Ordering::AcqRel);
        let future = write(self.inner.clone());
        let task = self.inner.handle.spawn(async move {
            let result = future.await;
            writing.fetch_sub(1, Ordering::AcqRel);
            result
        });
        Box::pin(async move { task.await.unwrap_or(Err(StoreError::Closed)) })
    }

    /// The row of `table` with this `id`, read by `row`.
    fn by_id<T: Send + 'static>(
        &self,
        columns: &'static str,
        table: &'static str,
        id: i64,
        row: fn(&tokio_postgres::Row) -> T,
    ) -> Result<Option<T>, StoreError> {
        self.read(move |inner| async move {
            let mut select = Select::from(columns, table);
            select.and("id = ?", id);
            Ok(select.newest_by("id", 1, &inner).await?.first().map(row))
        })
    }

    /// Run a read on the store's runtime, blocking the caller until done.
    fn read<T, F>(&self, read: impl FnOnce(Arc<Inner>) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.inner.read(read)
    }
}

impl Inner {
    /// See [`PostgresStore::read`].
    fn read<T, F>(self: &Arc<Self>, read: impl FnOnce(Arc<Inner>) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let future = read(self.clone());
        self.handle.spawn(async move {
            let _ = reply.send(future.await);
        });
        answer.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// The database's clock, Unix ms (leases are timed by it alone).
    const NOW_MS: &'static str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
}

fn ready<T: Send + 'static>(value: T) -> StoreFuture<T> {
    Box::pin(async move { Ok(value) })
}

const CLAIM_FINGERPRINT: &str = "INSERT INTO fingerprints (fingerprint, event_id, seen_at) VALUES ($1, $2, $3)
     ON CONFLICT (fingerprint) DO UPDATE SET event_id = excluded.event_id, seen_at = excluded.seen_at
       WHERE fingerprints.seen_at < $4
     RETURNING event_id";

const INSERT_EVENT: &str = "INSERT INTO events (id, session, name, received_at, body, generation, fingerprint, routed, walk, node)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING RETURNING seq";

const INSERT_DELIVERY: &str = "INSERT INTO deliveries (event_id, event_name, session, endpoint, ordering_key, partition, headers,
                             attempt_headers, body, state, created_at, updated_at, next_attempt_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $10, $10) RETURNING id";

const INSERT_NOTIFICATION: &str = "INSERT INTO notifications (instance, endpoint, event_id, event_seq, body, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING receipt_id";

const INSERT_FAILURE: &str =
    "INSERT INTO plugin_failures (event_id, event_name, session, route, plugin, kind, endpoint,
                                  outcome, error, event, state, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'dead', $11)";

type Statements = std::collections::HashMap<&'static str, tokio_postgres::Statement>;

/// The outcome of an id or fingerprint already taken.
async fn repeated(
    tx: &Transaction<'_>,
    original: String,
    body: &str,
) -> Result<AcceptOutcome, StoreError> {
    let stored = tx
        .query_opt("SELECT body FROM events WHERE id = $1", &[&original])
        .await
        .map_err(backend)?;
    let same = stored.is_none_or(|row| super::same_event(row.get(0), body));
    Ok(if same {
        AcceptOutcome::Duplicate(original)
    } else {
        AcceptOutcome::Conflict(original)
    })
}

pub(super) async fn admit(
    inner: Arc<Inner>,
    event: NewEvent,
    routed: Option<Arc<Routed>>,
) -> Result<Admitted, StoreError> {
    let now = crate::clock::now_ms() as i64;
    let mut conn = inner.pool.get().await?;
    let (client, statements) = conn.split();
    let tx = client.transaction().await.map_err(backend)?;
    let done = |outcome, deliveries| Admitted {
        outcome,
        deliveries,
        durable: ready(()),
    };
    // A window of zero turns fingerprint dedup off.
    let fingerprint = event
        .fingerprint
        .as_deref()
        .filter(|_| event.dedup_window_ms > 0);
    if let Some(fingerprint) = fingerprint {
        let since = now - event.dedup_window_ms as i64;
        let claim = prepared(&tx, statements, CLAIM_FINGERPRINT)
            .await
            .map_err(backend)?;
        let claimed = tx
            .query_opt(&claim, &[&fingerprint, &event.id, &now, &since])
            .await
            .map_err(backend)?;
        if claimed.is_none() {
            let original: String = tx
                .query_one(
                    "SELECT event_id FROM fingerprints WHERE fingerprint = $1",
                    &[&fingerprint],
                )
                .await
                .map_err(backend)?
                .get(0);
            return Ok(done(
                repeated(&tx, original, &event.body).await?,
                Vec::new(),
            ));
        }
    }
    let insert = prepared(&tx, statements, INSERT_EVENT)
        .await
        .map_err(backend)?;
    let walk = routed.as_ref().and_then(|routed| routed.walk.as_deref());
    let inserted = tx
        .query_opt(
            &insert,
            &[
                &event.id,
                &event.session,
                &event.name,
                &now,
                &event.body,
                &(event.generation as i64),
                &event.fingerprint,
                &routed.is_some(),
                &walk,
                &inner.membership.node,
            ],
        )
        .await
        .map_err(backend)?;
    let Some(inserted) = inserted else {
        return Ok(done(
            repeated(&tx, event.id.clone(), &event.body).await?,
            Vec::new(),
        ));
    };
    let seq: i64 = inserted.get(0);
    let ids = match &routed {
        Some(routed) => insert_routed(&inner, &tx, statements, seq, routed, now).await?,
        None => Vec::new(),
    };
    tx.commit().await.map_err(backend)?;
    Ok(done(AcceptOutcome::Stored(seq), ids))
}

/// Store what event `seq`'s pipeline made: deliveries (pull endpoints: into
/// their queues) and failures, and tell the other nodes. Returns the new
/// delivery ids (receipt ids for queues), in order.
async fn insert_routed(
    inner: &Inner,
    tx: &Transaction<'_>,
    statements: &mut Statements,
    seq: i64,
    routed: &Routed,
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    let delivery = prepared(tx, statements, INSERT_DELIVERY)
        .await
        .map_err(backend)?;
    let notification = prepared(tx, statements, INSERT_NOTIFICATION)
        .await
        .map_err(backend)?;
    struct Row<'a> {
        headers: String,
        partition: i32,
        body: std::borrow::Cow<'a, str>,
        expires_at: i64,
    }
    let rows: Vec<Row<'_>> = routed
        .deliveries
        .iter()
        .map(|d| Row {
            headers: serde_json::to_string(&d.headers).expect("headers serialize"),
            partition: partition_of(&d.session, &d.ordering_key) as i32,
            body: String::from_utf8_lossy(&d.body),
            expires_at: d.queue.as_ref().map_or(0, |(_, keep)| now + *keep as i64),
        })
        .collect();
    // One round trip for all of them: the statements are pipelined.
    let inserts = routed.deliveries.iter().zip(&rows).map(|(d, row)| {
        let (delivery, notification) = (&delivery, &notification);
        async move {
            let inserted = match &d.queue {
                Some((instance, _)) => {
                    tx.query_one(
                        notification,
                        &[
                            instance,
                            &d.endpoint,
                            &d.event_id,
                            &seq,
                            &row.body.as_ref(),
                            &now,
                            &row.expires_at,
                        ],
                    )
                    .await
                }
                None => {
                    tx.query_one(
                        delivery,
                        &[
                            &d.event_id,
                            &d.event_name,
                            &d.session,
                            &d.endpoint,
                            &d.ordering_key,
                            &row.partition,
                            &row.headers,
                            &d.attempt_headers,
                            &d.body,
                            &now,
                        ],
                    )
                    .await
                }
            };
            inserted.map(|row| row.get::<_, i64>(0))
        }
    });
    let ids = futures_util::future::try_join_all(inserts)
        .await
        .map_err(backend)?;
    for failure in &routed.failures {
        insert_failure(tx, statements, failure, now).await?;
    }
    let arrived = routed
        .deliveries
        .iter()
        .zip(&ids)
        .map(|(d, id)| (d.endpoint.as_str(), *id));
    notify(inner, tx, arrived).await?;
    Ok(ids)
}

/// Store one failed plugin call.
async fn insert_failure(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    f: &super::NewFailure,
    now: i64,
) -> Result<(), StoreError> {
    let insert = prepared(tx, statements, INSERT_FAILURE)
        .await
        .map_err(backend)?;
    tx.execute(
        &insert,
        &[
            &f.event_id,
            &f.event_name,
            &f.session,
            &f.route,
            &f.plugin,
            &f.kind,
            &f.endpoint,
            &f.outcome,
            &f.error,
            &f.event,
            &now,
        ],
    )
    .await
    .map(drop)
    .map_err(backend)
}

/// Tell the other nodes (at commit) which endpoints have new or requeued
/// deliveries, with the lowest id of each.
pub(super) async fn notify<'a>(
    inner: &Inner,
    tx: &Transaction<'_>,
    arrived: impl Iterator<Item = (&'a str, i64)>,
) -> Result<(), StoreError> {
    let mut lowest: std::collections::BTreeMap<&str, i64> = Default::default();
    for (endpoint, id) in arrived {
        let entry = lowest.entry(endpoint).or_insert(id);
        *entry = (*entry).min(id);
    }
    if lowest.is_empty() {
        return Ok(());
    }
    let payload = cluster::outbox_payload(&inner.membership.node, &lowest);
    tx.execute("SELECT pg_notify($1, $2)", &[&inner.channel, &payload])
        .await
        .map_err(backend)?;
    Ok(())
}

pub(super) async fn complete(
    inner: Arc<Inner>,
    seq: i64,
    routed: Arc<Routed>,
) -> Result<Vec<i64>, StoreError> {
    let now = crate::clock::now_ms() as i64;
    let mut conn = inner.pool.get().await?;
    let (client, statements) = conn.split();
    let tx = client.transaction().await.map_err(backend)?;
    let ids = insert_routed(&inner, &tx, statements, seq, &routed, now).await?;
    tx.execute(
        "UPDATE events SET routed = true, walk = COALESCE($2, walk) WHERE seq = $1",
        &[&seq, &routed.walk],
    )
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(ids)
}

pub(super) async fn resolve_failure(
    inner: Arc<Inner>,
    id: i64,
    routed: Arc<Routed>,
) -> Result<Vec<i64>, StoreError> {
    let now = crate::clock::now_ms() as i64;
    let mut conn = inner.pool.get().await?;
    let (client, statements) = conn.split();
    let tx = client.transaction().await.map_err(backend)?;
    tx.execute(
        "UPDATE plugin_failures SET state = 'retried', retried_at = $2 WHERE id = $1",
        &[&id, &now],
    )
    .await
    .map_err(backend)?;
    // The event's sequence number only matters to pull queues' rows.
    let seq: i64 = tx
        .query_one(
            "SELECT COALESCE((SELECT seq FROM events WHERE id =
                (SELECT event_id FROM plugin_failures WHERE id = $1)), 0)",
            &[&id],
        )
        .await
        .map_err(backend)?
        .get(0);
    if let Some(walk) = &routed.walk {
        tx.execute(
            "UPDATE events SET walk = $2 WHERE id = (SELECT event_id FROM plugin_failures WHERE id = $1)",
            &[&id, walk],
        )
        .await
        .map_err(backend)?;
    }
    let ids = insert_routed(&inner, &tx, statements, seq, &routed, now).await?;
    tx.commit().await.map_err(backend)?;
    Ok(ids)
}

pub(super) async fn record_attempt(
    inner: Arc<Inner>,
    attempt: AttemptRecord,
    after: AfterAttempt,
) -> Result<(), StoreError> {
    let now = crate::clock::now_ms() as i64;
    let mut conn = inner.pool.get().await?;
    let (client, statements) = conn.split();
    let tx = client.transaction().await.map_err(backend)?;
    // The fence: this node must still hold the delivery's partition, at
    // the epoch it attempted under; the row lock keeps another node from
    // taking the partition until this commit is done.
    let fence = prepared(
        &tx,
        statements,
        "SELECT p.partition, p.epoch FROM deliveries d JOIN partitions p ON p.partition = d.partition
         WHERE d.id = $1 AND p.owner = $2 FOR SHARE OF p",
    )
    .await
    .map_err(backend)?;
    let held = tx
        .query_opt(&fence, &[&attempt.delivery_id, &inner.membership.node])
        .await
        .map_err(backend)?
        .map(|row| (row.get::<_, i32>(0) as u32, row.get::<_, i64>(1)));
    match held {
        Some((partition, epoch)) if inner.membership.epoch_of(partition) == Some(epoch) => {}
        Some((partition, _)) => return Err(cluster::fenced(partition)),
        None => {
            return Err(StoreError::Backend(format!(
                "delivery {} is not this node's to record (no such delivery, or its partition is held by another node)",
                attempt.delivery_id
            )));
        }
    }
    let insert = prepared(
        &tx,
        statements,
        "INSERT INTO attempts (delivery_id, number, at, status, latency_ms, outcome, excerpt)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .await
    .map_err(backend)?;
    let update = prepared(
        &tx,
        statements,
        "UPDATE deliveries SET state = $2, attempts = attempts + 1, next_attempt_at = $3, updated_at = $4,
            first_attempt_at = COALESCE(first_attempt_at, $5), last_status = $6, last_error = $7
         WHERE id = $1 AND state = 'pending' RETURNING attempts",
    )
    .await
    .map_err(backend)?;
    let (state, next) = match after {
        AfterAttempt::Delivered => (DeliveryState::Delivered, 0),
        AfterAttempt::RetryAt(at) => (DeliveryState::Pending, at as i64),
        AfterAttempt::Failed => (DeliveryState::Failed, 0),
        AfterAttempt::Dead => (DeliveryState::Dead, 0),
    };
    let error = (after != AfterAttempt::Delivered).then_some(&attempt.excerpt);
    let status = attempt.status.map(i32::from);
    let at = attempt.at as i64;
    let number = attempt.number as i32;
    let state = state.as_str();
    let insert_values: [&(dyn ToSql + Sync); 7] = [
        &attempt.delivery_id,
        &number,
        &at,
        &status,
        &attempt.latency_ms,
        &attempt.outcome,
        &attempt.excerpt,
    ];
    let update_values: [&(dyn ToSql + Sync); 7] = [
        &attempt.delivery_id,
        &state,
        &next,
        &now,
        &at,
        &status,
        &error,
    ];
    // Both in one round trip.
    let inserted = tx.execute(&insert, &insert_values);
    let updated = tx.query_opt(&update, &update_values);
    let (inserted, updated) = tokio::try_join!(inserted, updated).map_err(backend)?;
    debug_assert_eq!(inserted, 1);
    // Past the cap, drop this delivery's oldest attempts.
    let cap = inner.attempts_cap.load(Ordering::Relaxed);
    if let Some(row) = updated
        && cap > 0
        && row.get::<_, i32>(0) as usize > cap
    {
        tx.execute(
            "DELETE FROM attempts WHERE delivery_id = $1 AND id <=
               (SELECT id FROM attempts WHERE delivery_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            &[&attempt.delivery_id, &(cap as i64)],
        )
        .await
        .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(())
}

async fn requeue(inner: Arc<Inner>, ids: Vec<i64>) -> Result<u64, StoreError> {
    let now = crate::clock::now_ms() as i64;
    let mut conn = inner.pool.get().await?;
    let (client, _) = conn.split();
    let tx = client.transaction().await.map_err(backend)?;
    let rows = tx
        .query(
            "UPDATE deliveries SET state = 'pending', next_attempt_at = $2, updated_at = $2,
                retry_base = attempts, first_attempt_at = NULL
             WHERE id = ANY($1) RETURNING endpoint, id",
            &[&ids, &now],
        )
        .await
        .map_err(backend)?;
    let requeued: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    notify(
        &inner,
        &tx,
        requeued
            .iter()
            .map(|(endpoint, id)| (endpoint.as_str(), *id)),
    )
    .await?;
    tx.commit().await.map_err(backend)?;
    Ok(requeued.len() as u64)
}

/// The first id of `table` whose `column` is at or after `cutoff`: rows
/// are appended in time order, so everything below it is older.
async fn first_id_since(
    tx: &Transaction<'_>,
    table: &str,
    id: &str,
    column: &str,
    cutoff: i64,
) -> Result<i64, StoreError> {
    tx.query_one(
        &format!(
            "SELECT COALESCE((SELECT {id} FROM {table} WHERE {column} >= $1 ORDER BY {id} LIMIT 1),
                             (SELECT COALESCE(MAX({id}), 0) + 1 FROM {table}))"
        ),
        &[&cutoff],
    )
    .await
    .map(|row| row.get(0))
    .map_err(backend)
}

async fn prune(inner: Arc<Inner>, retention: Retention) -> Result<Pruned, StoreError> {
    inner
        .attempts_cap
        .store(retention.attempts_per_delivery, Ordering::Relaxed);
    let now = crate::clock::now_ms() as i64;
    let cutoff = now - retention.max_age_ms as i64;
    let keep = retention.dead_letters_per_endpoint as i64;
    let mut conn = inner.pool.get().await?;
    let (client, _) = conn.split();
    let tx = client.transaction().await.map_err(backend)?;
    let boundary = first_id_since(&tx, "attempts", "id", "at", cutoff).await?;
    let mut attempts = tx
        .execute("DELETE FROM attempts WHERE id < $1", &[&boundary])
        .await
        .map_err(backend)?;
    let boundary = first_id_since(&tx, "deliveries", "id", "created_at", cutoff).await?;
    let pruned: Vec<i64> = tx
        .query(
            "SELECT id FROM deliveries WHERE id < $1 AND state IN ('delivered', 'failed')
             UNION
             SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY endpoint ORDER BY id DESC) AS newer
                             FROM deliveries WHERE state = 'dead') dead
             WHERE newer > $2",
            &[&boundary, &keep],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    attempts += tx
        .execute(
            "DELETE FROM attempts WHERE delivery_id = ANY($1)",
            &[&pruned],
        )
        .await
        .map_err(backend)?;
    let deliveries = tx
        .execute("DELETE FROM deliveries WHERE id = ANY($1)", &[&pruned])
        .await
        .map_err(backend)?;
    let boundary = first_id_since(&tx, "events", "seq", "received_at", cutoff).await?;
    let events = tx
        .execute(
            "DELETE FROM events WHERE seq < $1 AND routed
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.state = 'pending')",
            &[&boundary],
        )
        .await
        .map_err(backend)?;
    let notifications = tx
        .execute("DELETE FROM notifications WHERE expires_at < $1", &[&now])
        .await
        .map_err(backend)?;
    // Fingerprints outside the longest window anyone uses are dead weight;
    // the retention age bounds them.
    tx.execute("DELETE FROM fingerprints WHERE seen_at < $1", &[&cutoff])
        .await
        .map_err(backend)?;
    let failures = tx
        .execute(
            "DELETE FROM plugin_failures WHERE state = 'retried' AND retried_at < $1",
            &[&cutoff],
        )
        .await
        .map_err(backend)?
        + tx
            .execute(
                "DELETE FROM plugin_failures WHERE id IN (
                   SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY plugin ORDER BY id DESC) AS newer
                                   FROM plugin_failures WHERE state = 'dead') dead
                   WHERE newer > $1)",
                &[&keep],
            )
            .await
            .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(Pruned {
        events,
        deliveries,
        attempts,
        notifications,
        failures,
    })
}

/// Hand `job` to a group-commit writer; the future resolves with the
/// writer's `answer` (closed: once the writer is gone).
fn submit<J: Send + 'static, T: Send + 'static>(
    writer: &Mutex<Option<tokio::sync::mpsc::UnboundedSender<J>>>,
    job: J,
    answer: tokio::sync::oneshot::Receiver<Result<T, StoreError>>,
) -> StoreFuture<T> {
    let sent = writer
        .lock()
        .expect("writer lock")
        .as_ref()
        .is_some_and(|writer| writer.send(job).is_ok());
    if !sent {
        return Box::pin(async { Err(StoreError::Closed) });
    }
    Box::pin(async move { answer.await.unwrap_or(Err(StoreError::Closed)) })
}

/// A `SELECT` built from a filter, its values bound (see `sqlite/select.rs`).
struct Select {
    sql: String,
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Select {
    fn from(columns: &str, table: &str) -> Self {
        Self {
            sql: format!("SELECT {columns} FROM {table} WHERE true"),
            values: Vec::new(),
        }
    }

    /// Add ` AND {clause}`, whose one `?` stands for `value`.
    fn and(&mut self, clause: &str, value: impl ToSql + Sync + Send + 'static) {
        self.values.push(Box::new(value));
        let placeholder = format!("${}", self.values.len());
        self.sql.push_str(" AND ");
        self.sql.push_str(&clause.replace('?', &placeholder));
    }

    /// Add a filter's conditions.
    fn matching(mut self, conditions: Vec<Condition>) -> Self {
        for condition in conditions {
            match condition {
                Condition::Equals(column, value) => self.and(&format!("{column} = ?"), value),
                Condition::AtLeast(column, value) => self.and(&format!("{column} >= ?"), value),
                Condition::Below(column, value) => self.and(&format!("{column} < ?"), value),
                Condition::HoldsJsonString(column, value) => self.and(
                    &format!("strpos({column}, ?) > 0"),
                    serde_json::to_string(&value).expect("a string serializes"),
                ),
                Condition::OneOf(column, values) => self.and(&format!("{column} = ANY(?)"), values),
            }
        }
        self
    }

    /// The rows, highest `key` first, at most `limit`.
    async fn newest_by(
        mut self,
        key: &str,
        limit: usize,
        inner: &Inner,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.sql
            .push_str(&format!(" ORDER BY {key} DESC LIMIT {limit}"));
        let values: Vec<&(dyn ToSql + Sync)> = self
            .values
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let conn = inner.pool.get().await?;
        conn.client.query(&self.sql, &values).await.map_err(backend)
    }
}

const DELIVERY_COLUMNS: &str = "id, event_id, event_name, session, endpoint, ordering_key, state, attempts - retry_base,
     created_at, next_attempt_at, first_attempt_at, last_status, last_error, headers, attempt_headers, body";

fn delivery_row(row: &tokio_postgres::Row) -> DeliveryRecord {
    let headers: String = row.get(13);
    DeliveryRecord {
        id: row.get(0),
        event_id: row.get(1),
        event_name: row.get(2),
        session: row.get(3),
        endpoint: row.get(4),
        ordering_key: row.get(5),
        state: DeliveryState::parse(row.get(6)).unwrap_or(DeliveryState::Pending),
        attempts: row.get::<_, i32>(7) as u32,
        created_at: row.get::<_, i64>(8) as u64,
        next_attempt_at: row.get::<_, i64>(9) as u64,
        first_attempt_at: row.get::<_, Option<i64>>(10).map(|t| t as u64),
        last_status: row.get::<_, Option<i32>>(11).map(|s| s as u16),
        last_error: row.get(12),
        headers: serde_json::from_str(&headers).unwrap_or_default(),
        attempt_headers: row.get(14),
        body: row.get(15),
    }
}

const PENDING: &str = "SELECT id, event_id, event_name, session, endpoint, ordering_key, state, attempts - retry_base,
            created_at, next_attempt_at, first_attempt_at, last_status, last_error, headers, attempt_headers, body
     FROM deliveries WHERE endpoint = $1 AND state = 'pending' AND id >= $2 AND partition = ANY($3)
     ORDER BY id LIMIT $4";

const PENDING_IN_ORDER: &str = "WITH page AS (
       SELECT id, ordering_key FROM deliveries
       WHERE endpoint = $1 AND state = 'pending' AND id >= $2 AND partition = ANY($3)
       ORDER BY id LIMIT $4),
     wanted AS (
       SELECT id FROM page
       UNION
       SELECT d.id FROM deliveries d
       WHERE d.endpoint = $1 AND d.state = 'pending' AND d.id < $2 AND d.partition = ANY($3)
         AND d.ordering_key IN (SELECT ordering_key FROM page))
     SELECT id, event_id, event_name, session, endpoint, ordering_key, state, attempts - retry_base,
            created_at, next_attempt_at, first_attempt_at, last_status, last_error, headers, attempt_headers, body
     FROM deliveries WHERE id IN (SELECT id FROM wanted) ORDER BY id";

const FAILURE_COLUMNS: &str =
    "id, event_id, event_name, session, route, plugin, kind, endpoint, outcome, error,
     state, created_at, retried_at, event";

fn failure_row(row: &tokio_postgres::Row) -> FailureRecord {
    FailureRecord {
        id: row.get(0),
        event_id: row.get(1),
        event_name: row.get(2),
        session: row.get(3),
        route: row.get(4),
        plugin: row.get(5),
        kind: row.get(6),
        endpoint: row.get(7),
        outcome: row.get(8),
        error: row.get(9),
        state: FailureState::parse(row.get(10)).unwrap_or(FailureState::Dead),
        created_at: row.get::<_, i64>(11) as u64,
        retried_at: row.get::<_, Option<i64>>(12).map(|t| t as u64),
        event: row.get(13),
    }
}

/// One query's rows, on a pooled connection, with `sql` prepared once per
/// connection.
async fn rows(
    inner: &Inner,
    sql: &'static str,
    values: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let mut conn = inner.pool.get().await?;
    let statement = conn.statement(sql).await.map_err(backend)?;
    conn.client.query(&statement, values).await.map_err(backend)
}

/// One statement, on a pooled connection: the rows it changed.
async fn execute(
    inner: &Inner,
    sql: &'static str,
    values: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let mut conn = inner.pool.get().await?;
    let statement = conn.statement(sql).await.map_err(backend)?;
    conn.client
        .execute(&statement, values)
        .await
        .map_err(backend)
}

/// Two text columns of every row `sql` selects.
async fn pairs(inner: Arc<Inner>, sql: &'static str) -> Result<Vec<(String, String)>, StoreError> {
    let rows = rows(&inner, sql, &[]).await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

impl EventLog for PostgresStore {
    /// Through the group-commit writer (`batch.rs`), in submission order.
    fn admit_with(&self, event: NewEvent, routed: Option<Routed>) -> StoreFuture<Admitted> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = batch::Job {
            event,
            routed: routed.map(Arc::new),
            reply,
        };
        submit(&self.admits, batch::Write::Admit(job), answer)
    }

    /// Through the writer of new events, in submission order.
    fn complete(&self, seq: i64, routed: Routed) -> StoreFuture<Vec<i64>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let routed = Arc::new(routed);
        submit(
            &self.admits,
            batch::Write::Complete { seq, routed, reply },
            answer,
        )
    }

    /// Through the writer of new events, in submission order.
    fn resolve_failure(&self, id: i64, routed: Routed) -> StoreFuture<Vec<i64>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let routed = Arc::new(routed);
        submit(
            &self.admits,
            batch::Write::Resolve { id, routed, reply },
            answer,
        )
    }

    fn failure(&self, id: i64) -> Result<Option<FailureRecord>, StoreError> {
        self.by_id(FAILURE_COLUMNS, "plugin_failures", id, failure_row)
    }

    fn failures(&self, filter: &FailureFilter) -> Result<Vec<FailureRecord>, StoreError> {
        let select = Select::from(FAILURE_COLUMNS, "plugin_failures").matching(filter.conditions());
        let limit = filter.limit.max(1);
        self.read(|inner| async move {
            let rows = select.newest_by("id", limit, &inner).await?;
            Ok(rows.iter().map(failure_row).collect())
        })
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let select = Select::from("seq, id, session, name, received_at, body, walk", "events")
            .matching(filter.conditions());
        let limit = filter.limit.clamp(1, 10_000);
        self.read(|inner| async move {
            let rows = select.newest_by("seq", limit, &inner).await?;
            Ok(rows
                .iter()
                .map(|row| EventRecord {
                    seq: row.get(0),
                    id: row.get(1),
                    session: row.get(2),
                    name: row.get(3),
                    received_at: row.get::<_, i64>(4) as u64,
                    body: row.get(5),
                    walk: row.get(6),
                })
                .collect())
        })
    }

    fn recent_events(&self, since: u64, max: usize) -> Result<Vec<u64>, StoreError> {
        self.read(|inner| async move {
            let rows = rows(
                &inner,
                "SELECT received_at FROM events WHERE received_at >= $1 ORDER BY seq DESC LIMIT $2",
                &[&saturating_i64(since), &saturating_i64(max as u64)],
            )
            .await?;
            Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
        })
    }

    /// Events accepted but not routed by this node or a node that is no
    /// longer alive: claimed for this node, which routes them.
    fn unrouted_events(&self) -> Result<Vec<UnroutedEvent>, StoreError> {
        self.read(|inner| async move {
            let conn = inner.pool.get().await?;
            let rows = conn
                .client
                .query(
                    &format!(
                        "UPDATE events SET node = $1 WHERE NOT routed AND (node IS NULL OR node = $1 OR node NOT IN
                           (SELECT id FROM nodes WHERE heartbeat_at > {} - $2))
                         RETURNING seq, body",
                        Inner::NOW_MS
                    ),
                    &[&inner.membership.node, &inner.membership.lease_ms],
                )
                .await
                .map_err(backend)?;
            let mut events: Vec<UnroutedEvent> = rows
                .iter()
                .map(|row| UnroutedEvent {
                    seq: row.get(0),
                    body: row.get(1),
                })
                .collect();
            events.sort_by_key(|event| event.seq);
            Ok(events)
        })
    }
}

impl Outbox for PostgresStore {
    /// Through the group-commit writer of attempts (`attempts.rs`).
    fn record_attempt(&self, attempt: AttemptRecord, after: AfterAttempt) -> StoreFuture<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = attempts::Job {
            attempt,
            after,
            reply,
        };
        submit(&self.attempts, job, answer)
    }

    fn requeue(&self, ids: Vec<i64>) -> StoreFuture<u64> {
        self.write(|inner| requeue(inner, ids))
    }

    /// Only those of the partitions this node holds.
    fn pending_deliveries(
        &self,
        endpoint: &str,
        from_id: i64,
        limit: usize,
        order: bool,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let held: Vec<i32> = self
            .inner
            .membership
            .held()
            .into_iter()
            .map(|p| p as i32)
            .collect();
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let endpoint = endpoint.to_owned();
        self.read(move |inner| async move {
            let sql = if order {
                // Ids are taken at insert and committed in any order: a page
                // read as later deliveries commit can miss an earlier one of
                // the same chat, committed before them with a lower id. The
                // page brings those along (one snapshot sees both).
                PENDING_IN_ORDER
            } else {
                PENDING
            };
            let rows = rows(&inner, sql, &[&endpoint, &from_id, &held, &(limit as i64)]).await?;
            Ok(rows.iter().map(delivery_row).collect())
        })
    }

    fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
        self.by_id(DELIVERY_COLUMNS, "deliveries", id, delivery_row)
    }

    fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError> {
        let select = Select::from(DELIVERY_COLUMNS, "deliveries").matching(filter.conditions());
        let limit = filter.limit.clamp(1, 10_000);
        self.read(|inner| async move {
            let rows = select.newest_by("id", limit, &inner).await?;
            Ok(rows.iter().map(delivery_row).collect())
        })
    }

    fn attempts(&self, delivery_id: i64) -> Result<Vec<AttemptRecord>, StoreError> {
        self.read(|inner| async move {
            let rows = rows(
                &inner,
                "SELECT delivery_id, number, at, status, latency_ms, outcome, excerpt FROM attempts
                 WHERE delivery_id = $1 ORDER BY id",
                &[&delivery_id],
            )
            .await?;
            Ok(rows
                .iter()
                .map(|row| AttemptRecord {
                    delivery_id: row.get(0),
                    number: row.get::<_, i32>(1) as u32,
                    at: row.get::<_, i64>(2) as u64,
                    status: row.get::<_, Option<i32>>(3).map(|s| s as u16),
                    latency_ms: row.get(4),
                    outcome: row.get(5),
                    excerpt: row.get(6),
                })
                .collect())
        })
    }

    fn counts(&self, endpoint: &str) -> Result<Vec<(DeliveryState, u64)>, StoreError> {
        let endpoint = endpoint.to_owned();
        self.read(|inner| async move {
            let rows = rows(
                &inner,
                "SELECT state, COUNT(*) FROM deliveries WHERE endpoint = $1 GROUP BY state",
                &[&endpoint],
            )
            .await?;
            Ok(rows
                .iter()
                .map(|row| {
                    (
                        DeliveryState::parse(row.get(0)).unwrap_or(DeliveryState::Pending),
                        row.get::<_, i64>(1) as u64,
                    )
                })
                .collect())
        })
    }

    fn recent_deliveries(
        &self,
        since: u64,
        max: usize,
    ) -> Result<Vec<(u64, DeliveryState)>, StoreError> {
        self.read(|inner| async move {
            let rows = rows(
                &inner,
                "SELECT created_at, state FROM deliveries WHERE created_at >= $1 ORDER BY id DESC LIMIT $2",
                &[&saturating_i64(since), &saturating_i64(max as u64)],
            )
            .await?;
            Ok(rows
                .iter()
                .map(|row| {
                    (
                        row.get::<_, i64>(0) as u64,
                        DeliveryState::parse(row.get(1)).unwrap_or(DeliveryState::Pending),
                    )
                })
                .collect())
        })
    }
}

impl EndpointState for PostgresStore {
    fn set_endpoint_disabled(&self, endpoint: String, reason: Option<String>) -> StoreFuture<()> {
        self.write(|inner| async move {
            let now = crate::clock::now_ms() as i64;
            match reason {
                Some(reason) => {
                    execute(
                        &inner,
                        "INSERT INTO endpoint_state (endpoint, reason, updated_at) VALUES ($1, $2, $3)
                         ON CONFLICT (endpoint) DO UPDATE SET reason = excluded.reason, updated_at = excluded.updated_at",
                        &[&endpoint, &reason, &now],
                    )
                    .await
                }
                None => {
                    execute(
                        &inner,
                        "DELETE FROM endpoint_state WHERE endpoint = $1",
                        &[&endpoint],
                    )
                    .await
                }
            }
            .map(drop)
        })
    }

    fn disabled_endpoints(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|inner| {
            pairs(
                inner,
                "SELECT endpoint, reason FROM endpoint_state ORDER BY endpoint",
            )
        })
    }
}

impl SessionStore for PostgresStore {
    fn save_session(&self, name: String, record: String) -> StoreFuture<()> {
        self.write(|inner| async move {
            let now = crate::clock::now_ms() as i64;
            execute(
                &inner,
                "INSERT INTO sessions (name, record, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at",
                &[&name, &record, &now],
            )
            .await
            .map(drop)
        })
    }

    fn delete_session(&self, name: String) -> StoreFuture<bool> {
        self.write(|inner| async move {
            execute(&inner, "DELETE FROM sessions WHERE name = $1", &[&name])
                .await
                .map(|n| n > 0)
        })
    }

    fn sessions(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|inner| pairs(inner, "SELECT name, record FROM sessions ORDER BY name"))
    }
}

impl PullQueueStore for PostgresStore {
    fn peek_notifications(
        &self,
        instance: &str,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let now = crate::clock::now_ms() as i64;
        let instance = instance.to_owned();
        self.read(|inner| async move {
            let rows = rows(
                &inner,
                "SELECT receipt_id, body FROM notifications WHERE instance = $1 AND expires_at >= $2
                 ORDER BY event_seq, receipt_id LIMIT $3",
                &[&instance, &now, &(limit as i64)],
            )
            .await?;
            Ok(rows
                .iter()
                .map(|row| Notification {
                    receipt_id: row.get(0),
                    body: row.get(1),
                })
                .collect())
        })
    }

    fn delete_notification(&self, instance: String, receipt_id: i64) -> StoreFuture<bool> {
        self.write(move |inner| async move {
            execute(
                &inner,
                "DELETE FROM notifications WHERE instance = $1 AND receipt_id = $2",
                &[&instance, &receipt_id],
            )
            .await
            .map(|n| n > 0)
        })
    }

    fn queue_length(&self, instance: &str) -> Result<u64, StoreError> {
        let now = crate::clock::now_ms() as i64;
        let instance = instance.to_owned();
        self.read(|inner| async move {
            let rows = rows(
                &inner,
                "SELECT COUNT(*) FROM notifications WHERE instance = $1 AND expires_at >= $2",
                &[&instance, &now],
            )
            .await?;
            Ok(rows.first().map_or(0, |row| row.get::<_, i64>(0) as u64))
        })
    }
}

impl Store for PostgresStore {
    fn prune(&self, retention: Retention) -> StoreFuture<Pruned> {
        self.write(|inner| prune(inner, retention))
    }

    fn writable(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && self.inner.membership.healthy()
    }

    /// Finish the writes under way (up to a few seconds), give this node's
    /// partitions up so the others take them at once, and disconnect.
    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // The writers store what was submitted, then end.
        self.admits.lock().expect("admits lock").take();
        self.attempts.lock().expect("attempts lock").take();
        let writers = std::mem::take(&mut *self.writers.lock().expect("writers lock"));
        let (done, finished) = std::sync::mpsc::channel();
        self.inner.handle.spawn(async move {
            for writer in writers {
                let _ = writer.await;
            }
            let _ = done.send(());
        });
        let _ = finished.recv_timeout(Duration::from_secs(5));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.writing.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let left = self.inner.read(cluster::leave);
        if let Err(error) = left {
            tracing::warn!(%error, "could not give this node's partitions up; they pass to other nodes when the lease ends");
        }
        drop(std::mem::replace(
            &mut *self.runtime.lock().expect("store runtime lock"),
            OwnRuntime(None),
        ));
    }

    fn claims(&self) -> Option<Arc<dyn Claims>> {
        Some(self.inner.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::local::LocalServer;
    use super::*;
    use crate::store::NewDelivery;
    use crate::store::claims::{Arrival, PARTITIONS};
    use crate::store::conformance::{self, delivery, event};

    fn server() -> LocalServer {
        LocalServer::start(false).unwrap_or_else(|error| panic!("{error}"))
    }

    async fn node(url: &str, schema: &str) -> Arc<PostgresStore> {
        PostgresStore::open(PostgresSettings {
            url: url.to_owned(),
            pool: 4,
            schema: schema.to_owned(),
            lease: Duration::from_secs(3),
            heartbeat: Duration::from_millis(200),
            address: "127.0.0.1:0".into(),
        })
        .await
        .unwrap()
    }

    /// Wait (up to a minute) until `done` holds.
    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conforms() {
        let server = server();
        let url = server.url("postgres");
        let mut n = 0;
        conformance::run_all(|_| {
            n += 1;
            let schema = format!("conformance_{n}");
            let url = url.clone();
            async move {
                let store: Arc<dyn Store> = node(&url, &schema).await;
                store
            }
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_share_the_deliveries_and_fence_each_other() {
        let server = server();
        let url = server.url("postgres");
        let a = node(&url, "wasp").await;
        assert_eq!(
            a.inner.membership.held().len(),
            PARTITIONS as usize,
            "alone: all"
        );
        let b = node(&url, "wasp").await;
        let mut news = b.claims().unwrap().arrivals();
        until("the partitions are split in two", || {
            let (x, y) = (a.inner.membership.held(), b.inner.membership.held());
            x.len() == 32 && y.len() == 32 && x.iter().all(|p| !y.contains(p))
        })
        .await;

        // Deliveries of 40 chats, stored through one node.
        let chats: Vec<NewDelivery> = (0..40)
            .map(|n| NewDelivery {
                ordering_key: format!("{n}@c.us"),
                ..delivery("evt_1", "e")
            })
            .collect();
        let admitted = a
            .admit_routed(event("evt_1", None), chats.into())
            .await
            .unwrap();
        let mut all = admitted.deliveries.clone();
        all.sort();
        let mine = |store: &PostgresStore| -> Vec<i64> {
            store
                .pending_deliveries("e", 0, 100, true)
                .unwrap()
                .iter()
                .map(|d| d.id)
                .collect()
        };
        let (on_a, on_b) = (mine(&a), mine(&b));
        assert!(!on_a.is_empty() && !on_b.is_empty(), "{on_a:?} {on_b:?}");
        let mut both: Vec<i64> = on_a.iter().chain(&on_b).copied().collect();
        both.sort();
        assert_eq!(both, all, "every delivery is exactly one node's");

        // The other node heard of them, with the lowest id.
        let heard = loop {
            match tokio::time::timeout(Duration::from_secs(10), news.recv()).await {
                Ok(Ok(Arrival::Outbox { endpoint, from })) => break (endpoint, from),
                Ok(Ok(Arrival::Everything)) => continue,
                other => panic!("no news: {other:?}"),
            }
        };
        assert_eq!(heard, ("e".to_owned(), all[0]));

        // A node cannot record an attempt on the other's delivery.
        let attempt = |id| AttemptRecord {
            delivery_id: id,
            number: 1,
            at: crate::clock::now_ms(),
            status: Some(200),
            latency_ms: 1.0,
            outcome: "delivered".into(),
            excerpt: String::new(),
        };
        let refused = a
            .record_attempt(attempt(on_b[0]), AfterAttempt::Delivered)
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("not this node's"), "{refused}");
        b.record_attempt(attempt(on_b[0]), AfterAttempt::Delivered)
            .await
            .unwrap();
        assert_eq!(
            a.delivery(on_b[0]).unwrap().unwrap().state,
            DeliveryState::Delivered
        );

        // A partition taken over (a new epoch) fences its old holder.
        let partition = partition_of("s", &a.delivery(on_a[0]).unwrap().unwrap().ordering_key);
        let client = pool::connect(&url.parse().unwrap(), "wasp").await.unwrap();
        client
            .execute(
                "UPDATE partitions SET epoch = epoch + 1 WHERE partition = $1",
                &[&(partition as i32)],
            )
            .await
            .unwrap();
        let fenced = a
            .record_attempt(attempt(on_a[0]), AfterAttempt::Delivered)
            .await
            .unwrap_err();
        assert!(fenced.to_string().contains("no longer holds"), "{fenced}");
        assert_eq!(
            a.delivery(on_a[0]).unwrap().unwrap().state,
            DeliveryState::Pending,
            "nothing of the fenced attempt is written"
        );
        assert!(a.attempts(on_a[0]).unwrap().is_empty());

        // A node that leaves hands everything to the other at once.
        a.close();
        until("the other node holds everything", || {
            b.inner.membership.held().len() == PARTITIONS as usize
        })
        .await;
        let status = b.claims().unwrap().status(&["s".to_owned()]).unwrap();
        assert_eq!(status.nodes.len(), 1);
        assert_eq!(status.nodes[0].partitions, PARTITIONS);
        assert_eq!(status.nodes[0].sessions, ["s"]);
        b.close();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_same_message_through_two_nodes_is_accepted_once() {
        let server = server();
        let url = server.url("postgres");
        let (a, b) = (node(&url, "wasp").await, node(&url, "wasp").await);
        for round in 0..10 {
            let fingerprint = format!("m{round}");
            let tries = (0..8).map(|n| {
                let store = if n % 2 == 0 { a.clone() } else { b.clone() };
                let event = event(&format!("evt_{round}_{n}"), Some(&fingerprint));
                async move { store.accept(event).await.unwrap() }
            });
            let outcomes = futures_util::future::join_all(tries).await;
            let stored = outcomes
                .iter()
                .filter(|o| matches!(o, AcceptOutcome::Stored(_)))
                .count();
            assert_eq!(stored, 1, "round {round}: {outcomes:?}");
        }
        a.close();
        b.close();
    }
}
