//! Crash-consistency torture test of the log VFS ([`super::wal_vfs`]): does
//! a store that writes each commit's log frames in one system call recover
//! from a crash at any point with nothing committed lost and nothing
//! half-written served?
//!
//! A recording VFS sits beneath `wal_vfs` (registered over it for the
//! test) and notes, in order, every write, truncate and sync that reaches
//! the database file and its log, and the syncer's `fdatasync` of the log.
//! A real [`SqliteStore`] runs a workload through it: rounds of events
//! admitted with their deliveries (commits of one to several events, bodies
//! from a few bytes to several pages, some spilling into overflow pages),
//! attempts that rewrite delivery rows, and enough log to checkpoint into
//! the database and restart the log several times. One workload runs with a
//! page cache of a few pages, so transactions spill pages into the log
//! before their commit and then write those frames again in place (the
//! VFS's rewrite path). The moment each event is answered durable is noted
//! in the history.
//!
//! Then the test cuts the recorded history at **every** point and builds
//! the files a crash there could leave behind, three ways:
//! - *process crash*: every write before the cut reached the page cache;
//! - *torn write*: the same, plus the first sectors of the write at the cut
//!   (sectors are 512 bytes, aligned to the file's offsets);
//! - *power cut*: everything up to each file's last sync, then a random
//!   subset of the writes since (each one whole, torn into a random subset
//!   of its sectors, or lost).
//!
//! Every image is opened by a plain reader (SQLite's own recovery). Every
//! 16th, the last, and every 4th torn one is also started, on a copy, as
//! wasp starts after a crash: the store itself opens the raw files through
//! `wal_vfs` (log recovery over whatever tail the crash left, migrations,
//! the dedup index rebuilt), must list the events the plain reader finds
//! and recognise their fingerprints, and admits a new event durably on top;
//! its files are checked as a crash right after that answer leaves them,
//! and again after it stops. Every image must show:
//! - `PRAGMA integrity_check` is `ok`;
//! - every event committed before the cut is there after a process crash,
//!   and every event answered durable after a power cut;
//! - the events there are a prefix of those submitted, in order (a commit
//!   is never there without every commit before it);
//! - every event there is byte for byte what was submitted, with exactly
//!   its deliveries (all of a commit or none of it);
//! - every delivery counts exactly the attempts stored for it, and no
//!   attempt points at a delivery that is not there.
//!
//! Not modelled: the dedup index's own file (derived data, rebuilt when it
//! is not marked clean; no image holds one, so every start rebuilds), and
//! the loss of a directory entry (the log's file being created again).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use rusqlite::{Connection, ffi};

use super::*;
use super::{vfs_shim, wal_vfs};

/// The recording VFS's name, and `wal_vfs`'s over it.
const RECORDING: &str = "wasp-recording";
const WAL_OVER_RECORDING: &str = "wasp-wal-recorded";

/// Sector size for torn writes.
const SECTOR: usize = 512;

/// Which file an operation touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Database,
    Log,
}

impl Kind {
    /// The file's name in a crash image.
    fn file_name(self) -> &'static str {
        match self {
            Kind::Database => "wasp.db",
            Kind::Log => "wasp.db-wal",
        }
    }
}

/// One operation that reached a file, in the order they happened.
#[derive(Debug, Clone)]
enum Op {
    Write {
        kind: Kind,
        offset: usize,
        data: Vec<u8>,
    },
    Truncate {
        kind: Kind,
        size: usize,
    },
    Sync {
        kind: Kind,
    },
}

/// Every operation since the journal was last emptied. Operations are
/// performed while it is locked, so its order is the files' order.
static JOURNAL: Mutex<Vec<Op>> = Mutex::new(Vec::new());

fn journal() -> std::sync::MutexGuard<'static, Vec<Op>> {
    JOURNAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// The recording VFS: the default VFS, noting writes, truncates and syncs of
// the main database file and its log.

