//! The embedded store: SQLite (bundled, no server) in WAL mode. All writes
//! go through one writer thread that commits in groups: it takes every write
//! already queued (up to [`MAX_BATCH`]) into one transaction, so under load
//! many events share one commit, and an idle store commits each write at
//! once. Reads use their own connection, which WAL lets run beside the
//! writer.
//!
//! With `sync: full`, a commit is answered only once the log is on disk, but
//! the writer does not wait for the disk itself: it hands the batch's
//! answers to a syncer thread, which flushes the write-ahead log (one
//! `fdatasync` for every batch committed meanwhile) and then answers, while
//! the writer already runs the next batch. SQLite itself runs with
//! `synchronous = NORMAL` (it syncs the log before each checkpoint), so a
//! batch is durable exactly when its flush answers go out. Writes whose
//! loss in a power cut at-least-once delivery absorbs are answered at the
//! commit, without waiting for the flush: an accepted event's deliveries
//! (recovery routes the event again), an attempt's record (the delivery is
//! tried again), a pull-queue delete (the notification comes again). An
//! accepted event is answered twice ([`EventLog::admit`]): at the commit, so
//! its deliveries (stored in the same commit, [`EventLog::admit_routed`]) can
//! leave while the log flushes, and at the flush, when its sender may be
//! told it is accepted (an event lost in a power cut before that was never
//! acknowledged, so its sender posts it again: at least once). The log is
//! written in order, so none of them is ever on disk without what came
//! before it. A write of several statements that fails (an event stored,
//! its deliveries not), or SQLite ending a transaction itself (disk full,
//! an I/O error), rolls the whole batch back, and every write in it fails:
//! callers retry, and nothing is left half done. The database is opened through
//! [`wal_vfs`], which writes each commit's log frames in one system call
//! instead of two per page.

mod dedup;
mod failures;
mod schema;
mod select;
// The one module of the store that speaks SQLite's C interface: a VFS is a
// table of C callbacks over raw file structs.
#[allow(unsafe_code)]
mod wal_vfs;
// What the VFS shims share: a file header of theirs before the wrapped file.
#[allow(unsafe_code)]
mod vfs_shim;
// The crash-consistency torture test of `wal_vfs`: a recording VFS beneath it.
#[cfg(test)]
#[allow(unsafe_code)]
mod crash_test;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, params};

use dedup::DedupIndex;
use select::Select;
use tokio::sync::oneshot;

use super::*;

/// Most writes in one transaction.
pub const MAX_BATCH: usize = 1024;

/// How commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// fsync on every commit: survives power loss.
    Full,
    /// fsync at checkpoints: survives process crashes, not power loss.
    Normal,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write's answer, sent once the commit's fate (and durability) is known.
type Answer = Box<dyn FnOnce(Option<StoreError>) + Send>;

enum Write {
    Accept(NewEvent, Option<Routed>, Reply<Admitted>),
    Complete(i64, Routed, Reply<Vec<i64>>),
    Resolve(i64, Routed, Reply<Vec<i64>>),
    Attempt(AttemptRecord, AfterAttempt, Reply<()>),
    Requeue(Vec<i64>, Reply<u64>),
    Disable(String, Option<String>, Reply<()>),
    Prune(Retention, Reply<Pruned>),
    SaveSession(String, String, Reply<()>),
    DeleteSession(String, Reply<bool>),
    DeleteNotification(String, i64, Reply<bool>),
}

/// Read connections (see [`SqliteStore::open`]).
const READERS: usize = 2;

/// The SQLite store.
pub struct SqliteStore {
    writes: Mutex<Option<mpsc::Sender<Write>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    syncer: Mutex<Option<JoinHandle<()>>>,
    readers: Vec<Mutex<Connection>>,
    healthy: Arc<AtomicBool>,
    counters: WriteCounters,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// How the store's connections reach the disk: the registered VFS they
/// open the database through and each one's page cache. Tests change both
/// (the crash tests record beneath the VFS and shrink the cache so that
/// transactions spill).
#[derive(Debug, Clone, Copy)]
struct Backing<'a> {
    vfs: &'a str,
    cache_kib: u32,
}

impl Backing<'static> {
    /// The log's frames of a transaction reach the file in one write; 16 MB
    /// of cache per connection.
    const STANDARD: Self = Self {
        vfs: wal_vfs::NAME,
        cache_kib: 16_000,
    };
}

fn open_connection(path: &Path, backing: Backing) -> Result<Connection, StoreError> {
    let connection =
        Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), backing.vfs)
            .map_err(backend)?;
    // `synchronous = NORMAL` for both modes: with `sync: full` the syncer
    // thread flushes the log before any commit is answered.
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -{};",
            backing.cache_kib
        ))
        .map_err(backend)?;
    // Plans never depend on bound values. Without this, a statement on a
    // table with a partial index (`events` has one) can be compiled again
    // for every new binding, because the planner checks whether the bound
    // value satisfies the index's condition: the fingerprint lookup was
    // re-prepared on every event (10 % of the writer's time) until it moved
    // to the dedup index. Today's hot statements look rows up by rowid,
    // which skips the planner; this keeps whatever comes next from paying
    // it. Queries that need a partial index name its condition literally
    // (`state = 'pending'`).
    connection
        .set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(backend)?;
    Ok(connection)
}

/// How the syncer puts the log on disk.
type Flush = Box<dyn FnMut() -> std::io::Result<()> + Send>;

impl SqliteStore {
    /// Open (creating and migrating) the store at `path`.
    pub fn open(path: &Path, sync: Sync) -> Result<Arc<Self>, StoreError> {
        Self::open_with(path, sync, Backing::STANDARD, |log| {
            Box::new(move || log.sync_data())
        })
    }

