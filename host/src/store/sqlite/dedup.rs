//! The fingerprint index behind dedup: which fingerprints (provider message
//! id + event name) were accepted within the dedup window, and as which
//! event. It is derived data — every event row keeps its fingerprint — so it
//! lives outside the durable log: a file of its own beside the database
//! (`<db>-dedup`), written without a journal or flushes and committed about
//! once a second by the writer thread, which alone uses it.
//!
//! Why: as an index of the `events` table it was a quarter of everything the
//! write-ahead log carried. Message ids are random, so every event dirtied a
//! leaf page of its own (flushed, then copied again at checkpoint), and the
//! index grew with retention (days) instead of the dedup window (an hour).
//! Here entries live in generations of half a window each, and a generation
//! older than the window is dropped whole: no per-row pruning.
//!
//! Entries are keyed by a 64-bit hash of the fingerprint (FNV-1a: stable
//! across builds, unlike std's hasher) and point to the event's sequence
//! number; a hit is confirmed against the event row, so two fingerprints
//! with one hash never make a new event a "duplicate" (the later one
//! replaces the earlier in the index: at worst a repeat of the earlier gets
//! through, which at-least-once receivers absorb).
//!
//! Crash safety: the file is marked clean only when the writer stops. After
//! a crash (or if it does not match the database it sits beside), it is
//! emptied and rebuilt from the events accepted within the window, read
//! newest first, before the first fingerprint is looked up. Entries are
//! added only after the transaction that stored their events commits, so a
//! rolled-back event never marks later ones as duplicates; within a batch,
//! fingerprints staged in memory catch repeats.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

/// How often (at most) the index commits, ms: what it would rebuild
/// after a crash anyway, so it need not commit with every batch.
const COMMIT_EVERY_MS: u64 = 1_000;

/// The shortest time one generation covers, ms.
const MIN_GENERATION_MS: u64 = 1_000;

/// One table of entries, covering `[from_ms, to_ms]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Generation {
    number: i64,
    from_ms: u64,
    to_ms: u64,
}

impl Generation {
    fn table(&self) -> String {
        format!("fingerprints_{}", self.number)
    }
}

/// The index (see the module docs).
pub(super) struct DedupIndex {
    path: PathBuf,
    connection: Connection,
    /// Oldest first.
    generations: VecDeque<Generation>,
    /// Emptied; fill from the events table before the next lookup.
    needs_rebuild: bool,
    /// Stored in this batch, not yet committed by the main store: hash →
    /// (sequence number, accepted at).
    staged: HashMap<i64, (i64, u64)>,
    last_commit_ms: u64,
}

impl std::fmt::Debug for DedupIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupIndex")
            .field("path", &self.path)
            .field("generations", &self.generations)
            .finish_non_exhaustive()
    }
}

/// The index file that belongs to the database at `database`.
pub(super) fn index_path(database: &Path) -> PathBuf {
    database.with_file_name(format!(
        "{}-dedup",
        database.file_name().unwrap_or_default().to_string_lossy()
    ))
}

fn open_file(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    // Derived data: no journal, no flushes, one process (the writer). A
    // store closing on another thread may still hold the file a moment.
    connection.execute_batch(
        "PRAGMA busy_timeout = 5000;
         PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA cache_size = -8000;
         CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS generations (
             number  INTEGER PRIMARY KEY,
             from_ms INTEGER NOT NULL,
             to_ms   INTEGER NOT NULL
         );",
    )?;
    connection.set_prepared_statement_cache_capacity(32);
    Ok(connection)
}

fn meta(connection: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    connection
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .optional()
}

fn set_meta(connection: &Connection, key: &str, value: i64) -> rusqlite::Result<()> {
    connection
        .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![key, value])?;
    Ok(())
}

