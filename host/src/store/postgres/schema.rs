//! The PostgreSQL schema, as numbered migrations run at start. Nodes
//! starting together take an advisory lock first, so exactly one runs
//! them; `wasp_meta.schema_version` records how many have run, and a
//! database newer than this binary is refused. The same tables as the
//! SQLite store, plus what several nodes share: `nodes` (who is alive) and
//! `partitions` (who attempts which deliveries, with a fencing epoch).

use tokio_postgres::Client;

use super::pool::backend;
use crate::store::StoreError;
use crate::store::claims::PARTITIONS;

/// Migrations, in order. Never edit one that has shipped; append.
const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite store has at its version 7, and the cluster.
    "
    CREATE TABLE events (
        seq         BIGSERIAL PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        session     TEXT NOT NULL,
        name        TEXT NOT NULL,
        received_at BIGINT NOT NULL,
        body        TEXT NOT NULL,
        generation  BIGINT NOT NULL,
        routed      BOOLEAN NOT NULL DEFAULT false,
        fingerprint TEXT,
        walk        TEXT,
        node        TEXT
    );
    CREATE INDEX events_unrouted ON events (seq) WHERE NOT routed;

    -- Fingerprint dedup: the unique key makes two nodes accepting the same
    -- message at once wait for each other; the later one sees the row.
    CREATE TABLE fingerprints (
        fingerprint TEXT PRIMARY KEY,
        event_id    TEXT NOT NULL,
        seen_at     BIGINT NOT NULL
    );
    CREATE INDEX fingerprints_seen ON fingerprints (seen_at);

    CREATE TABLE deliveries (
        id               BIGSERIAL PRIMARY KEY,
        event_id         TEXT NOT NULL,
        event_name       TEXT NOT NULL,
        session          TEXT NOT NULL,
        endpoint         TEXT NOT NULL,
        ordering_key     TEXT NOT NULL,
        partition        INTEGER NOT NULL,
        headers          TEXT NOT NULL,
        attempt_headers  TEXT NOT NULL,
        body             BYTEA NOT NULL,
        state            TEXT NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        retry_base       INTEGER NOT NULL DEFAULT 0,
        created_at       BIGINT NOT NULL,
        updated_at       BIGINT NOT NULL,
        next_attempt_at  BIGINT NOT NULL,
        first_attempt_at BIGINT,
        last_status      INTEGER,
        last_error       TEXT
    );
    CREATE INDEX deliveries_pending ON deliveries (endpoint, id) WHERE state = 'pending';
    -- A page's earlier deliveries of the same chats (see pending_deliveries).
    CREATE INDEX deliveries_pending_key ON deliveries (endpoint, ordering_key, id) WHERE state = 'pending';
    CREATE INDEX deliveries_endpoint ON deliveries (endpoint, state, created_at);
    CREATE INDEX deliveries_event ON deliveries (event_id);
    CREATE INDEX deliveries_dead ON deliveries (endpoint, id) WHERE state = 'dead';

    CREATE TABLE attempts (
        id          BIGSERIAL PRIMARY KEY,
        delivery_id BIGINT NOT NULL,
        number      INTEGER NOT NULL,
        at          BIGINT NOT NULL,
        status      INTEGER,
        latency_ms  DOUBLE PRECISION NOT NULL,
        outcome     TEXT NOT NULL,
        excerpt     TEXT NOT NULL
    );
    CREATE INDEX attempts_delivery ON attempts (delivery_id);

    CREATE TABLE endpoint_state (
        endpoint   TEXT PRIMARY KEY,
        reason     TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );

    CREATE TABLE sessions (
        name       TEXT PRIMARY KEY,
        record     TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );

    CREATE TABLE notifications (
        receipt_id BIGSERIAL PRIMARY KEY,
        instance   TEXT NOT NULL,
        endpoint   TEXT NOT NULL,
        event_id   TEXT NOT NULL,
        event_seq  BIGINT NOT NULL,
        body       TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX notifications_queue ON notifications (instance, event_seq, receipt_id);
    CREATE INDEX notifications_expiry ON notifications (expires_at);

    CREATE TABLE plugin_failures (
        id         BIGSERIAL PRIMARY KEY,
        event_id   TEXT NOT NULL,
        event_name TEXT NOT NULL,
        session    TEXT NOT NULL,
        route      TEXT NOT NULL,
        plugin     TEXT NOT NULL,
        kind       TEXT NOT NULL,
        endpoint   TEXT,
        outcome    TEXT NOT NULL,
        error      TEXT NOT NULL,
        event      TEXT NOT NULL,
        state      TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        retried_at BIGINT
    );
    CREATE INDEX plugin_failures_plugin ON plugin_failures (plugin, id);

    CREATE TABLE nodes (
        id           TEXT PRIMARY KEY,
        version      TEXT NOT NULL,
        address      TEXT NOT NULL,
        started_at   BIGINT NOT NULL,
        heartbeat_at BIGINT NOT NULL
    );

    -- Who attempts which deliveries: a lease, and an epoch that grows at
    -- every change of owner and is checked on every write of an attempt.
    CREATE TABLE partitions (
        partition  INTEGER PRIMARY KEY,
        owner      TEXT,
        epoch      BIGINT NOT NULL DEFAULT 0,
        expires_at BIGINT NOT NULL DEFAULT 0
    );
    ",
];

/// The schema version this binary writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock migrations run under (any constant; "wasp" in ASCII).
const MIGRATION_LOCK: i64 = 0x7761_7370;

/// Bring the schema to [`VERSION`], creating it if needed.
pub(super) async fn migrate(client: &mut Client, schema: &str) -> Result<i64, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         SET LOCAL search_path TO \"{schema}\";
         CREATE TABLE IF NOT EXISTS wasp_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    ))
    .await
    .map_err(backend)?;
    let current: i64 = tx
        .query_opt(
            "SELECT value::bigint FROM wasp_meta WHERE key = 'schema_version'",
            &[],
        )
        .await
        .map_err(backend)?
        .map_or(0, |row| row.get(0));
    if current > VERSION {
        return Err(StoreError::Backend(format!(
            "the database has schema version {current}, newer than this wasp understands ({VERSION}); use a newer wasp"
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(migration).await.map_err(|error| {
            StoreError::Backend(format!(
                "migration {} failed: {}",
                index + 1,
                backend(error)
            ))
        })?;
    }
    tx.execute(
        "INSERT INTO partitions (partition) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING",
        &[&(PARTITIONS as i32)],
    )
    .await
    .map_err(backend)?;
    tx.execute(
        "INSERT INTO wasp_meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&VERSION.to_string()],
    )
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(VERSION)
}