    /// [`SqliteStore::open`] on `backing`, flushing the log (opened
    /// read-only, given to `flush`) as `flush` says: tests hold the flush
    /// back, fail it, or note it (the crash tests).
    fn open_with(
        path: &Path,
        sync: Sync,
        backing: Backing,
        flush: impl FnOnce(std::fs::File) -> Flush,
    ) -> Result<Arc<Self>, StoreError> {
        wal_vfs::register().map_err(StoreError::Backend)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| backend(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut writer = open_connection(path, backing)?;
        schema::migrate(&mut writer).map_err(StoreError::Backend)?;
        let max_seq: i64 = writer
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |row| {
                row.get(0)
            })
            .map_err(backend)?;
        let dedup = DedupIndex::open(path, max_seq).map_err(StoreError::Backend)?;
        // One read connection per core: readers run on the async workers
        // (short indexed queries), and WAL lets them read beside the writer.
        let readers = (0..READERS)
            .map(|_| open_connection(path, backing).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let (writes, queue) = mpsc::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let counters = WriteCounters::default();
        // The log exists once the migrations have written.
        let (durable, syncer) = match sync {
            Sync::Full => {
                let wal = path.with_file_name(format!(
                    "{}-wal",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ));
                let log = std::fs::OpenOptions::new()
                    .read(true)
                    .open(&wal)
                    .map_err(|e| backend(format!("cannot open {}: {e}", wal.display())))?;
                let (durable, flushes) = mpsc::channel::<Vec<Answer>>();
                let healthy = healthy.clone();
                let thread = std::thread::Builder::new()
                    .name("wasp-store-sync".into())
                    .spawn({
                        let flush = flush(log);
                        let flushed = counters.flushes.clone();
                        move || sync_loop(flush, flushes, healthy, flushed)
                    })
                    .map_err(backend)?;
                (Some(durable), Some(thread))
            }
            Sync::Normal => (None, None),
        };
        let thread = {
            let healthy = healthy.clone();
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("wasp-store-writer".into())
                .spawn(move || write_loop(writer, queue, durable, healthy, dedup, counters))
                .map_err(backend)?
        };
        Ok(Arc::new(Self {
            writes: Mutex::new(Some(writes)),
            writer: Mutex::new(Some(thread)),
            syncer: Mutex::new(syncer),
            readers,
            healthy,
            counters,
        }))
    }

    fn submit<T: Send + 'static>(&self, write: impl FnOnce(Reply<T>) -> Write) -> StoreFuture<T> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .writes
            .lock()
            .expect("store sender lock")
            .as_ref()
            .map(|writes| writes.send(write(reply)).is_ok())
            .unwrap_or(false);
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            answer.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn read<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        // A free connection if there is one, else wait for the first.
        let reader = self
            .readers
            .iter()
            .find_map(|reader| reader.try_lock().ok())
            .unwrap_or_else(|| self.readers[0].lock().expect("store reader lock"));
        query(&reader).map_err(backend)
    }
}

/// A gate on a store's log flushes, for tests that hold a commit's
/// durability back: while it is shut, flushes wait.
#[cfg(test)]
pub(crate) struct FlushGate(Arc<(Mutex<bool>, std::sync::Condvar)>);

#[cfg(test)]
impl FlushGate {
    /// A `sync: full` store at `path` whose flushes wait at the returned
    /// gate, shut to begin with.
    pub(crate) fn open(path: &Path) -> (Arc<SqliteStore>, FlushGate) {
        let gate = Arc::new((Mutex::new(true), std::sync::Condvar::new()));
        let store = SqliteStore::open_with(path, Sync::Full, Backing::STANDARD, {
            let gate = gate.clone();
            move |log| {
                Box::new(move || {
                    let (closed, opened) = &*gate;
                    drop(opened.wait_while(closed.lock().unwrap(), |closed| *closed));
                    log.sync_data()
                })
            }
        })
        .expect("a store opens in a fresh directory");
        (store, FlushGate(gate))
    }

    /// Shut the gate (flushes wait) or open it (they go on).
    pub(crate) fn shut(&self, closed: bool) {
        *self.0.0.lock().unwrap() = closed;
        self.0.1.notify_all();
    }
}

/// The writer thread: group writes into transactions until the channel
/// closes. Answers go out after the commit, or (`durable`) through the
/// syncer once the log is flushed.
fn write_loop(
    mut connection: Connection,
    queue: mpsc::Receiver<Write>,
    durable: Option<mpsc::Sender<Vec<Answer>>>,
    healthy: Arc<AtomicBool>,
    dedup: DedupIndex,
    counters: WriteCounters,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut state = WriterState {
        attempts_cap: None,
        dedup,
        dedup_window_ms: 0,
        failed: None,
    };
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let now = crate::clock::now_ms();
        match connection.transaction() {
            Ok(transaction) => {
                let mut answers = Answers {
                    at_commit: Vec::with_capacity(batch.len()),
                    at_flush: Vec::with_capacity(batch.len()),
                };
                // A write failing halfway, or SQLite ending the transaction
                // itself (disk full, an I/O error), fails the whole batch:
                // the writes after it are not run, lest each commit alone.
                let mut storage_failed = false;
                let writes = batch.len() as u64;
                for write in batch.drain(..) {
                    if let Some(error) = &state.failed {
                        fail(write, error.clone());
                        continue;
                    }
                    apply(&transaction, write, now, &mut state, &mut answers);
                    if transaction.is_autocommit() {
                        storage_failed = true;
                        state.failed.get_or_insert_with(|| {
                            backend("SQLite rolled the transaction back after an error")
                        });
                    }
                }
                let Answers {
                    at_commit: acks,
                    at_flush: answers,
                } = answers;
                let committed = match state.failed.take() {
                    Some(error) => {
                        // Fails harmlessly when SQLite has rolled back already.
                        let _ = transaction.rollback();
                        Err((error, storage_failed))
                    }
                    None => transaction.commit().map_err(|e| (backend(e), true)),
                };
                match committed {
                    Ok(()) => {
                        counters.commits.inc();
                        counters.writes.inc_by(writes);
                        state.dedup.batch_committed(state.dedup_window_ms, now);
                        answer_all(acks, None);
                        match &durable {
                            // The syncer says whether the store is healthy:
                            // a commit is not durable until it has flushed.
                            Some(syncer) => {
                                if !answers.is_empty()
                                    && let Err(unsent) = syncer.send(answers)
                                {
                                    answer_all(unsent.0, Some(StoreError::Closed));
                                }
                            }
                            None => {
                                healthy.store(true, Ordering::Relaxed);
                                answer_all(answers, None);
                            }
                        }
                    }
                    Err((error, storage_failed)) => {
                        state.dedup.batch_failed();
                        if storage_failed {
                            healthy.store(false, Ordering::Relaxed);
                            tracing::error!(%error, "store commit failed");
                        } else {
                            tracing::error!(%error, "a write failed halfway: its batch is rolled back");
                        }
                        answer_all(acks, Some(error.clone()));
                        answer_all(answers, Some(error));
                    }
                }
            }
            Err(error) => {
                healthy.store(false, Ordering::Relaxed);
                tracing::error!(%error, "store cannot begin a transaction");
                for write in batch.drain(..) {
                    fail(write, backend(&error));
                }
            }
        }
    }
    state.dedup.close(&connection);
}