/// What an existing index file holds: usable for a database whose newest
/// event is `max_seq` only if it was closed cleanly at that point.
fn existing(
    connection: &Connection,
    max_seq: i64,
) -> rusqlite::Result<Option<VecDeque<Generation>>> {
    let clean = meta(connection, "clean")? == Some(1);
    let high_seq = meta(connection, "high_seq")?.unwrap_or(0);
    if !clean || high_seq != max_seq {
        return Ok(None);
    }
    connection
        .prepare("SELECT number, from_ms, to_ms FROM generations ORDER BY number")?
        .query_map([], |row| {
            Ok(Generation {
                number: row.get(0)?,
                from_ms: row.get::<_, i64>(1)? as u64,
                to_ms: row.get::<_, i64>(2)? as u64,
            })
        })?
        .collect::<rusqlite::Result<VecDeque<_>>>()
        .map(Some)
}

/// A new, empty index file at `path` (whatever was there goes).
fn fresh_file(path: &Path) -> Result<Connection, String> {
    let created = match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.to_string()),
        _ => open_file(path).map_err(|e| e.to_string()),
    };
    created.map_err(|e| format!("cannot create the dedup index {}: {e}", path.display()))
}

impl DedupIndex {
    /// Open the index beside `database`, whose newest event is `max_seq`.
    /// A file not closed cleanly, not matching, or unreadable starts empty
    /// and is rebuilt on first use.
    pub(super) fn open(database: &Path, max_seq: i64) -> Result<Self, String> {
        let path = index_path(database);
        let kept = open_file(&path).and_then(|connection| {
            existing(&connection, max_seq).map(|generations| generations.map(|g| (connection, g)))
        });
        let (connection, generations, needs_rebuild) = match kept {
            Ok(Some((connection, generations))) => (connection, generations, false),
            outcome => {
                if let Err(error) = outcome {
                    tracing::warn!(path = %path.display(), %error, "the dedup index is unreadable; rebuilding it");
                }
                let connection = fresh_file(&path)?;
                (connection, VecDeque::new(), true)
            }
        };
        // From here until a clean close, a crash leaves it to be rebuilt.
        set_meta(&connection, "clean", 0).map_err(|e| e.to_string())?;
        Ok(Self {
            path,
            connection,
            generations,
            needs_rebuild,
            staged: HashMap::new(),
            last_commit_ms: 0,
        })
    }

    fn begin(&mut self) -> rusqlite::Result<()> {
        if self.connection.is_autocommit() {
            self.connection.execute_batch("BEGIN")?;
        }
        Ok(())
    }