fn register_recording() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find is thread-safe; null names the default.
        let base = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
        vfs_shim::register::<Recorded>(base, RECORDING, open).unwrap();
        wal_vfs::register_over(RECORDING, WAL_OVER_RECORDING).unwrap();
    });
}

/// A recorded file: this header, then the default VFS's file.
#[repr(C)]
struct Recorded {
    base: ffi::sqlite3_file,
    kind: Kind,
}

unsafe fn real(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    unsafe { vfs_shim::real::<Recorded>(file) }
}

unsafe fn kind(file: *mut ffi::sqlite3_file) -> Kind {
    unsafe { (*file.cast::<Recorded>()).kind }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    unsafe {
        let base = vfs_shim::base_of(vfs);
        let base_open = (*base).xOpen.expect("the default VFS opens files");
        let kind = if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
            Kind::Database
        } else if flags & ffi::SQLITE_OPEN_WAL != 0 {
            Kind::Log
        } else {
            return base_open(base, name, file, flags, out_flags);
        };
        let recorded = file.cast::<Recorded>();
        (*recorded).base.pMethods = std::ptr::null();
        (*recorded).kind = kind;
        let rc = base_open(base, name, real(file), flags, out_flags);
        if rc == ffi::SQLITE_OK {
            (*recorded).base.pMethods = &METHODS;
        }
        rc
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(vfs_shim::sector_size::<Recorded>),
    xDeviceCharacteristics: Some(vfs_shim::device_characteristics::<Recorded>),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// Call the default VFS's `$method` on the real file.
macro_rules! forward {
    ($file:expr, $method:ident ( $($arg:expr),* )) => {
        vfs_shim::forward!(Recorded, $file, $method($($arg),*))
    };
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let rc = forward!(file, xClose());
        (*file).pMethods = std::ptr::null();
        rc
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    unsafe {
        let mut journal = journal();
        let rc = forward!(file, xWrite(data, amount, offset));
        if rc == ffi::SQLITE_OK {
            journal.push(Op::Write {
                kind: kind(file),
                offset: offset as usize,
                data: std::slice::from_raw_parts(data.cast::<u8>(), amount as usize).to_vec(),
            });
        }
        rc
    }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    unsafe {
        let mut journal = journal();
        let rc = forward!(file, xTruncate(size));
        if rc == ffi::SQLITE_OK {
            journal.push(Op::Truncate {
                kind: kind(file),
                size: size as usize,
            });
        }
        rc
    }
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    unsafe {
        let mut journal = journal();
        let rc = forward!(file, xSync(flags));
        if rc == ffi::SQLITE_OK {
            journal.push(Op::Sync { kind: kind(file) });
        }
        rc
    }
}

vfs_shim::forwarding_methods!(Recorded, |_| ffi::SQLITE_OK);

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    unsafe { forward!(file, xShmMap(region, size, extend, out)) }
}

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    unsafe { forward!(file, xShmLock(offset, n, flags)) }
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    unsafe {
        if let Some(barrier) = vfs_shim::methods::<Recorded>(file).xShmBarrier {
            barrier(real(file));
        }
    }
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    unsafe { forward!(file, xShmUnmap(delete)) }
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    unsafe { forward!(file, xFetch(offset, amount, out)) }
}

unsafe extern "C" fn unfetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    page: *mut c_void,
) -> c_int {
    unsafe { forward!(file, xUnfetch(offset, page)) }
}

// ---------------------------------------------------------------------------
// The workload.

/// An event as submitted: its body and its deliveries' bodies.
type AsSubmitted = (String, Vec<Vec<u8>>);

/// What was submitted.
#[derive(Debug, Default)]
struct Submitted {
    events: HashMap<String, AsSubmitted>,
    /// Each event's fingerprint.
    fingerprints: HashMap<String, String>,
    /// Event ids in the order they were submitted (and committed: one
    /// writer takes them in that order).
    order: Vec<String>,
    /// Journal length when each event's commit was answered: a process
    /// crash at or past it keeps the event (the page cache survives).
    committed_at: Answered,
    /// Journal length when each event was answered durable: any crash at
    /// or past it keeps the event.
    durable_at: Answered,
}