fn answer_all(answers: Vec<Answer>, error: Option<StoreError>) {
    for answer in answers {
        answer(error.clone());
    }
}

/// The syncer thread: flush the log once for every group of committed
/// batches waiting, then answer them.
fn sync_loop(
    mut flush: Flush,
    flushes: mpsc::Receiver<Vec<Answer>>,
    healthy: Arc<AtomicBool>,
    flushed: prometheus_client::metrics::counter::Counter,
) {
    while let Ok(first) = flushes.recv() {
        let mut waiting = vec![first];
        while let Ok(more) = flushes.try_recv() {
            waiting.push(more);
        }
        let error = flush().err().map(|e| {
            tracing::error!(error = %e, "cannot flush the store's write-ahead log");
            backend(format!("the write-ahead log cannot be flushed: {e}"))
        });
        healthy.store(error.is_none(), Ordering::Relaxed);
        if error.is_none() {
            flushed.inc();
        }
        for answers in waiting {
            answer_all(answers, error.clone());
        }
    }
}

/// What the writer keeps from one batch to the next.
struct WriterState {
    /// Attempts kept per delivery: learnt from the retention limits that
    /// every prune brings (the first runs at startup), applied per insert.
    attempts_cap: Option<usize>,
    /// Fingerprints seen within the dedup window.
    dedup: DedupIndex,
    /// The dedup window of the latest event accepted, ms.
    dedup_window_ms: u64,
    /// A write of this batch failed halfway, or SQLite ended the
    /// transaction: the batch is rolled back, and every write in it fails
    /// with this error.
    failed: Option<StoreError>,
}

impl WriterState {
    /// A write failed with some of its statements done: the batch is rolled
    /// back. Returns `error`, the write's own answer.
    fn fail_batch(&mut self, error: StoreError) -> StoreError {
        self.failed.get_or_insert_with(|| error.clone());
        error
    }
}

/// A batch's answers, by when they may go out: at the commit, or once the
/// commit is on disk (the same moment without `sync: full`).
struct Answers {
    at_commit: Vec<Answer>,
    at_flush: Vec<Answer>,
}

/// Run one write inside the batch's transaction, and leave its answer with
/// the others that go out at the same moment (see the module docs): writes
/// whose loss in a power cut at-least-once delivery absorbs are answered at
/// the commit; an accepted event is answered twice, at the commit (so its
/// deliveries can leave) and at the flush (so its sender hears it is
/// accepted); everything else at the flush. A write of several statements
/// that fails marks the batch failed ([`WriterState::fail_batch`]).
fn apply(tx: &Connection, write: Write, now: u64, state: &mut WriterState, answers: &mut Answers) {
    fn deferred<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Answer {
        Box::new(move |commit_error| {
            let _ = reply.send(match commit_error {
                Some(error) => Err(error),
                None => result,
            });
        })
    }
    let (at_commit, answer) = match write {
        Write::Accept(event, routed, reply) => {
            let admitted = match accept(tx, &event, routed.as_ref(), now, state) {
                Ok((outcome, deliveries)) => {
                    let (flushed, durable) = oneshot::channel();
                    answers.at_flush.push(deferred(flushed, Ok(())));
                    Ok(Admitted {
                        outcome,
                        deliveries,
                        durable: Box::pin(async move {
                            durable.await.unwrap_or(Err(StoreError::Closed))
                        }),
                    })
                }
                Err(Unfinished::Nothing(error)) => Err(backend(error)),
                // The event is in the transaction without (all of) its deliveries.
                Err(Unfinished::Half(error)) => Err(state.fail_batch(backend(error))),
            };
            (true, deferred(reply, admitted))
        }
        // Several statements each: a failure may leave some of them done.
        Write::Complete(seq, routed, reply) => {
            let ids = complete(tx, seq, &routed, now).map_err(|e| state.fail_batch(backend(e)));
            (true, deferred(reply, ids))
        }
        Write::Resolve(id, routed, reply) => {
            let ids =
                failures::resolve(tx, id, &routed, now).map_err(|e| state.fail_batch(backend(e)));
            (true, deferred(reply, ids))
        }
        Write::Attempt(attempt, after, reply) => {
            let recorded = record_attempt(tx, &attempt, after, now, state.attempts_cap)
                .map_err(|e| state.fail_batch(backend(e)));
            (true, deferred(reply, recorded))
        }
        Write::Requeue(ids, reply) => (
            false,
            deferred(reply, requeue(tx, &ids, now).map_err(backend)),
        ),
        Write::Disable(endpoint, reason, reply) => (
            false,
            deferred(
                reply,
                disable(tx, &endpoint, reason.as_deref(), now).map_err(backend),
            ),
        ),
        Write::Prune(retention, reply) => {
            state.attempts_cap = Some(retention.attempts_per_delivery);
            (
                false,
                deferred(reply, prune(tx, retention, now).map_err(backend)),
            )
        }
        Write::SaveSession(name, record, reply) => (
            false,
            deferred(
                reply,
                save_session(tx, &name, &record, now).map_err(backend),
            ),
        ),
        Write::DeleteSession(name, reply) => (
            false,
            deferred(
                reply,
                tx.execute("DELETE FROM sessions WHERE name = ?1", params![name])
                    .map(|n| n > 0)
                    .map_err(backend),
            ),
        ),
        Write::DeleteNotification(instance, receipt_id, reply) => (
            true,
            deferred(
                reply,
                tx.prepare_cached(
                    "DELETE FROM notifications WHERE instance = ?1 AND receipt_id = ?2",
                )
                .and_then(|mut delete| delete.execute(params![instance, receipt_id]))
                .map(|n| n > 0)
                .map_err(backend),
            ),
        ),
    };
    if at_commit {
        answers.at_commit.push(answer);
    } else {
        answers.at_flush.push(answer);
    }
}

