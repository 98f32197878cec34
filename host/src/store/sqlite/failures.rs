//! The pipeline's dead letters in SQLite (table `plugin_failures`, schema
//! migration 6): written in the commit of the event they belong to, read
//! by the API, marked retried in the commit of what the retry made.

use rusqlite::{Connection, OptionalExtension, params};

use super::insert_deliveries;
use super::select::Select;
use crate::store::{FailureFilter, FailureRecord, FailureState, NewFailure, Routed};

/// Store `failures`.
pub(super) fn insert(tx: &Connection, failures: &[NewFailure], now: u64) -> rusqlite::Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO plugin_failures (event_id, event_name, session, route, plugin, kind, endpoint,
                                      outcome, error, event, state, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'dead', ?11)",
    )?;
    for failure in failures {
        insert.execute(params![
            failure.event_id,
            failure.event_name,
            failure.session,
            failure.route,
            failure.plugin,
            failure.kind,
            failure.endpoint,
            failure.outcome,
            failure.error,
            failure.event,
            now as i64,
        ])?;
    }
    Ok(())
}

/// Store what event `seq`'s pipeline made (deliveries, then failures).
pub(super) fn insert_routed(
    tx: &Connection,
    seq: i64,
    routed: &Routed,
    now: u64,
) -> rusqlite::Result<Vec<i64>> {
    let ids = insert_deliveries(tx, seq, &routed.deliveries, now)?;
    insert(tx, &routed.failures, now)?;
    Ok(ids)
}

/// Mark failure `id` retried and store what the retry made.
pub(super) fn resolve(
    tx: &Connection,
    id: i64,
    routed: &Routed,
    now: u64,
) -> rusqlite::Result<Vec<i64>> {
    tx.prepare_cached(
        "UPDATE plugin_failures SET state = 'retried', retried_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now as i64])?;
    // The event's sequence number only matters to pull queues' rows.
    let seq: i64 = tx
        .query_row(
            "SELECT COALESCE((SELECT seq FROM events WHERE id =
                (SELECT event_id FROM plugin_failures WHERE id = ?1)), 0)",
            params![id],
            |row| row.get(0),
        )
        .unwrap_or(0);
    if let Some(walk) = &routed.walk {
        tx.prepare_cached(
            "UPDATE events SET walk = ?2 WHERE id = (SELECT event_id FROM plugin_failures WHERE id = ?1)",
        )?
        .execute(params![id, walk])?;
    }
    insert_routed(tx, seq, routed, now)
}

/// Retried failures older than `cutoff`, and dead ones beyond the newest
/// `keep` per plugin, go.
pub(super) fn prune(tx: &Connection, cutoff: i64, keep: usize) -> rusqlite::Result<u64> {
    let retried = tx.execute(
        "DELETE FROM plugin_failures WHERE state = 'retried' AND retried_at < ?1",
        params![cutoff],
    )?;
    let dead = tx.execute(
        "DELETE FROM plugin_failures WHERE id IN (
           SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY plugin ORDER BY id DESC) AS newer
                           FROM plugin_failures WHERE state = 'dead')
           WHERE newer > ?1)",
        params![keep as i64],
    )?;
    Ok((retried + dead) as u64)
}

const COLUMNS: &str =
    "id, event_id, event_name, session, route, plugin, kind, endpoint, outcome, error,
     state, created_at, retried_at, event";

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FailureRecord> {
    Ok(FailureRecord {
        id: row.get(0)?,
        event_id: row.get(1)?,
        event_name: row.get(2)?,
        session: row.get(3)?,
        route: row.get(4)?,
        plugin: row.get(5)?,
        kind: row.get(6)?,
        endpoint: row.get(7)?,
        outcome: row.get(8)?,
        error: row.get(9)?,
        state: FailureState::parse(&row.get::<_, String>(10)?).unwrap_or(FailureState::Dead),
        created_at: row.get::<_, i64>(11)? as u64,
        retried_at: row.get::<_, Option<i64>>(12)?.map(|t| t as u64),
        event: row.get(13)?,
    })
}

/// One failure.
pub(super) fn one(connection: &Connection, id: i64) -> rusqlite::Result<Option<FailureRecord>> {
    connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM plugin_failures WHERE id = ?1"
        ))?
        .query_row(params![id], row)
        .optional()
}

/// Failures matching `filter`, newest first.
pub(super) fn list(
    connection: &Connection,
    filter: &FailureFilter,
) -> rusqlite::Result<Vec<FailureRecord>> {
    let select = Select::from(COLUMNS, "plugin_failures").matching(filter.conditions());
    select.newest(filter.limit.max(1), connection, row)
}