/// An event whose fingerprint is remembered longer than the test runs
/// (the conformance events' minute is shorter than a slow run).
fn event(id: &str, fingerprint: &str) -> NewEvent {
    NewEvent {
        dedup_window_ms: 24 * 3_600_000,
        ..conformance::event(id, Some(fingerprint))
    }
}

fn body_of(rng: &mut fastrand::Rng, id: &str) -> String {
    // Mostly under a page, some of several pages (overflow chains).
    let padding = match rng.u8(0..10) {
        0 => rng.usize(5_000..14_000),
        1..=3 => rng.usize(1_000..4_000),
        _ => rng.usize(0..600),
    };
    let fill: String = (0..padding)
        .map(|_| char::from(b'a' + rng.u8(0..26)))
        .collect();
    format!(r#"{{"id":"{id}","payload":{{"body":"{fill}"}}}}"#)
}

async fn run_workload(store: &SqliteStore, seed: u64, rounds: usize) -> Submitted {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut submitted = Submitted::default();
    let mut delivered_ids: Vec<i64> = Vec::new();
    for round in 0..rounds {
        let mut pending = Vec::new();
        for n in 0..rng.usize(1..7) {
            let id = format!("evt_{seed}_{round}_{n}");
            let fingerprint = format!("msg_{seed}_{round}_{n}");
            let body = body_of(&mut rng, &id);
            let deliveries: Vec<Vec<u8>> = (0..rng.usize(1..3))
                .map(|d| body_of(&mut rng, &format!("{id}_{d}")).into_bytes())
                .collect();
            let routed: Vec<NewDelivery> = deliveries
                .iter()
                .enumerate()
                .map(|(d, bytes)| NewDelivery {
                    body: bytes.clone(),
                    ..conformance::delivery(&id, &format!("ep{d}"))
                })
                .collect();
            let event = NewEvent {
                body: body.clone(),
                ..event(&id, &fingerprint)
            };
            // Submitted together, so a commit holds several events.
            pending.push((id.clone(), store.admit_routed(event, routed.into())));
            submitted.events.insert(id.clone(), (body, deliveries));
            submitted.fingerprints.insert(id.clone(), fingerprint);
            submitted.order.push(id);
        }
        // Attempts rewrite delivery rows in place, beside the new events.
        let attempts: Vec<_> = (0..rng.usize(0..4))
            .filter_map(|_| {
                let id = *delivered_ids.get(rng.usize(0..delivered_ids.len().max(1)))?;
                let after = if rng.bool() {
                    AfterAttempt::Delivered
                } else {
                    AfterAttempt::RetryAt(crate::clock::now_ms() + 60_000)
                };
                Some(store.record_attempt(
                    AttemptRecord {
                        delivery_id: id,
                        number: 1,
                        at: crate::clock::now_ms(),
                        status: Some(500),
                        latency_ms: 1.5,
                        outcome: "retry".into(),
                        excerpt: "x".repeat(rng.usize(0..300)),
                    },
                    after,
                ))
            })
            .collect();
        // Each answer is noted in the history as soon as it arrives.
        let mut answers = Vec::new();
        for (id, admitted) in pending {
            let admitted = admitted.await.expect("the event is admitted");
            submitted.committed_at.insert(id.clone(), journal().len());
            assert!(matches!(admitted.outcome, AcceptOutcome::Stored(_)));
            delivered_ids.extend(&admitted.deliveries);
            answers.push(tokio::spawn(async move {
                admitted.durable.await.expect("the event is durable");
                (id, journal().len())
            }));
        }
        for answer in answers {
            let (id, at) = answer.await.unwrap();
            submitted.durable_at.insert(id, at);
        }
        for attempt in attempts {
            attempt.await.expect("the attempt is recorded");
        }
    }
    submitted
}

// ---------------------------------------------------------------------------
// Crash images.

/// A file as the disk holds it: what its last sync made sure of, and the
/// operations since, which a power cut may keep or lose.
#[derive(Debug, Default, Clone)]
struct FileOnDisk {
    synced: Vec<u8>,
    since_sync: Vec<Op>,
}

fn apply(content: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { offset, data, .. } => {
            let end = offset + data.len();
            if content.len() < end {
                content.resize(end, 0);
            }
            content[*offset..end].copy_from_slice(data);
        }
        Op::Truncate { size, .. } => content.resize(*size, 0),
        Op::Sync { .. } => {}
    }
}