fn save_session(tx: &Connection, name: &str, record: &str, now: u64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO sessions (name, record, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at",
    )?
    .execute(params![name, record, now as i64])?;
    Ok(())
}

fn fail(write: Write, error: StoreError) {
    match write {
        Write::Accept(_, _, reply) => drop(reply.send(Err(error))),
        Write::Complete(_, _, reply) => drop(reply.send(Err(error))),
        Write::Resolve(_, _, reply) => drop(reply.send(Err(error))),
        Write::Attempt(_, _, reply) => drop(reply.send(Err(error))),
        Write::Requeue(_, reply) => drop(reply.send(Err(error))),
        Write::Disable(_, _, reply) => drop(reply.send(Err(error))),
        Write::Prune(_, reply) => drop(reply.send(Err(error))),
        Write::SaveSession(_, _, reply) => drop(reply.send(Err(error))),
        Write::DeleteSession(_, reply) => drop(reply.send(Err(error))),
        Write::DeleteNotification(_, _, reply) => drop(reply.send(Err(error))),
    }
}

const INSERT_EVENT: &str =
    "INSERT INTO events (id, session, name, received_at, body, generation, fingerprint, routed, walk)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(id) DO NOTHING";

const MARK_ROUTED: &str = "UPDATE events SET routed = 1, walk = COALESCE(?2, walk) WHERE seq = ?1";

/// Why storing an event failed, and what it left in the transaction.
enum Unfinished {
    /// Nothing: the event is not in it.
    Nothing(rusqlite::Error),
    /// The event, without (all of) the deliveries it was stored with.
    Half(rusqlite::Error),
}

/// Store `event`, and with it (`routed`) its deliveries: its outcome and
/// the deliveries' ids.
fn accept(
    tx: &Connection,
    event: &NewEvent,
    routed: Option<&Routed>,
    now: u64,
    state: &mut WriterState,
) -> Result<(AcceptOutcome, Vec<i64>), Unfinished> {
    let outcome = insert_event(tx, event, routed, now, state).map_err(Unfinished::Nothing)?;
    let (AcceptOutcome::Stored(seq), Some(routed)) = (&outcome, routed) else {
        return Ok((outcome, Vec::new()));
    };
    let ids = failures::insert_routed(tx, *seq, routed, now).map_err(Unfinished::Half)?;
    Ok((outcome, ids))
}

fn insert_event(
    tx: &Connection,
    event: &NewEvent,
    routed: Option<&Routed>,
    now: u64,
    state: &mut WriterState,
) -> rusqlite::Result<AcceptOutcome> {
    // A window of zero turns fingerprint dedup off.
    let fingerprint = event
        .fingerprint
        .as_deref()
        .filter(|_| event.dedup_window_ms > 0);
    if let Some(fingerprint) = fingerprint {
        state.dedup_window_ms = event.dedup_window_ms;
        let since = now.saturating_sub(event.dedup_window_ms);
        if let Some(original) = state.dedup.find(tx, fingerprint, since, now) {
            return same_as_stored(tx, &original, &event.body).map(|same| {
                if same {
                    AcceptOutcome::Duplicate(original)
                } else {
                    AcceptOutcome::Conflict(original)
                }
            });
        }
    }
    // The id is unique: an event posted again is the same event.
    let inserted = tx.prepare_cached(INSERT_EVENT)?.execute(params![
        event.id,
        event.session,
        event.name,
        now as i64,
        event.body,
        event.generation as i64,
        event.fingerprint,
        routed.is_some(),
        routed.and_then(|routed| routed.walk.as_deref()),
    ])?;
    if inserted == 0 {
        return same_as_stored(tx, &event.id, &event.body).map(|same| {
            if same {
                AcceptOutcome::Duplicate(event.id.clone())
            } else {
                AcceptOutcome::Conflict(event.id.clone())
            }
        });
    }
    let seq = tx.last_insert_rowid();
    if let Some(fingerprint) = fingerprint {
        state.dedup.stage(fingerprint, now, seq);
    }
    Ok(AcceptOutcome::Stored(seq))
}

/// Whether `body` repeats the stored event `id`: the same `event` and
/// `payload` (both canonical JSON). One pruned since counts as the same.
fn same_as_stored(tx: &Connection, id: &str, body: &str) -> rusqlite::Result<bool> {
    let stored: Option<String> = tx
        .prepare_cached("SELECT body FROM events WHERE id = ?1")?
        .query_row(params![id], |row| row.get(0))
        .optional()?;
    Ok(stored.is_none_or(|stored| same_event(&stored, body)))
}

fn complete(tx: &Connection, seq: i64, routed: &Routed, now: u64) -> rusqlite::Result<Vec<i64>> {
    let ids = failures::insert_routed(tx, seq, routed, now)?;
    tx.prepare_cached(MARK_ROUTED)?
        .execute(params![seq, routed.walk.as_deref()])?;
    Ok(ids)
}