    fn commit(&mut self) -> rusqlite::Result<()> {
        if !self.connection.is_autocommit() {
            if let Some(newest) = self.generations.back() {
                self.connection
                    .prepare_cached("UPDATE generations SET to_ms = ?2 WHERE number = ?1")?
                    .execute(params![newest.number, newest.to_ms as i64])?;
            }
            self.connection.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    /// Fill an emptied index from the events accepted since `since_ms`,
    /// read through `events` (the writer's connection).
    fn rebuild(
        &mut self,
        events: &Connection,
        since_ms: u64,
        window_ms: u64,
    ) -> rusqlite::Result<()> {
        let started = std::time::Instant::now();
        let mut found: Vec<(i64, i64, u64)> = Vec::new();
        {
            let mut newest_first = events
                .prepare("SELECT seq, fingerprint, received_at FROM events ORDER BY seq DESC")?;
            let mut rows = newest_first.query([])?;
            while let Some(row) = rows.next()? {
                let at = row.get::<_, i64>(2)? as u64;
                if at < since_ms {
                    break;
                }
                if let Some(fingerprint) = row.get_ref(1)?.as_str_or_null()? {
                    found.push((fingerprint_hash(fingerprint), row.get(0)?, at));
                }
            }
        }
        // Oldest first, so the first event with a fingerprint is the one kept.
        for (hash, seq, at) in found.iter().rev() {
            if self.lookup(*hash, since_ms)?.is_none() {
                self.insert(*hash, *seq, *at, window_ms)?;
            }
        }
        self.needs_rebuild = false;
        self.commit()?;
        tracing::info!(
            entries = found.len(),
            ms = started.elapsed().as_millis() as u64,
            "rebuilt the dedup index"
        );
        Ok(())
    }

    /// The id of the event first accepted with `fingerprint` at or after
    /// `since_ms`. If the index fails, it says so in the log, answers
    /// "none" (the event is accepted: at-least-once receivers absorb a
    /// duplicate) and is rebuilt.
    pub(super) fn find(
        &mut self,
        events: &Connection,
        fingerprint: &str,
        since_ms: u64,
        now_ms: u64,
    ) -> Option<String> {
        let hash = fingerprint_hash(fingerprint);
        let result = (|| {
            let candidate = match self.staged.get(&hash) {
                Some((seq, at)) if *at >= since_ms => Some(*seq),
                _ => {
                    if self.needs_rebuild {
                        self.rebuild(events, since_ms, now_ms.saturating_sub(since_ms))?;
                    }
                    self.lookup(hash, since_ms)?
                }
            };
            let Some(seq) = candidate else {
                return Ok(None);
            };
            // The same hash is not yet the same fingerprint.
            let original: Option<(String, Option<String>)> = events
                .prepare_cached("SELECT id, fingerprint FROM events WHERE seq = ?1")?
                .query_row(params![seq], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            Ok(original
                .filter(|(_, stored)| stored.as_deref() == Some(fingerprint))
                .map(|(id, _)| id))
        })();
        result.unwrap_or_else(|error: rusqlite::Error| {
            self.failed(&error);
            None
        })
    }

    /// The sequence number indexed for `hash` at or after `since_ms`.
    fn lookup(&self, hash: i64, since_ms: u64) -> rusqlite::Result<Option<i64>> {
        for generation in self.generations.iter().rev() {
            if generation.to_ms < since_ms {
                break;
            }
            let found = self
                .connection
                .prepare_cached(&format!(
                    "SELECT seq FROM {} WHERE hash = ?1 AND at >= ?2",
                    generation.table()
                ))?
                .query_row(params![hash, since_ms as i64], |row| row.get(0))
                .optional()?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Event `seq`, stored at `at_ms` with `fingerprint`: index it once
    /// the batch commits.
    pub(super) fn stage(&mut self, fingerprint: &str, at_ms: u64, seq: i64) {
        self.staged
            .entry(fingerprint_hash(fingerprint))
            .or_insert((seq, at_ms));
    }

    /// The batch committed: index what it staged. Errors leave the index to
    /// be rebuilt (the events are safe; dedup is what degrades meanwhile).
    pub(super) fn batch_committed(&mut self, window_ms: u64, now_ms: u64) {
        let mut staged = std::mem::take(&mut self.staged);
        let result = (|| {
            for (hash, (seq, at)) in staged.drain() {
                self.insert(hash, seq, at, window_ms)?;
            }
            if now_ms >= self.last_commit_ms + COMMIT_EVERY_MS {
                self.last_commit_ms = now_ms;
                self.commit()?;
            }
            Ok::<_, rusqlite::Error>(())
        })();
        // Keep the map's capacity for the next batch.
        self.staged = staged;
        if let Err(error) = result {
            self.failed(&error);
        }
    }

    /// The batch rolled back: forget what it staged.
    pub(super) fn batch_failed(&mut self) {
        self.staged.clear();
    }

    fn insert(&mut self, hash: i64, seq: i64, at_ms: u64, window_ms: u64) -> rusqlite::Result<()> {
        self.begin()?;
        // Half a window, but not a table per millisecond for tiny windows
        // (lookups check each entry's time anyway).
        let span = (window_ms / 2).max(MIN_GENERATION_MS);
        let current = match self.generations.back_mut() {
            Some(newest) if at_ms < newest.from_ms + span => {
                newest.to_ms = newest.to_ms.max(at_ms);
                *newest
            }
            _ => {
                let generation = Generation {
                    number: self.generations.back().map_or(1, |g| g.number + 1),
                    from_ms: at_ms,
                    to_ms: at_ms,
                };
                self.connection.execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS {} (
                         hash INTEGER PRIMARY KEY,
                         seq  INTEGER NOT NULL,
                         at   INTEGER NOT NULL
                     )",
                    generation.table()
                ))?;
                self.connection
                    .prepare_cached(
                        "INSERT OR REPLACE INTO generations (number, from_ms, to_ms) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![generation.number, at_ms as i64, at_ms as i64])?;
                self.generations.push_back(generation);
                self.expire(at_ms.saturating_sub(window_ms))?;
                generation
            }
        };
        self.connection
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO {} (hash, seq, at) VALUES (?1, ?2, ?3)",
                current.table()
            ))?
            .execute(params![hash, seq, at_ms as i64])?;
        Ok(())
    }

    /// Drop generations whose newest entry is older than `cutoff_ms`.
    fn expire(&mut self, cutoff_ms: u64) -> rusqlite::Result<()> {
        while self.generations.len() > 1
            && self
                .generations
                .front()
                .is_some_and(|g| g.to_ms < cutoff_ms)
        {
            let old = self.generations.pop_front().expect("checked");
            self.connection.execute_batch(&format!(
                "DROP TABLE IF EXISTS {}; DELETE FROM generations WHERE number = {}",
                old.table(),
                old.number
            ))?;
        }
        Ok(())
    }

    fn failed(&mut self, error: &rusqlite::Error) {
        tracing::error!(path = %self.path.display(), %error, "the dedup index failed; rebuilding it");
        match fresh_file(&self.path) {
            Ok(connection) => {
                // The old connection (and its lock on the removed file) goes.
                self.connection = connection;
                self.generations.clear();
                self.needs_rebuild = true;
                let _ = set_meta(&self.connection, "clean", 0);
            }
            Err(error) => {
                tracing::error!(%error, "cannot recreate the dedup index");
                self.needs_rebuild = true;
            }
        }
    }

    /// The writer stops: commit and mark the file clean at the newest
    /// event of `events` (all committed, all indexed) — unless it still
    /// waits for a rebuild, which it then gets on the next open.
    pub(super) fn close(mut self, events: &Connection) {
        if self.needs_rebuild {
            return;
        }
        let result = self.commit().and_then(|()| {
            let max_seq: i64 =
                events.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |row| {
                    row.get(0)
                })?;
            set_meta(&self.connection, "high_seq", max_seq)?;
            set_meta(&self.connection, "clean", 1)
        });
        if let Err(error) = result {
            tracing::warn!(%error, "cannot close the dedup index cleanly; it will be rebuilt");
        }
    }
}

/// FNV-1a, 64 bits, as a signed SQLite integer.
fn fingerprint_hash(fingerprint: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in fingerprint.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: u64 = 60_000;

    /// An events table like the store's (the columns the index reads), and
    /// an index beside it.
    fn setup() -> (Connection, DedupIndex, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("wasp-dedup-test-{}", crate::event::new_event_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let database = dir.join("wasp.db");
        let events = Connection::open(&database).unwrap();
        events
            .execute_batch(
                "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, fingerprint TEXT, received_at INTEGER NOT NULL)",
            )
            .unwrap();
        let index = DedupIndex::open(&database, 0).unwrap();
        (events, index, dir)
    }

    /// Store an event and index it as the writer does: look up, store, stage.
    fn accept(events: &Connection, index: &mut DedupIndex, id: &str, fingerprint: &str, at: u64) {
        assert_eq!(
            index.find(events, fingerprint, at.saturating_sub(WINDOW), at),
            None
        );
        events
            .execute(
                "INSERT INTO events (id, fingerprint, received_at) VALUES (?1, ?2, ?3)",
                params![id, fingerprint, at as i64],
            )
            .unwrap();
        index.stage(fingerprint, at, events.last_insert_rowid());
        index.batch_committed(WINDOW, at);
    }

    #[test]
    fn finds_fingerprints_within_the_window_and_forgets_older_generations() {
        let (events, mut index, dir) = setup();
        let start = 1_000_000;
        accept(&events, &mut index, "evt_1", "m1", start);
        assert_eq!(
            index.find(&events, "m1", start - WINDOW, start),
            Some("evt_1".into())
        );
        assert_eq!(index.find(&events, "m2", start - WINDOW, start), None);
        // One window later the entry is outside it.
        let later = start + WINDOW + 1;
        assert_eq!(index.find(&events, "m1", later - WINDOW, later), None);
        // Many windows on, only the generations a window needs are kept.
        for n in 0..40u64 {
            let at = later + n * WINDOW / 4;
            accept(
                &events,
                &mut index,
                &format!("evt_n{n}"),
                &format!("n{n}"),
                at,
            );
        }
        assert!(index.generations.len() <= 3, "{:?}", index.generations);
        let tables: i64 = index
            .connection
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'fingerprints_%'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables as usize, index.generations.len());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_hash_is_confirmed_against_the_event_row() {
        let (events, mut index, dir) = setup();
        accept(&events, &mut index, "evt_1", "m1", 1_000);
        // Pretend "m2" hashes like "m1" did: its entry points at evt_1's row.
        let seq_of_m1 = index.lookup(fingerprint_hash("m1"), 0).unwrap().unwrap();
        index
            .insert(fingerprint_hash("m2"), seq_of_m1, 1_000, WINDOW)
            .unwrap();
        assert_eq!(
            index.find(&events, "m2", 0, 1_000),
            None,
            "not the same fingerprint"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_rolled_back_batch_marks_nothing() {
        let (events, mut index, dir) = setup();
        index.stage("m1", 1_000, 7);
        index.batch_failed();
        assert_eq!(index.lookup(fingerprint_hash("m1"), 0).unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
        drop(events);
    }

    #[test]
    fn reopens_when_clean_and_rebuilds_otherwise() {
        let (events, mut index, dir) = setup();
        let database = dir.join("wasp.db");
        accept(&events, &mut index, "evt_1", "m1", 1_000);
        accept(&events, &mut index, "evt_2", "m2", 1_500);
        accept(&events, &mut index, "evt_3", "m3", 2_000);
        index.close(&events);
        // Closed cleanly at the database's newest event: kept as it is.
        let mut index = DedupIndex::open(&database, 3).unwrap();
        assert!(!index.needs_rebuild);
        assert_eq!(index.find(&events, "m1", 0, 2_000), Some("evt_1".into()));
        // Not closed (a crash): rebuilt from the events.
        drop(index);
        let mut index = DedupIndex::open(&database, 3).unwrap();
        assert!(index.needs_rebuild);
        assert_eq!(index.find(&events, "m1", 0, 2_000), Some("evt_1".into()));
        assert_eq!(index.find(&events, "m2", 0, 2_000), Some("evt_2".into()));
        assert_eq!(
            index.find(&events, "m3", 1_500, 2_000),
            Some("evt_3".into())
        );
        assert_eq!(
            index.find(&events, "m1", 1_600, 2_000),
            None,
            "outside the window"
        );
        index.close(&events);
        // Closed cleanly, but at another point of the database (a backup
        // restored): rebuilt.
        assert!(DedupIndex::open(&database, 2).unwrap().needs_rebuild);
        // Emptied after a failure and closed before its rebuild: not clean.
        let mut index = DedupIndex::open(&database, 3).unwrap();
        index.failed(&rusqlite::Error::InvalidQuery);
        index.close(&events);
        assert!(DedupIndex::open(&database, 3).unwrap().needs_rebuild);
        // Not an index at all: replaced.
        std::fs::write(index_path(&database), b"not a database").unwrap();
        let mut index = DedupIndex::open(&database, 3).unwrap();
        assert_eq!(index.find(&events, "m3", 0, 2_000), Some("evt_3".into()));
        let _ = std::fs::remove_dir_all(dir);
    }
}