/// The pieces of a write, cut at the file's sector boundaries.
fn sectors(offset: usize, data: &[u8]) -> Vec<(usize, &[u8])> {
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let boundary = (offset + at) / SECTOR * SECTOR + SECTOR;
        let end = (boundary - offset).min(data.len());
        pieces.push((offset + at, &data[at..end]));
        at = end;
    }
    pieces
}

/// `op` with only some of its sectors (a write torn by a power cut).
fn torn(op: &Op, keep: impl Fn(usize) -> bool) -> Vec<Op> {
    let Op::Write { kind, offset, data } = op else {
        return vec![op.clone()];
    };
    sectors(*offset, data)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, (offset, piece))| Op::Write {
            kind: *kind,
            offset,
            data: piece.to_vec(),
        })
        .collect()
}

/// The two files after the first `cut` operations.
#[derive(Debug, Default, Clone)]
struct Disk {
    files: BTreeMap<Kind, FileOnDisk>,
}

impl Disk {
    fn step(&mut self, op: &Op) {
        let kind = match op {
            Op::Write { kind, .. } | Op::Truncate { kind, .. } | Op::Sync { kind } => *kind,
        };
        let file = self.files.entry(kind).or_default();
        match op {
            Op::Sync { .. } => {
                for pending in std::mem::take(&mut file.since_sync) {
                    apply(&mut file.synced, &pending);
                }
            }
            _ => file.since_sync.push(op.clone()),
        }
    }

    /// Every operation so far reached the file (the page cache survives a
    /// process crash), and `extra` after them.
    fn process_crash(&self, extra: &[Op]) -> BTreeMap<Kind, Vec<u8>> {
        let mut files: BTreeMap<Kind, Vec<u8>> = BTreeMap::new();
        for (kind, file) in &self.files {
            let mut content = file.synced.clone();
            for op in &file.since_sync {
                apply(&mut content, op);
            }
            files.insert(*kind, content);
        }
        for op in extra {
            if let Op::Write { kind, .. } | Op::Truncate { kind, .. } = op {
                apply(files.entry(*kind).or_default(), op);
            }
        }
        files
    }

    /// What was synced, and of each operation since: all of it, some of
    /// its sectors, or nothing.
    fn power_cut(&self, rng: &mut fastrand::Rng) -> BTreeMap<Kind, Vec<u8>> {
        let mut files = BTreeMap::new();
        for (kind, file) in &self.files {
            let mut content = file.synced.clone();
            for op in &file.since_sync {
                match rng.u8(0..4) {
                    0 => {}
                    1 => {
                        let pattern = rng.u64(..);
                        for piece in torn(op, |i| pattern >> (i % 64) & 1 == 1) {
                            apply(&mut content, &piece);
                        }
                    }
                    _ => apply(&mut content, op),
                }
            }
            files.insert(*kind, content);
        }
        files
    }
}

/// Write `files` as a database named `wasp.db` in `dir` (emptied first).
fn write_image(dir: &Path, files: &BTreeMap<Kind, Vec<u8>>) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for (kind, content) in files {
        std::fs::write(dir.join(kind.file_name()), content).unwrap();
    }
    dir.join(Kind::Database.file_name())
}

/// The event a store started on a crash image admits on top of it.
const AFTER_CRASH: &str = "evt_after_crash";

/// What a store started on a crash image did.
struct Started {
    /// The events it listed.
    listed: Vec<String>,
    /// What it admitted after recovery.
    admitted: AsSubmitted,
    /// A copy of its files once that event was answered durable and before
    /// the store closed: a crash right after the answer.
    crashed: PathBuf,
}