/// Add event `seq`'s deliveries to the outbox (pull endpoints: to their
/// queues): their ids, in order.
fn insert_deliveries(
    tx: &Connection,
    seq: i64,
    deliveries: &[NewDelivery],
    now: u64,
) -> rusqlite::Result<Vec<i64>> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (event_id, event_name, session, endpoint, ordering_key, headers, attempt_headers, body,
                                 state, created_at, updated_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?9, ?9)",
    )?;
    let mut ids = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        if let Some((instance, keep_ms)) = &delivery.queue {
            tx.prepare_cached(
                "INSERT INTO notifications (instance, endpoint, event_id, event_seq, body, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                instance,
                delivery.endpoint,
                delivery.event_id,
                seq,
                String::from_utf8_lossy(&delivery.body),
                now as i64,
                (now + keep_ms) as i64,
            ])?;
            ids.push(tx.last_insert_rowid());
            continue;
        }
        let headers = serde_json::to_string(&delivery.headers).expect("headers serialize");
        insert.execute(params![
            delivery.event_id,
            delivery.event_name,
            delivery.session,
            delivery.endpoint,
            delivery.ordering_key,
            headers,
            delivery.attempt_headers,
            delivery.body,
            now as i64,
        ])?;
        ids.push(tx.last_insert_rowid());
    }
    Ok(ids)
}

fn record_attempt(
    tx: &Connection,
    attempt: &AttemptRecord,
    after: AfterAttempt,
    now: u64,
    cap: Option<usize>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO attempts (delivery_id, number, at, status, latency_ms, outcome, excerpt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        attempt.delivery_id,
        attempt.number,
        attempt.at as i64,
        attempt.status,
        attempt.latency_ms,
        attempt.outcome,
        attempt.excerpt,
    ])?;
    let (state, next) = match after {
        AfterAttempt::Delivered => (DeliveryState::Delivered, 0),
        AfterAttempt::RetryAt(at) => (DeliveryState::Pending, at),
        AfterAttempt::Failed => (DeliveryState::Failed, 0),
        AfterAttempt::Dead => (DeliveryState::Dead, 0),
    };
    let error = (after != AfterAttempt::Delivered).then_some(&attempt.excerpt);
    let attempts: Option<i64> = tx
        .prepare_cached(
            "UPDATE deliveries SET state = ?2, attempts = attempts + 1, next_attempt_at = ?3, updated_at = ?4,
                first_attempt_at = COALESCE(first_attempt_at, ?5), last_status = ?6, last_error = ?7
             WHERE id = ?1 RETURNING attempts",
        )?
        .query_row(params![attempt.delivery_id, state.as_str(), next as i64, now as i64, attempt.at as i64, attempt.status, error], |row| row.get(0))
        .optional()?;
    // Past the cap, drop this delivery's oldest attempts (an index range,
    // not a scan of every attempt at prune time).
    if let (Some(attempts), Some(cap)) = (attempts, cap)
        && attempts > cap as i64
    {
        tx.prepare_cached(
            "DELETE FROM attempts WHERE delivery_id = ?1 AND id <=
               (SELECT id FROM attempts WHERE delivery_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )?
        .execute(params![attempt.delivery_id, cap as i64])?;
    }
    Ok(())
}

fn requeue(tx: &Connection, ids: &[i64], now: u64) -> rusqlite::Result<u64> {
    let mut update = tx.prepare_cached(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = ?2, updated_at = ?2, retry_base = attempts,
                first_attempt_at = NULL
         WHERE id = ?1",
    )?;
    let mut changed = 0;
    for id in ids {
        changed += update.execute(params![id, now as i64])? as u64;
    }
    Ok(changed)
}

fn disable(
    tx: &Connection,
    endpoint: &str,
    reason: Option<&str>,
    now: u64,
) -> rusqlite::Result<()> {
    match reason {
        Some(reason) => tx
            .prepare_cached("INSERT OR REPLACE INTO endpoint_state (endpoint, reason, updated_at) VALUES (?1, ?2, ?3)")?
            .execute(params![endpoint, reason, now as i64])?,
        None => tx.prepare_cached("DELETE FROM endpoint_state WHERE endpoint = ?1")?.execute(params![endpoint])?,
    };
    Ok(())
}

/// The first id of `table` whose `column` is at or after `cutoff`: rows
/// are appended in time order, so everything below it is older. Scans only
/// the old rows (in id order, stopping at the first recent one).
fn first_id_since(
    tx: &Connection,
    table: &str,
    id: &str,
    column: &str,
    cutoff: i64,
) -> rusqlite::Result<i64> {
    tx.query_row(
        &format!(
            "SELECT COALESCE((SELECT {id} FROM {table} WHERE {column} >= ?1 ORDER BY {id} LIMIT 1),
                             (SELECT COALESCE(MAX({id}), 0) + 1 FROM {table}))"
        ),
        params![cutoff],
        |row| row.get(0),
    )
}

fn prune(tx: &Connection, retention: Retention, now: u64) -> rusqlite::Result<Pruned> {
    let cutoff = now.saturating_sub(retention.max_age_ms) as i64;
    let boundary = first_id_since(tx, "attempts", "id", "at", cutoff)?;
    // Attempts per delivery are capped as they are recorded; here, by age.
    let mut attempts = tx.execute("DELETE FROM attempts WHERE id < ?1", params![boundary])? as u64;
    let boundary = first_id_since(tx, "deliveries", "id", "created_at", cutoff)?;
    // Old settled deliveries and dead letters beyond the cap go, with
    // their attempts (through the attempts' delivery index).
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS pruned_deliveries (id INTEGER PRIMARY KEY);
         DELETE FROM temp.pruned_deliveries;",
    )?;
    tx.execute(
        "INSERT INTO temp.pruned_deliveries
           SELECT id FROM deliveries WHERE id < ?1 AND state IN ('delivered', 'failed')",
        params![boundary],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO temp.pruned_deliveries
           SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY endpoint ORDER BY id DESC) AS newer
                           FROM deliveries INDEXED BY deliveries_dead WHERE state = 'dead')
           WHERE newer > ?1",
        params![retention.dead_letters_per_endpoint as i64],
    )?;
    attempts += tx.execute(
        "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM temp.pruned_deliveries)",
        [],
    )? as u64;
    let deliveries = tx.execute(
        "DELETE FROM deliveries WHERE id IN (SELECT id FROM temp.pruned_deliveries)",
        [],
    )? as u64;
    let boundary = first_id_since(tx, "events", "seq", "received_at", cutoff)?;
    let events = tx.execute(
        "DELETE FROM events WHERE seq < ?1 AND routed = 1
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.state = 'pending')",
        params![boundary],
    )? as u64;
    let notifications = tx.execute(
        "DELETE FROM notifications WHERE expires_at < ?1",
        params![now as i64],
    )? as u64;
    let failures = failures::prune(tx, cutoff, retention.dead_letters_per_endpoint)?;
    Ok(Pruned {
        events,
        deliveries,
        attempts,
        notifications,
        failures,
    })
}

