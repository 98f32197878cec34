//! The SQLite schema, as numbered migrations. `PRAGMA user_version` records
//! how many have run; opening a store runs the rest in one transaction, and
//! a database newer than this binary is refused.

use rusqlite::Connection;

/// Migrations, in order. Never edit one that has shipped; append.
const MIGRATIONS: &[&str] = &[
    // 1: events, dedup, the outbox, attempts, endpoint state.
    "
    CREATE TABLE events (
        seq         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        session     TEXT NOT NULL,
        name        TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        body        TEXT NOT NULL,
        generation  INTEGER NOT NULL,
        routed      INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX events_unrouted ON events(routed) WHERE routed = 0;
    CREATE INDEX events_received ON events(received_at);

    CREATE TABLE dedup (
        key        TEXT PRIMARY KEY,
        event_id   TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX dedup_expiry ON dedup(expires_at);

    CREATE TABLE deliveries (
        id               INTEGER PRIMARY KEY,
        event_id         TEXT NOT NULL,
        event_name       TEXT NOT NULL,
        session          TEXT NOT NULL,
        endpoint         TEXT NOT NULL,
        ordering_key     TEXT NOT NULL,
        headers          TEXT NOT NULL,
        attempt_headers  TEXT NOT NULL,
        body             BLOB NOT NULL,
        state            TEXT NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        retry_base       INTEGER NOT NULL DEFAULT 0,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        next_attempt_at  INTEGER NOT NULL,
        first_attempt_at INTEGER,
        last_status      INTEGER,
        last_error       TEXT
    );
    CREATE INDEX deliveries_pending ON deliveries(endpoint, id) WHERE state = 'pending';
    CREATE INDEX deliveries_endpoint ON deliveries(endpoint, state, created_at);
    CREATE INDEX deliveries_event ON deliveries(event_id);
    CREATE INDEX deliveries_updated ON deliveries(updated_at);

    CREATE TABLE attempts (
        id          INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL,
        number      INTEGER NOT NULL,
        at          INTEGER NOT NULL,
        status      INTEGER,
        latency_ms  REAL NOT NULL,
        outcome     TEXT NOT NULL,
        excerpt     TEXT NOT NULL
    );
    CREATE INDEX attempts_delivery ON attempts(delivery_id);
    CREATE INDEX attempts_at ON attempts(at);

    CREATE TABLE endpoint_state (
        endpoint   TEXT PRIMARY KEY,
        reason     TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 2: sessions created over the API, and the pull queue.
    "
    CREATE TABLE sessions (
        name       TEXT PRIMARY KEY,
        record     TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE notifications (
        receipt_id INTEGER PRIMARY KEY AUTOINCREMENT,
        instance   TEXT NOT NULL,
        endpoint   TEXT NOT NULL,
        event_id   TEXT NOT NULL,
        event_seq  INTEGER NOT NULL,
        body       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    -- FIFO in the order events were accepted (workers may finish them out of order).
    CREATE INDEX notifications_queue ON notifications(instance, event_seq, receipt_id);
    CREATE INDEX notifications_expiry ON notifications(expires_at);
    ",
    // 3: fewer B-trees written per event: dedup by columns of `events` (its
    // unique id, and an indexed fingerprint checked against the window)
    // instead of a separate table, and no time indexes.
    "
    ALTER TABLE events ADD COLUMN fingerprint TEXT;
    -- Not partial: a partial index makes SQLite re-prepare the lookup for every binding.
    CREATE INDEX events_fingerprint ON events(fingerprint, received_at);
    DROP TABLE dedup;
    -- Retention finds old rows by id (rows are appended in time order), so
    -- time indexes no longer cost a B-tree write per row.
    DROP INDEX events_received;
    DROP INDEX deliveries_updated;
    DROP INDEX attempts_at;
    ",
    // 4: retention keeps the newest dead letters per endpoint: a range read
    // of the few dead rows instead of a scan of every delivery.
    "
    CREATE INDEX deliveries_dead ON deliveries(endpoint, id) WHERE state = 'dead';
    ",
    // 5: fingerprints are looked up in a derived index beside the database
    // (`dedup.rs`): as an index here, random message ids dirtied a page of
    // the log for every event.
    "
    DROP INDEX events_fingerprint;
    ",
    // 6: the pipeline's dead letters: plugin calls that failed on an event
    // (`failures.rs`), with the event as it entered, to retry with.
    "
    CREATE TABLE plugin_failures (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        event_name TEXT NOT NULL,
        session TEXT NOT NULL,
        route TEXT NOT NULL,
        plugin TEXT NOT NULL,
        kind TEXT NOT NULL,
        endpoint TEXT,
        outcome TEXT NOT NULL,
        error TEXT NOT NULL,
        event TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        retried_at INTEGER
    );
    CREATE INDEX plugin_failures_plugin ON plugin_failures(plugin, id);
    ",
    // 7: each event's walk: what every route and plugin did with it
    // (`pipeline::walk`), for the dashboard's event page.
    "
    ALTER TABLE events ADD COLUMN walk TEXT;
    ",
];

/// The schema version this binary writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Bring `connection` to [`VERSION`].
pub fn migrate(connection: &mut Connection) -> Result<u32, String> {
    let current: u32 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    if current > VERSION {
        return Err(format!(
            "the database has schema version {current}, newer than this wasp understands ({VERSION}); use a newer wasp"
        ));
    }
    if current == VERSION {
        return Ok(current);
    }
    let transaction = connection.transaction().map_err(|e| e.to_string())?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        transaction
            .execute_batch(migration)
            .map_err(|e| format!("migration {} failed: {e}", index + 1))?;
    }
    transaction
        .execute_batch(&format!("PRAGMA user_version = {VERSION}"))
        .map_err(|e| e.to_string())?;
    transaction.commit().map_err(|e| e.to_string())?;
    Ok(VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_databases() {
        let mut connection = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut connection).unwrap(), VERSION);
        assert_eq!(migrate(&mut connection).unwrap(), VERSION);
        connection
            .execute_batch("PRAGMA user_version = 999")
            .unwrap();
        assert!(
            migrate(&mut connection)
                .unwrap_err()
                .contains("newer than this wasp understands")
        );
    }
}