/// Copy the database at `database` and its log into `dir` (emptied first),
/// as a crash would leave them: returns the copy's database path.
fn copy_files(database: &Path, dir: &Path) -> PathBuf {
    let files = [Kind::Database, Kind::Log]
        .into_iter()
        .filter_map(|kind| {
            let content = std::fs::read(database.with_file_name(kind.file_name())).ok()?;
            Some((kind, content))
        })
        .collect();
    write_image(dir, &files)
}

/// Start a store on the crash image at `database`, the way wasp starts
/// after a crash: it recognises the fingerprints of the events it lists
/// (the first, the middle and the last), then admits [`AFTER_CRASH`]
/// durably over whatever tail the crash left in the log.
async fn start_store(database: &Path, submitted: &Submitted, what: &str) -> Started {
    let store = SqliteStore::open(database, Sync::Full)
        .unwrap_or_else(|e| panic!("{what}: the store does not start: {e}"));
    let listed: Vec<String> = store
        .events(&EventFilter {
            limit: 10_000,
            ..EventFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|event| event.id)
        .collect();
    // The dedup index was rebuilt: a repeat of a stored message is caught.
    let probes = [0, listed.len() / 2, listed.len().saturating_sub(1)];
    for id in probes.iter().filter_map(|&i| listed.get(i)) {
        let (Some((body, _)), Some(fingerprint)) =
            (submitted.events.get(id), submitted.fingerprints.get(id))
        else {
            panic!("{what}: the store lists an event nobody submitted: {id}");
        };
        let repeat = NewEvent {
            body: body.clone(),
            ..event("evt_repeat", fingerprint)
        };
        let outcome = store.accept(repeat).await.unwrap();
        assert!(
            matches!(&outcome, AcceptOutcome::Duplicate(original) if original == id),
            "{what}: the fingerprint of {id} is forgotten: {outcome:?}"
        );
    }
    let body = format!(r#"{{"id":"{AFTER_CRASH}","after":{}}}"#, listed.len());
    let delivery = format!("{AFTER_CRASH} to ep0").into_bytes();
    let admitted = store
        .admit_routed(
            NewEvent {
                body: body.clone(),
                ..event(AFTER_CRASH, "msg_after_crash")
            },
            vec![NewDelivery {
                body: delivery.clone(),
                ..conformance::delivery(AFTER_CRASH, "ep0")
            }]
            .into(),
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: no event is admitted after the crash: {e}"));
    assert!(
        matches!(admitted.outcome, AcceptOutcome::Stored(_)),
        "{what}: the event after the crash is {:?}",
        admitted.outcome
    );
    admitted
        .durable
        .await
        .unwrap_or_else(|e| panic!("{what}: the event after the crash is not durable: {e}"));
    let crashed = copy_files(
        database,
        &database.parent().unwrap().with_extension("crashed"),
    );
    store.close();
    Started {
        listed,
        admitted: (body, vec![delivery]),
        crashed,
    }
}

/// Every event in the image at `database` with its deliveries' bodies,
/// after checking the image's integrity and that each event is one that
/// was submitted (or `extra`), byte for byte, with all its deliveries and
/// their attempts.
fn read_image(
    database: &Path,
    submitted: &Submitted,
    extra: Option<(&str, &AsSubmitted)>,
    what: &str,
) -> HashMap<String, Vec<Vec<u8>>> {
    let connection = Connection::open(database).unwrap();
    let integrity: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap_or_else(|e| panic!("{what}: cannot check integrity: {e}"));
    assert_eq!(integrity, "ok", "{what}: integrity");
    let has_events: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'events'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let mut present: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    if has_events == 0 {
        return present;
    }
    let expected = |id: &str| match extra {
        Some((extra_id, event)) if extra_id == id => Some(event),
        _ => submitted.events.get(id),
    };
    let mut events = connection.prepare("SELECT id, body FROM events").unwrap();
    let rows = events
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .unwrap();
    for row in rows {
        let (id, body) = row.unwrap();
        let Some((submitted_body, _)) = expected(&id) else {
            panic!("{what}: an event nobody submitted: {id}");
        };
        assert!(
            body == *submitted_body,
            "{what}: event {id} is not what was submitted"
        );
        present.insert(id, Vec::new());
    }
    let mut deliveries = connection
        .prepare(
            "SELECT d.event_id, d.body, d.attempts,
                    (SELECT COUNT(*) FROM attempts a WHERE a.delivery_id = d.id)
             FROM deliveries d",
        )
        .unwrap();
    let rows = deliveries
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (event_id, body, counted, stored) = row.unwrap();
        assert_eq!(
            counted, stored,
            "{what}: a delivery of {event_id} counts {counted} attempts and has {stored}"
        );
        present
            .get_mut(&event_id)
            .unwrap_or_else(|| panic!("{what}: a delivery of a missing event {event_id}"))
            .push(body);
    }
    for (id, bodies) in &mut present {
        let mut deliveries = expected(id).unwrap().1.clone();
        bodies.sort();
        deliveries.sort();
        assert!(
            *bodies == deliveries,
            "{what}: event {id} without all its deliveries"
        );
    }
    let orphans: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM attempts WHERE delivery_id NOT IN (SELECT id FROM deliveries)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "{what}: attempts of missing deliveries");
    present
}

/// Which events an image must hold: those answered (committed, or
/// durable) at or before this many operations.
type Answered = HashMap<String, usize>;

/// Check one crash image, taken after the first `cut` operations, against
/// what was submitted: it holds every event in `answered` by then. With
/// `start`, a store also starts on a copy of it first.
async fn check_image(
    database: &Path,
    submitted: &Submitted,
    answered: &Answered,
    cut: usize,
    start: bool,
    what: &str,
) {
    let started = if start {
        let copy = copy_files(
            database,
            &database.parent().unwrap().with_extension("started"),
        );
        let started = start_store(&copy, submitted, what).await;
        // Crashed right after the new event's answer, and closed after it.
        for (files, when) in [(&started.crashed, "a crash"), (&copy, "a clean stop")] {
            let what = format!("{what}, then a store's new event and {when}");
            let extra = Some((AFTER_CRASH, &started.admitted));
            let mut present = read_image(files, submitted, extra, &what);
            assert!(
                present.remove(AFTER_CRASH).is_some(),
                "{what}: the event admitted after the crash is lost"
            );
            holds(&present, submitted, answered, cut, &what);
        }
        Some(started.listed)
    } else {
        None
    };
    // The raw image, as a plain reader recovers it.
    let present = read_image(database, submitted, None, what);
    holds(&present, submitted, answered, cut, what);
    if let Some(mut listed) = started {
        let mut found: Vec<String> = present.keys().cloned().collect();
        listed.sort();
        found.sort();
        assert!(listed == found, "{what}: the store listed other events");
    }
}

/// `present` holds every event answered by `cut`, and the first events
/// submitted, in order, without gaps.
fn holds(
    present: &HashMap<String, Vec<Vec<u8>>>,
    submitted: &Submitted,
    answered: &Answered,
    cut: usize,
    what: &str,
) {
    for (id, at) in answered {
        assert!(
            *at > cut || present.contains_key(id),
            "{what}: event {id} was answered by then and is lost"
        );
    }
    // Commits land in order: the events there are the first ones submitted.
    let prefix = submitted
        .order
        .iter()
        .take_while(|id| present.contains_key(*id))
        .count();
    assert_eq!(
        prefix,
        present.len(),
        "{what}: a later event is there without {}",
        submitted.order[prefix]
    );
}

/// What a recorded history exercised.
#[derive(Debug, Default)]
struct Coverage {
    operations: usize,
    /// Syncs of the database after the log was first written: checkpoints.
    checkpoints: usize,
    /// Times the log started again from its header.
    restarts: usize,
    /// Log frames written again in place before their commit.
    rewrites: usize,
    images: usize,
}

fn coverage(history: &[Op]) -> Coverage {
    let mut coverage = Coverage {
        operations: history.len(),
        ..Coverage::default()
    };
    let mut log_started = false;
    let mut log_end = 0;
    for op in history {
        match op {
            Op::Write {
                kind: Kind::Log,
                offset,
                data,
            } => {
                if *offset == 0 {
                    coverage.restarts += usize::from(log_started);
                    log_started = true;
                    log_end = 0;
                } else if *offset < log_end {
                    coverage.rewrites += 1;
                }
                log_end = log_end.max(offset + data.len());
            }
            Op::Sync {
                kind: Kind::Database,
            } if log_started => coverage.checkpoints += 1,
            _ => {}
        }
    }
    coverage
}

/// Cut the recorded history of one workload at every point, three ways.
/// `cache_kib`: each connection's page cache.
async fn torture(seed: u64, rounds: usize, cache_kib: u32) -> Coverage {
    register_recording();
    let scratch =
        std::env::temp_dir().join(format!("wasp-crash-test-{}", crate::event::new_event_id()));
    let live = scratch.join("live");
    journal().clear();
    let backing = Backing {
        vfs: WAL_OVER_RECORDING,
        cache_kib,
    };
    let store = SqliteStore::open_with(&live.join("wasp.db"), Sync::Full, backing, |log| {
        Box::new(move || {
            // The syncer's flush, noted where it happens in the history.
            let mut journal = journal();
            log.sync_data()?;
            journal.push(Op::Sync { kind: Kind::Log });
            Ok(())
        })
    })
    .unwrap();
    let submitted = run_workload(&store, seed, rounds).await;
    let history = journal().clone();
    store.close();

    let mut coverage = coverage(&history);
    assert!(
        coverage.checkpoints >= 2 && coverage.restarts >= 2,
        "the workload checkpoints and restarts its log: {coverage:?}"
    );
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    let mut disk = Disk::default();
    let image = scratch.join("image");
    for cut in 0..=history.len() {
        let start = cut % 16 == 0 || cut == history.len();
        let crash = disk.process_crash(&[]);
        let database = write_image(&image, &crash);
        let what = format!(
            "seed {seed}, crash after {cut} of {} operations",
            coverage.operations
        );
        let committed = &submitted.committed_at;
        check_image(&database, &submitted, committed, cut, start, &what).await;
        coverage.images += 1;
        let count = match history.get(cut) {
            Some(Op::Write { offset, data, .. }) => sectors(*offset, data).len(),
            _ => 0,
        };
        if let Some(op) = history.get(cut)
            && count > 1
        {
            let kept = rng.usize(1..count);
            let crash = disk.process_crash(&torn(op, |i| i < kept));
            let database = write_image(&image, &crash);
            let what =
                format!("seed {seed}, crash in operation {cut}, {kept} of {count} sectors written");
            // Torn in the middle of a write: the store starts on it too.
            let committed = &submitted.committed_at;
            check_image(&database, &submitted, committed, cut, cut % 4 == 0, &what).await;
            coverage.images += 1;
        }
        let cut_power = disk.power_cut(&mut rng);
        let database = write_image(&image, &cut_power);
        let what = format!("seed {seed}, power cut after {cut} operations");
        let durable = &submitted.durable_at;
        check_image(&database, &submitted, durable, cut, start, &what).await;
        coverage.images += 1;
        if let Some(op) = history.get(cut) {
            disk.step(op);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    coverage
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_point_loses_nothing_committed_and_serves_nothing_half_written() {
    for seed in [1, 2] {
        // Group commit batches more or less with the machine's speed: 160
        // rounds cross at least two checkpoints even when it batches most.
        let coverage = torture(seed, 160, Backing::STANDARD.cache_kib).await;
        eprintln!("seed {seed}: {coverage:?}");
    }
    // A cache of ten pages: transactions spill and frames are rewritten.
    let coverage = torture(3, 120, 40).await;
    eprintln!("seed 3, small cache: {coverage:?}");
    assert!(
        coverage.rewrites > 0,
        "no log frame was written again in place: {coverage:?}"
    );
}