const DELIVERY_COLUMNS: &str = "id, event_id, event_name, session, endpoint, ordering_key, state, attempts - retry_base,
     created_at, next_attempt_at, first_attempt_at, last_status, last_error, headers, attempt_headers, body";

fn delivery_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    let headers: String = row.get(13)?;
    Ok(DeliveryRecord {
        id: row.get(0)?,
        event_id: row.get(1)?,
        event_name: row.get(2)?,
        session: row.get(3)?,
        endpoint: row.get(4)?,
        ordering_key: row.get(5)?,
        state: DeliveryState::parse(&row.get::<_, String>(6)?).unwrap_or(DeliveryState::Pending),
        attempts: row.get::<_, i64>(7)? as u32,
        created_at: row.get::<_, i64>(8)? as u64,
        next_attempt_at: row.get::<_, i64>(9)? as u64,
        first_attempt_at: row.get::<_, Option<i64>>(10)?.map(|t| t as u64),
        last_status: row.get::<_, Option<i64>>(11)?.map(|s| s as u16),
        last_error: row.get(12)?,
        headers: serde_json::from_str(&headers).unwrap_or_default(),
        attempt_headers: row.get(14)?,
        body: row.get(15)?,
    })
}

impl EventLog for SqliteStore {
    fn admit_with(&self, event: NewEvent, routed: Option<Routed>) -> StoreFuture<Admitted> {
        self.submit(|reply| Write::Accept(event, routed, reply))
    }

    fn complete(&self, seq: i64, routed: Routed) -> StoreFuture<Vec<i64>> {
        self.submit(|reply| Write::Complete(seq, routed, reply))
    }

    fn resolve_failure(&self, id: i64, routed: Routed) -> StoreFuture<Vec<i64>> {
        self.submit(|reply| Write::Resolve(id, routed, reply))
    }

    fn failure(&self, id: i64) -> Result<Option<FailureRecord>, StoreError> {
        self.read(|connection| failures::one(connection, id))
    }

    fn failures(&self, filter: &FailureFilter) -> Result<Vec<FailureRecord>, StoreError> {
        self.read(|connection| failures::list(connection, filter))
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let select = Select::from("seq, id, session, name, received_at, body, walk", "events")
            .matching(filter.conditions());
        let limit = filter.limit.clamp(1, 10_000);
        self.read(|c| {
            select.newest_by("seq", limit, c, |row| {
                Ok(EventRecord {
                    seq: row.get(0)?,
                    id: row.get(1)?,
                    session: row.get(2)?,
                    name: row.get(3)?,
                    received_at: row.get::<_, i64>(4)? as u64,
                    body: row.get(5)?,
                    walk: row.get(6)?,
                })
            })
        })
    }

    fn recent_events(&self, since: u64, max: usize) -> Result<Vec<u64>, StoreError> {
        self.read(|c| {
            let mut statement =
                c.prepare_cached("SELECT received_at FROM events ORDER BY seq DESC")?;
            let mut rows = statement.query([])?;
            let mut recent = Vec::new();
            while recent.len() < max
                && let Some(row) = rows.next()?
            {
                let received_at = row.get::<_, i64>(0)? as u64;
                if received_at < since {
                    break;
                }
                recent.push(received_at);
            }
            Ok(recent)
        })
    }

    fn unrouted_events(&self) -> Result<Vec<UnroutedEvent>, StoreError> {
        self.read(|c| {
            c.prepare("SELECT seq, body FROM events WHERE routed = 0 ORDER BY seq")?
                .query_map([], |row| {
                    Ok(UnroutedEvent {
                        seq: row.get(0)?,
                        body: row.get(1)?,
                    })
                })?
                .collect()
        })
    }
}

impl Outbox for SqliteStore {
    fn record_attempt(&self, attempt: AttemptRecord, after: AfterAttempt) -> StoreFuture<()> {
        self.submit(|reply| Write::Attempt(attempt, after, reply))
    }

    fn requeue(&self, ids: Vec<i64>) -> StoreFuture<u64> {
        self.submit(|reply| Write::Requeue(ids, reply))
    }

    /// One writer commits ids in order: `order` needs nothing more.
    fn pending_deliveries(
        &self,
        endpoint: &str,
        from_id: i64,
        limit: usize,
        _order: bool,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE endpoint = ?1 AND state = 'pending' AND id >= ?2 ORDER BY id LIMIT ?3"
            ))?
            .query_map(params![endpoint, from_id, limit as i64], delivery_row)?
            .collect()
        })
    }

    fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"
            ))?
            .query_row(params![id], delivery_row)
            .optional()
        })
    }

    fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError> {
        let select = Select::from(DELIVERY_COLUMNS, "deliveries").matching(filter.conditions());
        let limit = filter.limit.clamp(1, 10_000);
        self.read(|c| select.newest(limit, c, delivery_row))
    }

    fn attempts(&self, delivery_id: i64) -> Result<Vec<AttemptRecord>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT delivery_id, number, at, status, latency_ms, outcome, excerpt FROM attempts WHERE delivery_id = ?1 ORDER BY id",
            )?
            .query_map(params![delivery_id], |row| {
                Ok(AttemptRecord {
                    delivery_id: row.get(0)?,
                    number: row.get::<_, i64>(1)? as u32,
                    at: row.get::<_, i64>(2)? as u64,
                    status: row.get::<_, Option<i64>>(3)?.map(|s| s as u16),
                    latency_ms: row.get(4)?,
                    outcome: row.get(5)?,
                    excerpt: row.get(6)?,
                })
            })?
            .collect()
        })
    }

    fn counts(&self, endpoint: &str) -> Result<Vec<(DeliveryState, u64)>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT state, COUNT(*) FROM deliveries WHERE endpoint = ?1 GROUP BY state",
            )?
            .query_map(params![endpoint], |row| {
                let state: String = row.get(0)?;
                Ok((
                    DeliveryState::parse(&state).unwrap_or(DeliveryState::Pending),
                    row.get::<_, i64>(1)? as u64,
                ))
            })?
            .collect()
        })
    }

    fn recent_deliveries(
        &self,
        since: u64,
        max: usize,
    ) -> Result<Vec<(u64, DeliveryState)>, StoreError> {
        self.read(|c| {
            let mut statement =
                c.prepare_cached("SELECT created_at, state FROM deliveries ORDER BY id DESC")?;
            let mut rows = statement.query([])?;
            let mut recent = Vec::new();
            while recent.len() < max
                && let Some(row) = rows.next()?
            {
                let created_at = row.get::<_, i64>(0)? as u64;
                if created_at < since {
                    break;
                }
                let state: String = row.get(1)?;
                recent.push((
                    created_at,
                    DeliveryState::parse(&state).unwrap_or(DeliveryState::Pending),
                ));
            }
            Ok(recent)
        })
    }
}

impl EndpointState for SqliteStore {
    fn set_endpoint_disabled(&self, endpoint: String, reason: Option<String>) -> StoreFuture<()> {
        self.submit(|reply| Write::Disable(endpoint, reason, reply))
    }

    fn disabled_endpoints(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|c| {
            c.prepare("SELECT endpoint, reason FROM endpoint_state ORDER BY endpoint")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
    }
}

impl SessionStore for SqliteStore {
    fn save_session(&self, name: String, record: String) -> StoreFuture<()> {
        self.submit(|reply| Write::SaveSession(name, record, reply))
    }

    fn delete_session(&self, name: String) -> StoreFuture<bool> {
        self.submit(|reply| Write::DeleteSession(name, reply))
    }

    fn sessions(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|c| {
            c.prepare("SELECT name, record FROM sessions ORDER BY name")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
    }
}

impl PullQueueStore for SqliteStore {
    fn peek_notifications(
        &self,
        instance: &str,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let now = crate::clock::now_ms() as i64;
        self.read(|c| {
            c.prepare_cached(
                "SELECT receipt_id, body FROM notifications WHERE instance = ?1 AND expires_at >= ?2 ORDER BY event_seq, receipt_id LIMIT ?3",
            )?
            .query_map(params![instance, now, limit as i64], |row| {
                Ok(Notification {
                    receipt_id: row.get(0)?,
                    body: row.get(1)?,
                })
            })?
            .collect()
        })
    }

    fn delete_notification(&self, instance: String, receipt_id: i64) -> StoreFuture<bool> {
        self.submit(|reply| Write::DeleteNotification(instance, receipt_id, reply))
    }

    fn queue_length(&self, instance: &str) -> Result<u64, StoreError> {
        let now = crate::clock::now_ms() as i64;
        self.read(|c| {
            c.prepare_cached(
                "SELECT COUNT(*) FROM notifications WHERE instance = ?1 AND expires_at >= ?2",
            )?
            .query_row(params![instance, now], |row| row.get::<_, i64>(0))
            .map(|n| n as u64)
        })
    }
}

impl Store for SqliteStore {
    fn prune(&self, retention: Retention) -> StoreFuture<Pruned> {
        self.submit(|reply| Write::Prune(retention, reply))
    }

    fn write_counters(&self) -> Option<WriteCounters> {
        Some(self.counters.clone())
    }

    fn writable(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
            && self.writes.lock().expect("store sender lock").is_some()
    }

    fn close(&self) {
        self.writes.lock().expect("store sender lock").take();
        if let Some(writer) = self.writer.lock().expect("store writer lock").take() {
            let _ = writer.join();
        }
        // The writer is gone, and with it the syncer's queue: it answers the
        // last batches and ends.
        if let Some(syncer) = self.syncer.lock().expect("store syncer lock").take() {
            let _ = syncer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{self, deliveries_of, delivery, event};

    #[tokio::test]
    async fn conforms() {
        let mut dirs = Vec::new();
        conformance::run_all(|_| {
            let (store, dir) = store();
            dirs.push(dir);
            let store: Arc<dyn Store> = store;
            std::future::ready(store)
        })
        .await;
        for dir in dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    fn store() -> (Arc<SqliteStore>, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("wasp-store-test-{}", crate::event::new_event_id()));
        (
            SqliteStore::open(&dir.join("wasp.db"), Sync::Normal).unwrap(),
            dir,
        )
    }

    #[tokio::test]
    async fn an_event_is_admitted_at_its_commit_and_accepted_once_on_disk() {
        let dir =
            std::env::temp_dir().join(format!("wasp-store-test-{}", crate::event::new_event_id()));
        let (store, gate) = FlushGate::open(&dir.join("wasp.db"));
        let shut = |closed: bool| gate.shut(closed);
        let pending = std::time::Duration::from_millis(100);
        let wait = std::time::Duration::from_secs(10);

        // The flush is held back: the commit's answer comes, its durability does not.
        let first = tokio::time::timeout(wait, store.admit(event("evt_1", None)))
            .await
            .expect("admitted at the commit, before the flush")
            .unwrap();
        let AcceptOutcome::Stored(seq) = first.outcome else {
            panic!("stored: {:?}", first.outcome)
        };
        let unrouted = store.unrouted_events().unwrap();
        assert_eq!(unrouted.iter().map(|e| e.seq).collect::<Vec<_>>(), [seq]);
        let mut durable = first.durable;
        assert!(
            tokio::time::timeout(pending, &mut durable).await.is_err(),
            "not durable while the flush is held"
        );
        let mut accepted = store.accept(event("evt_2", None));
        assert!(
            tokio::time::timeout(pending, &mut accepted).await.is_err(),
            "accept answers only once on disk"
        );

        shut(false);
        let flushed = tokio::time::timeout(wait, durable).await;
        flushed.expect("durable once flushed").unwrap();
        let accepted = tokio::time::timeout(wait, accepted).await.unwrap();
        assert!(matches!(accepted.unwrap(), AcceptOutcome::Stored(_)));

        // A repeat is answered at its commit too, and told only once flushed.
        shut(true);
        let repeat = tokio::time::timeout(wait, store.admit(event("evt_1", None)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(repeat.outcome, AcceptOutcome::Duplicate("evt_1".into()));
        let mut durable = repeat.durable;
        assert!(tokio::time::timeout(pending, &mut durable).await.is_err());
        shut(false);
        tokio::time::timeout(wait, durable).await.unwrap().unwrap();
        store.close();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_write_failing_halfway_rolls_its_batch_back() {
        let (store, dir) = store();
        let side = Connection::open(dir.join("wasp.db")).unwrap();
        side.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON deliveries WHEN NEW.endpoint = 'broken'
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
        // Hold the database's write lock so that the writer's batch with
        // the first event waits, and the next two queue up behind it: they
        // share the following batch.
        side.execute_batch("BEGIN IMMEDIATE").unwrap();
        let first = store.admit(event("evt_0", None));
        std::thread::sleep(std::time::Duration::from_millis(50));
        let good = store.admit(event("evt_1", Some("m1")));
        let half = store.admit_routed(
            event("evt_2", None),
            vec![delivery("evt_2", "fine"), delivery("evt_2", "broken")].into(),
        );
        side.execute_batch("COMMIT").unwrap();

        let half = half.await.unwrap_err();
        assert!(half.to_string().contains("refused"), "{half}");
        let good = good.await.unwrap_err();
        assert_eq!(good, half, "the batch fails as one");
        // The first write is in a batch of its own, unless the writer had
        // not taken it yet when the lock was held (a slow machine).
        match first.await {
            Ok(first) => assert!(matches!(first.outcome, AcceptOutcome::Stored(_))),
            Err(error) => assert_eq!(error, half),
        }
        assert!(deliveries_of(&*store, "evt_2").is_empty());
        // Neither event was stored, nor the fingerprint marked as seen: all
        // are new when posted again.
        for (id, fingerprint) in [("evt_1", None), ("evt_2", None), ("evt_3", Some("m1"))] {
            let again = store.accept(event(id, fingerprint)).await.unwrap();
            assert!(matches!(again, AcceptOutcome::Stored(_)), "{id}: {again:?}");
        }
        assert!(store.writable(), "a refused write is not a sick store");
        store.close();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_event_whose_flush_fails_is_not_accepted() {
        let dir =
            std::env::temp_dir().join(format!("wasp-store-test-{}", crate::event::new_event_id()));
        let store = SqliteStore::open_with(
            &dir.join("wasp.db"),
            Sync::Full,
            Backing::STANDARD,
            |_log| Box::new(|| Err(std::io::Error::other("the disk is gone"))),
        )
        .unwrap();
        let wait = std::time::Duration::from_secs(10);
        let admitted = tokio::time::timeout(wait, store.admit(event("evt_1", None)))
            .await
            .unwrap()
            .expect("committed");
        assert!(matches!(admitted.outcome, AcceptOutcome::Stored(_)));
        let durable = tokio::time::timeout(wait, admitted.durable).await.unwrap();
        assert!(
            matches!(&durable, Err(StoreError::Backend(m)) if m.contains("the disk is gone")),
            "{durable:?}"
        );
        let accepted = tokio::time::timeout(wait, store.accept(event("evt_2", None)))
            .await
            .unwrap();
        assert!(accepted.is_err(), "{accepted:?}");
        assert!(!store.writable(), "the store says it is unhealthy");
        store.close();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn fingerprints_outlive_restarts_and_crashes() {
        let (store, dir) = store();
        // Two in one batch: the second sees the first before it commits.
        let (first, repeat) = tokio::join!(
            store.accept(event("evt_1", Some("m1"))),
            store.accept(event("evt_2", Some("m1")))
        );
        assert!(matches!(first.unwrap(), AcceptOutcome::Stored(_)));
        assert_eq!(repeat.unwrap(), AcceptOutcome::Duplicate("evt_1".into()));
        store.accept(event("evt_3", Some("m3"))).await.unwrap();
        store.close();
        let store = SqliteStore::open(&dir.join("wasp.db"), Sync::Normal).unwrap();
        assert_eq!(
            store.accept(event("evt_4", Some("m1"))).await.unwrap(),
            AcceptOutcome::Duplicate("evt_1".into())
        );
        store.close();
        // A crash mid-write leaves the index file in any state: rebuilt.
        std::fs::write(dir.join("wasp.db-dedup"), b"torn").unwrap();
        let store = SqliteStore::open(&dir.join("wasp.db"), Sync::Normal).unwrap();
        assert_eq!(
            store.accept(event("evt_5", Some("m3"))).await.unwrap(),
            AcceptOutcome::Duplicate("evt_3".into())
        );
        assert!(matches!(
            store.accept(event("evt_6", Some("m6"))).await.unwrap(),
            AcceptOutcome::Stored(_)
        ));
        store.close();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn survives_reopening() {
        let (store, dir) = store();
        store.accept(event("evt_1", None)).await.unwrap();
        store
            .set_endpoint_disabled("a".into(), Some("410 Gone".into()))
            .await
            .unwrap();
        store
            .save_session("api-1".into(), r#"{"running":true}"#.into())
            .await
            .unwrap();
        store.close();
        let store = SqliteStore::open(&dir.join("wasp.db"), Sync::Full).unwrap();
        assert_eq!(
            store.sessions().unwrap(),
            vec![("api-1".to_owned(), r#"{"running":true}"#.to_owned())]
        );
        assert!(store.delete_session("api-1".into()).await.unwrap());
        assert!(!store.delete_session("api-1".into()).await.unwrap());
        assert_eq!(store.unrouted_events().unwrap().len(), 1);
        assert_eq!(
            store.disabled_endpoints().unwrap(),
            vec![("a".to_owned(), "410 Gone".to_owned())]
        );
        assert_eq!(
            store.accept(event("evt_1", None)).await.unwrap(),
            AcceptOutcome::Duplicate("evt_1".into())
        );
        store.close();
        let _ = std::fs::remove_dir_all(dir);
    }
}
